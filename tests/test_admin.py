import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_tensorpix.admin import display
from django_tensorpix.admin.jobs import JOB_FIELDSETS, SHOWN_BY_METHOD
from django_tensorpix.enums import JobStatus
from django_tensorpix.models import Job, MLModel, RestoredVideo, Video
from tests.admin_jobs import AFTER, BEFORE, THUMBNAIL, make_jobs_in_every_state

SECRET = "sk-ADMIN-PAGES-MUST-NOT-SHOW-THIS"
OTHER_SECRET = "sk-SECOND-ACCOUNT-KEY-ALSO-HIDDEN"
MODELS: list[Any] = [Job, Video, RestoredVideo, MLModel]
ALL = {"finished", "processing", "queued", "failed", "canceled", "stalled", "pending", "rejected"}
ALL |= {"uncertain"}


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("operator", "op@example.com", "pw")


@pytest.fixture
def jobs(operator):
    return make_jobs_in_every_state(operator)


def url(model, view, *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def staff_client(*codenames):
    user = User.objects.create_user("staff-" + "-".join(codenames or ("none",)), is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def rows(page):
    return re.findall(r'<tr><td class="action-checkbox">.*?</tr>', page.text, re.S)


# The job list.


def test_job_list_shows_a_badge_for_every_state(admin_client, jobs):
    page = admin_client.get(url(Job, "changelist"))
    assert page.status_code == 200
    for style, label in [
        ("finished", "Finished"),
        ("processing", "Processing"),
        ("queued", "In Queue"),
        ("failed", "Failed"),
        ("canceled", "Canceled"),
        ("stalled", "Stalled"),
        ("submission", "Pending"),
        ("submission", "Uncertain"),
        ("failed", "Rejected"),
    ]:
        assert re.search(
            f'<span class="tpx-badge tpx-badge-{style}" title="[^"]+">{label}<', page.text
        )
    assert 'title="Outcome unknown, reconciling">Uncertain</span>' in page.text
    assert page.text.count('class="tpx-badge ') == len(jobs)
    assert "django_tensorpix/admin.css" in page.text


def test_job_list_columns_read_at_a_glance(admin_client, jobs):
    page = admin_client.get(url(Job, "changelist"))
    processing = next(row for row in rows(page) if "Job 32" in row)
    assert 'style="width: 42%"' in processing
    assert "42%" in processing
    assert "about 3 min" in processing
    assert "Upscale x2" in processing
    assert "wedding-1998.mp4" in processing
    assert f'src="{THUMBNAIL.replace("&", "&amp;")}"' in processing
    assert "operator" in processing
    finished = next(row for row in rows(page) if "Job 31" in row)
    assert "1.25 Credits" in finished
    assert "Upscale x2, Denoise" in finished
    pending = next(row for row in rows(page) if "not submitted" in row and "holiday" in row)
    assert "https://videos.example/holiday.mov" in pending
    assert re.search(r"\w{3} \d{1,2}, \d\d:\d\d", processing)  # "Nov 28, 21:07"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=2", {"finished"}),
        ("status=-1", {"failed"}),
        ("status=stalled", {"stalled"}),
        ("status=none", {"pending", "rejected", "uncertain"}),
        ("submission_state__exact=rejected", {"rejected"}),
        ("has_error=yes", {"failed", "rejected"}),
        ("ml_model=ML_DENOISE", {"finished"}),
        ("q=%22wedding+1998%22", set()),
        ("q=wedding+1998", ALL - {"pending"}),
        ("q=31", {"finished"}),
        ("q=32", {"processing"}),
        ("q=wedding", ALL - {"pending"}),
        ("q=holiday.mov", {"pending"}),
        ("q=operator", ALL),
        ("missing_remote=yes", set()),
    ],
)
def test_job_list_filters_and_search(admin_client, jobs, query, expected):
    denoise = MLModel.objects.get(name="Denoise")
    query = query.replace("ML_DENOISE", str(denoise.pk))
    page = admin_client.get(url(Job, "changelist") + "?" + query)
    assert page.status_code == 200
    shown = {
        key for key, job in jobs.items() if f'name="_selected_action" value="{job.pk}"' in page.text
    }
    assert shown == expected


def test_job_list_queries_do_not_depend_on_the_number_of_rows(admin_client, jobs):
    def queries_for_page() -> int:
        admin_client.get(url(Job, "changelist"))  # warm caches (content types, session)
        with CaptureQueriesContext(connection) as captured:
            page = admin_client.get(url(Job, "changelist"))
        assert page.status_code == 200
        return len(captured)

    models = list(MLModel.objects.all())

    def add_jobs(count: int) -> None:
        for number in range(count):
            job = Job.objects.create(
                tensorpix_id=5000 + Job.objects.count() + number,
                status=JobStatus.PROCESSING,
                input_video=jobs["finished"].input_video,
                user=jobs["finished"].user,
            )
            job.ml_models.set(models)

    add_jobs(10 - Job.objects.count())
    assert Job.objects.count() == 10
    with_10 = queries_for_page()
    add_jobs(90)
    assert Job.objects.count() == 100
    with_100 = queries_for_page()
    assert with_10 == with_100
    assert with_100 <= 10


def test_job_list_does_not_count_the_whole_table_twice():
    assert admin.site._registry[Job].show_full_result_count is False


# The job page.


def test_every_job_column_has_a_place_on_the_job_page():
    shown: set[str] = set()
    for _title, options in JOB_FIELDSETS:
        for entry in options["fields"]:
            shown.update(entry if isinstance(entry, tuple) else (entry,))
    for field in [*Job._meta.concrete_fields, *Job._meta.many_to_many]:
        assert field.name in shown or SHOWN_BY_METHOD.get(field.name, "") in shown | {None}, field


def test_finished_job_page_tells_the_whole_story(admin_client, jobs):
    page = admin_client.get(url(Job, "change", jobs["finished"].pk))
    assert page.status_code == 200
    text = page.text
    for title in [
        "Status",
        "Timeline",
        "Output",
        "Input",
        "Requested options",
        "Submission",
        "Sync",
    ]:
        assert f">{title}</h2>" in text
    timeline = text[text.index('<ol class="tpx-timeline">') :]
    timeline = timeline[: timeline.index("</ol>")]
    labels = re.findall(r'<span class="tpx-timeline-label">(.*?)</span>', timeline)
    assert labels == [
        "Created here",
        "Known to TensorPix",
        "In Queue",
        "Started at TensorPix",
        "Processing",
        "Ended at TensorPix",
        "Finished",
    ]
    assert "+10 s" in timeline  # submitted -> queued
    assert "+10 min" in timeline  # processing -> finished
    assert text.count("<video ") == 2
    assert f'src="{BEFORE.replace("&", "&amp;")}"' in text
    assert f'src="{AFTER.replace("&", "&amp;")}"' in text
    assert 'class="tpx-thumb tpx-thumb-large"' in text
    assert reverse("admin:django_tensorpix_job_download", args=[jobs["finished"].pk]) in text
    assert "1.25 Credits" in text
    assert "10 min" in text  # run time
    assert '<pre class="tpx-json">{\n  &quot;id&quot;: 31,' in text


def test_errors_are_shown_prominently(admin_client, jobs):
    failed = admin_client.get(url(Job, "change", jobs["failed"].pk)).text
    assert '<div class="errornote tpx-error"><strong>Last sync failed:</strong> TensorPix' in failed
    rejected = admin_client.get(url(Job, "change", jobs["rejected"].pk)).text
    assert (
        '<div class="errornote tpx-error"><strong>Submission failed:</strong> ml_models' in rejected
    )


def test_stalled_job_page_shows_the_stall_in_its_timeline(admin_client, jobs):
    page = admin_client.get(url(Job, "change", jobs["stalled"].pk)).text
    assert "tpx-timeline-stalled" in page
    assert "active for 6 h" in page
    assert '<span class="tpx-badge tpx-badge-stalled" title="Stalled">Stalled</span>' in page


def test_archived_file_is_linked(admin_client, jobs, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MEDIA_URL = "/media/"
    finished = jobs["finished"]
    Job.objects.filter(pk=finished.pk).update(archived_file="tensorpix/2026/11/out.mp4")
    page = admin_client.get(url(Job, "change", finished.pk)).text
    assert '<a href="/media/tensorpix/2026/11/out.mp4">tensorpix/2026/11/out.mp4</a>' in page


# Safety.


@pytest.mark.parametrize("model", MODELS)
def test_mirrored_rows_offer_neither_save_nor_delete(admin_client, jobs, model):
    obj = model.objects.first()
    page = admin_client.get(url(model, "change", obj.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert 'class="deletelink"' not in page.text
    assert admin_client.get(url(model, "delete", obj.pk)).status_code == 403
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
    assert admin_client.get(url(model, "add")).status_code == 403
    changelist = admin_client.get(url(model, "changelist"))
    assert 'value="delete_selected"' not in changelist.text


def test_mirrored_fields_cannot_be_edited(admin_client, jobs):
    finished = jobs["finished"]
    page = admin_client.get(url(Job, "change", finished.pk))
    assert 'name="status"' not in page.text
    assert 'name="ml_models"' not in page.text
    response = admin_client.post(url(Job, "change", finished.pk), {"status": JobStatus.FAILED})
    assert response.status_code == 403
    finished.refresh_from_db()
    assert finished.status == JobStatus.FINISHED


@pytest.mark.parametrize(
    ("codenames", "actions", "tools"),
    [
        (("view_job",), set(), set()),
        (
            ("view_job", "change_job"),
            {"refresh_jobs", "cancel_jobs", "archive_outputs", "delete_remote_outputs"},
            {"sync"},
        ),
        (("view_job", "add_job"), {"retry_submissions"}, {"enhance"}),
    ],
)
def test_actions_and_buttons_follow_model_permissions(jobs, codenames, actions, tools):
    client = staff_client(*codenames)
    page = client.get(url(Job, "changelist"))
    assert page.status_code == 200
    offered = set(re.findall(r'<option value="(\w+)">', page.text)) - {""}
    assert offered == actions
    for tool in ("sync", "enhance"):
        assert (url(Job, tool) in page.text) == (tool in tools)
        status = client.get(url(Job, tool)).status_code
        assert (status == 200) == (tool in tools), (tool, status)
        if tool not in tools:
            assert status == 403
    detail = client.get(url(Job, "change", jobs["processing"].pk)).text
    assert (url(Job, "refresh", jobs["processing"].pk) in detail) == ("sync" in tools)


def test_actions_refuse_users_without_permission(jobs):
    client = staff_client("view_job")
    response = client.post(
        url(Job, "changelist"),
        {"action": "cancel_jobs", "_selected_action": [jobs["processing"].pk], "post": "yes"},
    )
    # Django answers an action the user may not run as "no action selected", running nothing.
    assert "No action selected" in client.get(url(Job, "changelist")).text or response.status_code
    jobs["processing"].refresh_from_db()
    assert jobs["processing"].status == JobStatus.PROCESSING
    assert client.post(url(Job, "refresh", jobs["processing"].pk)).status_code == 403


def test_the_api_key_appears_on_no_admin_page(operator, jobs):
    client = Client()
    client.force_login(operator)
    pages = [reverse("admin:index"), reverse("admin:app_list", args=["django_tensorpix"])]
    for model in MODELS:
        pages.append(url(model, "changelist"))
        pages.extend(url(model, "change", obj.pk) for obj in model.objects.all())
        pages.extend(url(model, "history", obj.pk) for obj in model.objects.all()[:1])
    pages += [url(Job, "sync"), url(Job, "enhance")]
    accounts = {"second": {"API_KEY": OTHER_SECRET, "BASE_URL": "http://127.0.0.1:9"}}
    with override_settings(TENSORPIX={"API_KEY": SECRET, "ACCOUNTS": accounts}):
        responses = [(page, client.get(page)) for page in pages]
        selected = [job.pk for job in jobs.values()]
        for action in ["cancel_jobs", "delete_remote_outputs", "retry_submissions"]:
            responses.append(
                (
                    action,
                    client.post(
                        url(Job, "changelist"),
                        {"action": action, "_selected_action": selected},
                    ),
                )
            )
    assert len(responses) > 20
    for page, response in responses:
        assert response.status_code == 200, page
        assert SECRET not in response.text, page
        assert OTHER_SECRET not in response.text, page


def test_account_filter_lists_configured_accounts(admin_client, jobs):
    accounts = {"second": {"API_KEY": OTHER_SECRET}}
    Job.objects.filter(pk=jobs["queued"].pk).update(account="second")
    with override_settings(TENSORPIX={"API_KEY": SECRET, "ACCOUNTS": accounts}):
        page = admin_client.get(url(Job, "changelist") + "?account=second")
    assert "?account=second" in page.text
    assert {
        key for key, job in jobs.items() if f'name="_selected_action" value="{job.pk}"' in page.text
    } == {"queued"}


# Video, RestoredVideo, MLModel.


def test_media_and_catalogue_lists(admin_client, jobs):
    videos = admin_client.get(url(Video, "changelist")).text
    assert "720\N{MULTIPLICATION SIGN}576" in videos
    assert "30 s" in videos  # 750 frames at 25 fps
    assert "45.8\xa0MB" in videos
    assert 'class="tpx-thumb tpx-thumb-small"' in videos
    outputs = admin_client.get(url(RestoredVideo, "changelist")).text
    assert "1920\N{MULTIPLICATION SIGN}1080" in outputs
    assert url(Job, "change", jobs["finished"].pk) in outputs
    output_page = admin_client.get(url(RestoredVideo, "change", RestoredVideo.objects.get().pk))
    assert output_page.text.count("<video ") == 2
    models = admin_client.get(url(MLModel, "changelist")).text
    assert "2.1 MP" in models
    assert "Super Resolution" in models


@pytest.fixture
def videos_in_every_upload_state(db):
    return {
        "uploaded": Video.objects.create(tensorpix_id=501, name="at-tensorpix.mp4"),
        "waiting": Video.objects.create(name="queued.mp4", local_file="uploads/queued.mp4"),
        "refused": Video.objects.create(
            name="refused.mp4",
            local_file="uploads/refused.mp4",
            upload_error="video_file: The file is not a supported video.",
        ),
        "remote_only": Video.objects.create(name="from-url.mp4"),
    }


def test_video_list_shows_each_upload_state_and_why_one_was_refused(
    admin_client, videos_in_every_upload_state
):
    page = admin_client.get(url(Video, "changelist")).text
    for key, (label, style) in display.UPLOAD_STATES.items():
        assert f'tpx-badge-{style}" title="' in page, key
        assert f">{label}</span>" in page, key
    assert 'title="video_file: The file is not a supported video."' in page


@pytest.mark.parametrize("state", list(display.UPLOAD_STATES))
def test_upload_filter_selects_the_videos_its_badge_names(
    admin_client, videos_in_every_upload_state, state
):
    page = admin_client.get(url(Video, "changelist"), {"upload": state})
    shown = set(page.context["cl"].result_list)
    assert shown == {videos_in_every_upload_state[state]}
    assert all(display.upload_state(video) == state for video in shown)


def test_refused_upload_is_shown_at_the_top_of_the_video_page(
    admin_client, videos_in_every_upload_state
):
    refused = videos_in_every_upload_state["refused"]
    page = admin_client.get(url(Video, "change", refused.pk)).text
    assert (
        '<div class="errornote tpx-error"><strong>Upload refused:</strong> video_file: The file'
        in page
    )
    uploaded = videos_in_every_upload_state["uploaded"]
    assert "errornote" not in admin_client.get(url(Video, "change", uploaded.pk)).text


# Display helpers.


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (10, "less than a minute"),
        (185, "about 3 min"),
        (5400, "about 2 hours"),
        (3 * 86400, "about 3 days"),
    ],
)
def test_human_eta(seconds, text):
    assert display.human_eta(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1.2500"), "1.25 Credits"),
        (Decimal("1"), "1.00 Credit"),
        (Decimal("0.0125"), "0.0125 Credits"),
        (Decimal("12"), "12.00 Credits"),
        (None, "-"),
    ],
)
def test_credits(value, text):
    assert display.credits(value) == text


@pytest.mark.parametrize(
    "url_", ["javascript:alert(1)", "/relative.jpg", "data:text/html,x", "", None, "http://"]
)
def test_only_absolute_http_urls_reach_src_and_href(url_):
    assert display.safe_url(url_) is None
    assert display.thumbnail(url_, "x") == ""


def test_an_error_quoting_the_key_shows_redacted_in_the_admin(admin_client, jobs):
    # The admin shows what the client produced: a server that echoes the key in an error
    # body must not get it onto an admin page through the stored error.
    from django_tensorpix.client import TensorPixClient
    from django_tensorpix.conf import Account
    from django_tensorpix.exceptions import NotFound
    from tests.test_client_safety import _start_host

    finished = jobs["finished"]
    host = _start_host()
    try:
        host.json(f"/api/jobs/{finished.tensorpix_id}/", {"detail": f"bad {SECRET}"}, 404)
        client = TensorPixClient(Account("default", SECRET, host.url), max_retries=0)
        with client, pytest.raises(NotFound) as caught:
            client.get_job(finished.tensorpix_id)
    finally:
        host.server.shutdown()
        host.server.server_close()
    Job.objects.filter(pk=finished.pk).update(last_sync_error=str(caught.value))

    page = admin_client.get(url(Job, "change", finished.pk))

    assert "bad [redacted]" in page.text
    assert SECRET not in page.text


@pytest.mark.parametrize(("value", "errors"), [(True, []), (False, []), ("False", ["E050"])])
def test_admin_run_inline_must_be_a_boolean(settings, value, errors):
    from django_tensorpix.checks import check_admin_settings

    settings.TENSORPIX = {**settings.TENSORPIX, "ADMIN_RUN_INLINE": value}
    assert [str(message.id).split(".")[1] for message in check_admin_settings()] == errors
