"""Company sign-in's settings: an issuer that must be https (http only on loopback), a group
map that must parse, and nothing half-configured."""

from __future__ import annotations

import ast

import pytest

from tests.fresh_settings import start

COMPLETE = {
    "SECRET_KEY": "k" * 50,
    "OIDC_CLIENT_ID": "tmsdash",
    "OIDC_CLIENT_SECRET": "hunter2-client-secret",
    "OIDC_GROUP_MAP": "tms-operators=Operators,tms-admins=superuser,tms-admins=staff",
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OIDC_ISSUER", "http://login.example.com/realms/tms"),
        ("OIDC_ISSUER", "ftp://127.0.0.1/"),
        ("OIDC_ISSUER", "https://login.example.com/?hunter2"),
        ("OIDC_ISSUER", "login.example.com"),
        ("OIDC_GROUP_MAP", "tms-operators"),
        ("OIDC_GROUP_MAP", "=Operators"),
        ("OIDC_SESSION_MAX_AGE", "0"),
        # Renewed less often than the session lasts at most.
        ("OIDC_RENEW_SECONDS", "28801"),
        ("TMS_LOCAL_SIGNIN", "maybe"),
    ],
)
def test_a_malformed_sign_in_setting_stops_start_up_naming_it(name, value):
    result = start(**{**COMPLETE, "OIDC_ISSUER": "https://login.example.com", name: value})
    assert result.returncode != 0
    assert f"The environment variable {name} is malformed" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("missing", ["OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_GROUP_MAP"])
def test_an_issuer_without_its_client_or_map_stops_start_up(missing):
    settings = {**COMPLETE, "OIDC_ISSUER": "https://login.example.com", missing: ""}
    result = start(**settings)
    assert result.returncode != 0
    assert "OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and OIDC_GROUP_MAP must be too" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "issuer", ["https://login.example.com/realms/tms/", "http://127.0.0.1:8080", "http://localhost"]
)
def test_an_https_or_loopback_issuer_turns_company_sign_in_on(issuer):
    result = start(
        "repr((settings.OIDC_ENABLED, settings.OIDC_ISSUER, settings.OIDC_GROUP_MAP, "
        "settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']))",
        **COMPLETE,
        OIDC_ISSUER=issuer,
    )
    assert result.returncode == 0, result.stderr
    enabled, got, mapping, form_action = ast.literal_eval(result.stdout)
    origin = issuer.split("/realms")[0].rstrip("/")
    assert (enabled, got) == (True, issuer.rstrip("/"))
    assert mapping == {"tms-operators": ["Operators"], "tms-admins": ["superuser", "staff"]}
    # The sign-out form goes on to the provider's sign-out.
    assert form_action == ["'self'", origin]


def test_company_sign_in_is_off_and_passwords_on_by_default():
    result = start(
        "repr((settings.OIDC_ENABLED, settings.TMS_LOCAL_SIGNIN, settings.TMS_BREAK_GLASS_USERS, "
        "settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']))",
        SECRET_KEY="k",
    )
    assert ast.literal_eval(result.stdout) == (False, True, [], ["'self'"])
