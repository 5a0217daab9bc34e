"""Small HTML pieces the admin pages share: badges, progress bars, thumbnails, durations.

Everything here returns escaped HTML (``format_html``) and reads only the row it is
given, so a changelist column never costs a query per row.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_tensorpix.enums import JobStatus, SubmissionState
from django_tensorpix.models import Job, Video

EMPTY = "-"

# CSS class suffix of each status badge (see static/django_tensorpix/admin.css).
STATUS_STYLES = {
    JobStatus.IN_QUEUE: "queued",
    JobStatus.PROCESSING: "processing",
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
}


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL, else ``None``.

    URLs come from TensorPix's payloads: a ``javascript:`` or relative one is never put
    in an ``href`` or ``src``.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


# Badge words for the local submission states (their full labels are the badge's title).
SUBMISSION_BADGES = {
    SubmissionState.PENDING: _("Pending"),
    SubmissionState.UPLOADING: _("Uploading"),
    SubmissionState.SUBMITTING: _("Submitting"),
    SubmissionState.UNCERTAIN: _("Uncertain"),
    SubmissionState.SUBMITTED: _("Submitted"),
    SubmissionState.REJECTED: _("Rejected"),
    SubmissionState.WITHDRAWN: _("Withdrawn"),
}
SUBMISSION_STYLES = {
    SubmissionState.REJECTED: "failed",
    SubmissionState.WITHDRAWN: "canceled",
}


def job_state(job: Job) -> tuple[str, str]:
    """The label and style of a job's badge: its TensorPix status once known, else where
    its submission stands. "Stalled" (``stalled_at``, set by the poller) overrides an
    active status."""
    if job.tensorpix_id is None or job.status is None:
        try:
            state = SubmissionState(job.submission_state)
        except ValueError:
            return job.submission_state, "unknown"
        badge = SUBMISSION_BADGES.get(state, state.label)
        return str(badge), SUBMISSION_STYLES.get(state, "submission")
    if job.stalled_at is not None and not job.is_terminal:
        return gettext("Stalled"), "stalled"
    try:
        status = JobStatus(job.status)
    except ValueError:
        return gettext("Status %(value)s") % {"value": job.status}, "unknown"
    return str(status.label), STATUS_STYLES[status]


def status_badge(job: Job) -> SafeString:
    label, style = job_state(job)
    title = label
    if job.status is None and job.submission_state in SubmissionState.values:
        title = SubmissionState(job.submission_state).label
    return format_html(
        '<span class="tpx-badge tpx-badge-{}" title="{}">{}</span>', style, title, label
    )


# Where an input video stands with TensorPix: the badge's word and style, by state.
UPLOAD_STATES = {
    "uploaded": (_("Uploaded"), "finished"),
    "waiting": (_("Waiting to upload"), "queued"),
    "refused": (_("Upload refused"), "failed"),
    "remote_only": (_("Not uploaded"), "unknown"),
}


def upload_state(video: Video) -> str:
    """A key of ``UPLOAD_STATES`` (``filters.UploadFilter`` selects the same rows)."""
    if video.tensorpix_id is not None:
        return "uploaded"
    if video.upload_error:
        return "refused"
    return "waiting" if video.local_file else "remote_only"


def upload_badge(video: Video) -> SafeString:
    """The upload state; a refused upload carries TensorPix's reason as the badge's title."""
    label, style = UPLOAD_STATES[upload_state(video)]
    return format_html(
        '<span class="tpx-badge tpx-badge-{}" title="{}">{}</span>',
        style,
        video.upload_error or label,
        label,
    )


def progress_bar(ratio: float | None) -> SafeString | str:
    """A bar and its percentage; TensorPix reports progress as a ratio from 0 to 1."""
    if ratio is None:
        return EMPTY
    percent = max(0, min(100, round(ratio * 100)))
    return format_html(
        '<span class="tpx-progress-cell"><span class="tpx-progress" role="progressbar"'
        ' aria-valuenow="{0}" aria-valuemin="0" aria-valuemax="100">'
        '<span class="tpx-progress-fill" style="width: {0}%"></span>'
        '</span> <span class="tpx-progress-text">{0}%</span></span>',
        percent,
    )


def human_duration(seconds: float | None) -> str:
    """``"2 h 5 min"``, ``"3 min 20 s"``, ``"45 s"``: two units at most, for timelines."""
    if seconds is None:
        return EMPTY
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [
        (days, gettext("%(n)d d")),
        (hours, gettext("%(n)d h")),
        (minutes, gettext("%(n)d min")),
        (secs, gettext("%(n)d s")),
    ]
    shown = [pattern % {"n": value} for value, pattern in units if value]
    return " ".join(shown[:2]) or gettext("0 s")


def human_eta(eta_s: float | None) -> str:
    """TensorPix's ``eta_s`` as a person would say it: "about 3 min"."""
    if eta_s is None:
        return EMPTY
    if eta_s < 45:
        return gettext("less than a minute")
    minutes = round(eta_s / 60)
    if minutes < 90:
        return ngettext("about %(n)d min", "about %(n)d min", minutes) % {"n": minutes}
    hours = round(eta_s / 3600)
    if hours < 36:
        return ngettext("about %(n)d hour", "about %(n)d hours", hours) % {"n": hours}
    days = round(eta_s / 86400)
    return ngettext("about %(n)d day", "about %(n)d days", days) % {"n": days}


def credits(value: Decimal | None) -> str:
    """A cost in Credits, two to four decimals (TensorPix reports Credits in ``cost_usd``)."""
    if value is None:
        return EMPTY
    whole, _, fraction = f"{value:.4f}".partition(".")
    amount = f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
    return ngettext("%(amount)s Credit", "%(amount)s Credits", 1 if value == 1 else 2) % {
        "amount": amount
    }


def thumbnail(url: str | None, alt: str, *, size: str = "small") -> SafeString | str:
    src = safe_url(url)
    if src is None:
        return ""
    return format_html(
        '<img class="tpx-thumb tpx-thumb-{}" src="{}" alt="{}" loading="lazy">', size, src, alt
    )


def short_datetime(value: datetime.datetime | None) -> str:
    """A compact date and time for list columns ("Nov 28, 21:07"; the year when not this
    year's), month names translated."""
    if value is None:
        return EMPTY
    local = timezone.localtime(value)
    pattern = "M j, H:i" if local.year == timezone.localtime().year else "M j Y, H:i"
    return formats.date_format(local, pattern)


def between(start: datetime.datetime | None, end: datetime.datetime | None) -> str:
    if start is None or end is None:
        return EMPTY
    return human_duration((end - start).total_seconds())
