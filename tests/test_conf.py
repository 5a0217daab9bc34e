import pytest
from django.test import override_settings

from django_tensorpix.conf import (
    DEFAULT_BASE_URL,
    DEFAULTS,
    Account,
    ImproperlyConfiguredAccount,
    tensorpix_settings,
)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("TENSORPIX_API_KEY", raising=False)
    monkeypatch.delenv("TENSORPIX_BASE_URL", raising=False)
    return monkeypatch


def test_defaults_apply_when_the_host_sets_nothing(clean_env):
    with override_settings(TENSORPIX={}):
        for key, default in DEFAULTS.items():
            assert getattr(tensorpix_settings, key) == default
        account = tensorpix_settings.get_account()
    assert account == Account(alias="default", api_key="", base_url=DEFAULT_BASE_URL)


def test_host_values_override_defaults():
    with override_settings(TENSORPIX={"READ_TIMEOUT": 7.5, "PAGE_SIZE": 25}):
        assert tensorpix_settings.READ_TIMEOUT == 7.5
        assert tensorpix_settings.PAGE_SIZE == 25
        assert tensorpix_settings.CONNECT_TIMEOUT == DEFAULTS["CONNECT_TIMEOUT"]


def test_settings_reload_when_override_settings_changes_them():
    with override_settings(TENSORPIX={"MAX_RETRIES": 1}):
        assert tensorpix_settings.MAX_RETRIES == 1
        with override_settings(TENSORPIX={"MAX_RETRIES": 9}):
            assert tensorpix_settings.MAX_RETRIES == 9
        assert tensorpix_settings.MAX_RETRIES == 1


def test_unknown_setting_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        _ = tensorpix_settings.NOT_A_SETTING


def test_default_account_from_top_level_keys_without_trailing_slash(clean_env):
    with override_settings(TENSORPIX={"API_KEY": "k1", "BASE_URL": "https://emu.example/"}):
        account = tensorpix_settings.get_account()
    assert account.alias == "default"
    assert account.api_key == "k1"
    assert account.base_url == "https://emu.example"


def test_additional_accounts_default_to_the_tensorpix_base_url(clean_env):
    accounts = {
        "studio": {"API_KEY": "k2"},
        "staging": {"API_KEY": "k3", "BASE_URL": "http://127.0.0.1:8765"},
    }
    with override_settings(TENSORPIX={"API_KEY": "k1", "ACCOUNTS": accounts}):
        assert sorted(tensorpix_settings.accounts) == ["default", "staging", "studio"]
        studio = tensorpix_settings.get_account("studio")
        staging = tensorpix_settings.get_account("staging")
    assert (studio.api_key, studio.base_url) == ("k2", DEFAULT_BASE_URL)
    assert (staging.api_key, staging.base_url) == ("k3", "http://127.0.0.1:8765")


def test_unknown_account_names_the_configured_ones(clean_env):
    with (
        override_settings(TENSORPIX={"ACCOUNTS": {"studio": {"API_KEY": "k"}}}),
        pytest.raises(ImproperlyConfiguredAccount, match=r"'nope'.*default, studio"),
    ):
        tensorpix_settings.get_account("nope")


def test_environment_fills_the_default_account_when_settings_leave_it_empty(clean_env):
    clean_env.setenv("TENSORPIX_API_KEY", "from-env")
    clean_env.setenv("TENSORPIX_BASE_URL", "http://127.0.0.1:8765/")
    with override_settings(TENSORPIX={}):
        account = tensorpix_settings.get_account()
    assert (account.api_key, account.base_url) == ("from-env", "http://127.0.0.1:8765")


def test_settings_win_over_the_environment(clean_env):
    clean_env.setenv("TENSORPIX_API_KEY", "from-env")
    with override_settings(TENSORPIX={"API_KEY": "from-settings"}):
        assert tensorpix_settings.get_account().api_key == "from-settings"


def test_environment_does_not_fill_other_accounts(clean_env):
    clean_env.setenv("TENSORPIX_API_KEY", "from-env")
    with override_settings(TENSORPIX={"ACCOUNTS": {"studio": {}}}):
        assert tensorpix_settings.get_account("studio").api_key == ""


def test_account_repr_hides_the_api_key():
    account = Account(alias="default", api_key="sk-very-secret", base_url=DEFAULT_BASE_URL)
    assert "sk-very-secret" not in repr(account)
    assert "sk-very-secret" not in str(account)


def test_an_account_built_by_hand_drops_the_trailing_slash_too():
    assert Account("x", "k", "http://127.0.0.1:8765/").base_url == "http://127.0.0.1:8765"
