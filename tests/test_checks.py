import pytest
from django.core.checks import Error
from django.test import override_settings

from django_tensorpix.checks import check_tensorpix_api_keys, check_tensorpix_settings


def check_ids(**tensorpix) -> list[str | None]:
    with override_settings(TENSORPIX=tensorpix):
        return [message.id for message in check_tensorpix_settings()]


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    monkeypatch.delenv("TENSORPIX_API_KEY", raising=False)
    monkeypatch.delenv("TENSORPIX_BASE_URL", raising=False)


def test_a_complete_configuration_passes():
    assert check_ids(API_KEY="k") == []


def test_e001_no_api_key_for_the_default_account():
    with override_settings(TENSORPIX={}):
        assert check_tensorpix_settings() == []
        messages = check_tensorpix_api_keys()
    assert [m.id for m in messages] == ["tensorpix.E001"]
    assert isinstance(messages[0], Error)
    assert "TENSORPIX_API_KEY" in str(messages[0].hint)


def test_e001_is_satisfied_by_the_environment(monkeypatch):
    monkeypatch.setenv("TENSORPIX_API_KEY", "from-env")
    assert check_ids() == []
    with override_settings(TENSORPIX={}):
        assert check_tensorpix_api_keys() == []


def test_e001_names_another_account_without_a_key():
    with override_settings(TENSORPIX={"API_KEY": "k", "ACCOUNTS": {"studio": {}}}):
        messages = check_tensorpix_api_keys()
    assert [m.id for m in messages] == ["tensorpix.E001"]
    assert "'studio'" in messages[0].msg


def test_e002_tensorpix_setting_must_be_a_dict():
    with override_settings(TENSORPIX=["API_KEY"]):
        assert [m.id for m in check_tensorpix_settings()] == ["tensorpix.E002"]


def test_e003_unknown_keys_are_rejected():
    with override_settings(TENSORPIX={"API_KEY": "k", "APIKEY": "typo"}):
        messages = check_tensorpix_settings()
    assert [m.id for m in messages] == ["tensorpix.E003"]
    assert "'APIKEY'" in messages[0].msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("READ_TIMEOUT", 0),
        ("CONNECT_TIMEOUT", -1),
        ("RETRY_BACKOFF_MAX", "5"),
        ("PAGE_SIZE", True),
        ("UPLOAD_CHUNK_SIZE", None),
        ("MAX_RETRIES", -1),
        ("MAX_RETRIES", 1.5),
    ],
)
def test_e004_bad_numbers_and_intervals(key, value):
    assert check_ids(API_KEY="k", **{key: value}) == ["tensorpix.E004"]


def test_e004_accepts_zero_retries():
    assert check_ids(API_KEY="k", MAX_RETRIES=0) == []


@pytest.mark.parametrize("url", ["backend.tensorpix.ai", "ftp://backend.tensorpix.ai", "https://"])
def test_e005_base_url_must_be_http_or_https(url):
    assert check_ids(API_KEY="k", BASE_URL=url) == ["tensorpix.E005"]


def test_e006_accounts_must_map_aliases_to_dicts():
    assert check_ids(API_KEY="k", ACCOUNTS={"studio": "key"}) == ["tensorpix.E006"]


def test_e007_plain_http_to_a_remote_host_outside_debug():
    assert check_ids(API_KEY="k", BASE_URL="http://backend.tensorpix.ai") == ["tensorpix.E007"]


def test_e007_allows_plain_http_in_debug():
    with override_settings(DEBUG=True):
        assert check_ids(API_KEY="k", BASE_URL="http://emulator.internal") == []


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765"])
def test_e007_allows_plain_http_to_a_local_emulator(host):
    assert check_ids(API_KEY="k", BASE_URL=f"http://{host}") == []


def test_e008_archive_storage_must_be_a_defined_storage():
    assert check_ids(API_KEY="k", ARCHIVE_STORAGE="archive") == ["tensorpix.E008"]
    with override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "archive": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        }
    ):
        assert check_ids(API_KEY="k", ARCHIVE_STORAGE="archive") == []


@pytest.mark.django_db  # Django 6 model checks ask the database about JSON support.
def test_checks_run_with_the_system_check_framework():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with override_settings(TENSORPIX={}), pytest.raises(SystemCheckError, match="E001"):
        call_command("check", deploy=True)


@pytest.mark.django_db
def test_a_missing_key_does_not_stop_commands_that_never_call_tensorpix():
    from django.core.management import call_command

    with override_settings(TENSORPIX={}):
        call_command("check")
        call_command("migrate", "--check", verbosity=0)


@pytest.mark.parametrize(
    "key", ["sk-abc def", "sk-abc\ndef", "sk-\x00abc", "sk-abcé"], ids=["space", "nl", "nul", "é"]
)
def test_e009_a_key_that_cannot_go_in_a_header_is_reported_without_echoing_it(key):
    with override_settings(TENSORPIX={"API_KEY": key, "ACCOUNTS": {"studio": {"API_KEY": key}}}):
        messages = check_tensorpix_settings()

    assert [m.id for m in messages] == ["tensorpix.E009", "tensorpix.E009"]
    for message in messages:
        assert "abc" not in f"{message.msg} {message.hint}"


def test_w001_a_key_with_a_trailing_newline_is_stripped_and_reported(monkeypatch):
    with override_settings(TENSORPIX={"API_KEY": "sk-secret-key\n"}):
        messages = check_tensorpix_settings()
        from django_tensorpix.conf import tensorpix_settings

        assert tensorpix_settings.get_account().api_key == "sk-secret-key"

    assert [m.id for m in messages] == ["tensorpix.W001"]
    assert "sk-secret" not in f"{messages[0].msg} {messages[0].hint}"


def test_e040_api_permission_classes_must_be_importable():
    assert check_ids(API_KEY="k", API_PERMISSION_CLASSES=["no.such.Permission"]) == [
        "tensorpix.E040"
    ]
    assert check_ids(API_KEY="k", API_PERMISSION_CLASSES="django_tensorpix") == ["tensorpix.E040"]
    assert (
        check_ids(API_KEY="k", API_PERMISSION_CLASSES=["rest_framework.permissions.IsAdminUser"])
        == []
    )
