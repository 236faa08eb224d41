"""A field's errors and help text are tied to its input (aria-describedby, aria-invalid), in the
Set Action form and in the jobs list's filters."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def element(content: str, element_id: str) -> str:
    match = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', content)
    assert match, f"no element #{element_id}"
    return match[0]


def described_by(content: str, element_id: str) -> list[str]:
    match = re.search(r'aria-describedby="([^"]*)"', element(content, element_id))
    return match[1].split() if match else []


def test_set_action_field_errors_are_tied_to_their_inputs(client, operator, cluster):
    client.force_login(operator)
    response = client.post(
        reverse("set_action"),
        {
            "action": "3",
            "cluster": cluster.pk,
            "cids": "C1 not/a/cid",
            "token": "t",
            "idempotency_key": "key-1",
        },
    )
    content = response.content.decode()

    assert response.status_code == 200
    assert 'aria-invalid="true"' in element(content, "id_cids")
    assert described_by(content, "id_cids") == ["id_cids_helptext", "id_cids_error"]
    assert "Separated by commas" in content.split('id="id_cids_helptext"')[1].split("</")[0]
    assert "not/a/cid" in content.split('id="id_cids_error"')[1].split("</div>")[0]
    # A field without errors names only its help text, and is not invalid.
    assert "aria-invalid" not in element(content, "id_csv_file")
    assert described_by(content, "id_csv_file") == ["id_csv_file_helptext"]
    element(content, "id_csv_file_helptext")


def test_jobs_filter_errors_are_tied_to_their_inputs(client, operator):
    client.force_login(operator)
    response = client.get(
        reverse("job_list"), {"created_from": "2024-02-01", "created_to": "2024-01-01"}
    )
    content = response.content.decode()

    assert 'aria-invalid="true"' in element(content, "id_created_to")
    assert described_by(content, "id_created_to") == ["id_created_to_error"]
    error = content.split('id="id_created_to_error"')[1].split("</div>")[0]
    assert "is before" in error
    assert "aria-invalid" not in element(content, "id_created_from")
    assert described_by(content, "id_created_from") == []


def test_every_description_named_by_an_input_is_on_the_page(client, operator, cluster):
    client.force_login(operator)
    pages = [
        client.post(reverse("set_action"), {"action": "3", "cids": "not/a/cid"}),
        client.get(reverse("job_list"), {"created_from": "x", "created_to": "y", "q": "z" * 101}),
    ]
    for response in pages:
        content = response.content.decode()
        named = re.findall(r'aria-describedby="([^"]*)"', content)
        assert named
        for element_id in " ".join(named).split():
            element(content, element_id)
