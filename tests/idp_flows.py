"""A person's browser at the test identity provider (devtools.idp): sign in on its page, confirm
sign-out on its page, as plain HTTP with a requests.Session."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests

TIMEOUT = 10


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    has_password: bool = False


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(found.get("action", ""), found.get("method", "get").lower()))
            self._open = True
        elif tag == "input" and self._open and "name" in found:
            if found.get("type") == "password":
                self.forms[-1].has_password = True
            self.forms[-1].fields[found["name"]] = found.get("value", "")
        elif tag == "button" and self._open and "name" in found:
            self.forms[-1].buttons.append((found["name"], found.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = False


def forms(response: requests.Response) -> list[Form]:
    """The forms of an HTML page, their actions made absolute."""
    parser = _FormParser()
    parser.feed(response.text)
    for form in parser.forms:
        form.action = urljoin(response.url, form.action)
    return parser.forms


def follow(browser: requests.Session, response: requests.Response) -> requests.Response:
    """`response` itself, or where its redirects lead."""
    if response.is_redirect:
        location = urljoin(response.url, response.headers["Location"])
        return browser.get(location, timeout=TIMEOUT)
    return response


def _submit(browser: requests.Session, form: Form, data: dict[str, str]) -> requests.Response:
    assert form.method == "post", f"the form at {form.action} is not posted"
    return browser.post(form.action, data={**form.fields, **data}, timeout=TIMEOUT)


def provider_sign_in(
    browser: requests.Session, response: requests.Response, username: str, password: str
) -> requests.Response:
    """From a response that redirects into the provider's authorization endpoint (or is its
    sign-in page): signs in on the page and follows the redirects back; the final response (the
    relying party's page, or the sign-in page again with its error)."""
    page = follow(browser, response)
    login = [form for form in forms(page) if form.has_password]
    assert login, f"no sign-in form at {page.url} ({page.status_code}): {page.text[:500]}"
    return _submit(browser, login[0], {"username": username, "password": password})


def provider_sign_out(browser: requests.Session, response: requests.Response) -> requests.Response:
    """From a response that redirects to the provider's end-session endpoint: confirms "Sign
    out" and follows the redirects back; the final response."""
    page = follow(browser, response)
    found = [form for form in forms(page) if "xsrf" in form.fields]
    assert found, f"no sign-out form at {page.url} ({page.status_code}): {page.text[:500]}"
    confirm = dict(found[0].buttons[:1])
    return _submit(browser, found[0], confirm)
