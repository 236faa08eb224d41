"""Reading what an operator asks for: the action, the customers, the cluster and the token,
each checked before anything is written, every problem reported together."""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from jobs.models import Cluster, Job
from jobs.services.credentials import stored_credential_problems
from jobs.services.grants import run_granted, run_refusal
from jobs.services.limits import ERRORS_NAMED

# MAX_TOKEN_LENGTH is re-exported: the API and jobs.services name it from here.
from jobs.tokens import MAX_TOKEN_LENGTH as MAX_TOKEN_LENGTH
from jobs.tokens import token_errors
from lib.numbers import NotANumber, whole_number

MAX_KEY_LENGTH = 100


def _name_some(items: list[str]) -> str:
    shown = ", ".join(items[:ERRORS_NAMED])
    return shown + (f" and {len(items) - ERRORS_NAMED} more" if len(items) > ERRORS_NAMED else "")


def parse_action(value: int | str) -> int:
    """An action code from a code (1-5) or a name in any spelling (see JobAction.from_name)."""
    text = str(value).strip()
    try:
        if (code := whole_number(text)) in Job.Action.values:
            return code
    except NotANumber:
        pass
    if (action := Job.Action.from_name(text)) is not None:
        return int(action)
    names = ", ".join(Job.Action.labels)
    raise ValidationError({"action": [f"Unknown action {text!r}: choose one of {names}."]})


def parse_cids(cids: str | Sequence[str], positions: Sequence[str] | None = None) -> list[str]:
    """Customer IDs, split on commas, white space and new lines, blanks and repeats dropped.

    Each must match TMS_CID_PATTERN. `positions` names where each item of a sequence stands
    (for example "line 4" of a CSV file); by default "item N".
    """
    if isinstance(cids, str):
        items = re.findall(r"[^,\s]+", cids)
        positions = None
    else:
        items = [c.strip() for c in cids]
    if positions is not None and len(positions) != len(items):
        raise ValueError("one position is needed for each customer ID")
    pattern = re.compile(settings.TMS_CID_PATTERN)
    seen: dict[str, None] = {}
    bad = []
    for index, value in enumerate(items):
        if not value:
            continue
        if not pattern.fullmatch(value):
            label = positions[index] if positions else f"item {index + 1}"
            bad.append(f"{value[:70]!r} ({label})")
        seen.setdefault(value, None)
    if bad:
        raise ValidationError({"cids": [f"{len(bad)} invalid customer ID(s): {_name_some(bad)}."]})
    if not seen:
        raise ValidationError({"cids": ["Give at least one customer ID."]})
    if len(seen) > settings.TMS_MAX_CIDS:
        raise ValidationError(
            {
                "cids": [
                    f"{len(seen)} customer IDs; the most one submission may hold is "
                    f"{settings.TMS_MAX_CIDS}."
                ]
            }
        )
    return list(seen)


def _active_cluster(cluster: Cluster | str) -> Cluster:
    lookup = {"pk": cluster.pk} if isinstance(cluster, Cluster) else {"name": cluster}
    found = Cluster.objects.filter(is_active=True, **lookup).first()
    if found is None:
        raise ValidationError({"cluster": [f"No active cluster {cluster!s}."]})
    return found


def _parsed(
    *, user, action, cluster, cids, cid_positions, given=("action", "cluster", "cids")
) -> tuple[dict, dict[str, list[str]]]:
    """The action, cluster and customers parsed (those `given`), and the problems with them
    by field; PermissionDenied without jobs.run_set_action, and NotGranted as soon as the
    action and the cluster are known when no run grant of `user` covers them."""
    if not user.has_perm("jobs.run_set_action"):
        raise PermissionDenied("You may not run Set Actions.")
    errors: dict[str, list[str]] = {}
    values = {}
    for name, parse in (
        ("action", lambda: parse_action(action)),
        ("cluster", lambda: _active_cluster(cluster)),
        ("cids", lambda: parse_cids(cids, cid_positions)),
    ):
        if name not in given:
            continue
        try:
            values[name] = parse()
        except ValidationError as exc:
            errors.update(exc.message_dict)
    asked = values.get("action"), values.get("cluster")
    if None not in asked and not run_granted(user=user, action=asked[0], cluster=asked[1]):
        raise run_refusal(action=asked[0], cluster=asked[1])
    return values, errors


def set_action_checked(
    *, user, action, cluster, cids, cid_positions: Sequence[str] | None = None
) -> tuple[int, Cluster, list[str]]:
    """The action, cluster and customers of a Set Action `user` would run, checked as a
    submit checks them (without its token): PermissionDenied and NotGranted as `_parsed`
    raises them, else ValidationError by field for every problem together. What a saved Set
    Action holds is checked with it."""
    values, errors = _parsed(
        user=user, action=action, cluster=cluster, cids=cids, cid_positions=cid_positions
    )
    if errors:
        raise ValidationError(errors)
    return values["action"], values["cluster"], values["cids"]


def set_action_problems(*, user, **given) -> dict[str, list[str]]:
    """The problems a submit would find by field with those of `action`, `cluster`, `cids`
    and `token` that are `given`, the others left unchecked: for an interface that refuses a
    request for problems of its own and names every problem in one answer. PermissionDenied
    and NotGranted as `_parsed` raises them; writes nothing."""
    token = given.pop("token", None)
    values = {"action": None, "cluster": None, "cids": None} | given
    errors = _parsed(user=user, **values, cid_positions=None, given=tuple(given))[1]
    if token is not None and (problems := token_errors(token)):
        errors["token"] = problems
    return errors


def _validated(
    *,
    user,
    action,
    cluster,
    cids,
    cid_positions,
    token,
    idempotency_key,
    stored_credential=False,
    unattended=False,
):
    """Every input checked before anything is written; all problems reported together.

    PermissionDenied without jobs.run_set_action, and NotGranted (a PermissionDenied) as soon
    as the action and the cluster are known when no run grant of the user covers them, or,
    for the cluster's `stored_credential` instead of a token, when no grant lets them use it
    (a run grant alone does for an `unattended` run: a schedule's). A cluster without a stored
    credential is a problem on "token".
    """
    values, errors = _parsed(
        user=user, action=action, cluster=cluster, cids=cids, cid_positions=cid_positions
    )
    asked = values.get("action"), values.get("cluster")
    if stored_credential:
        if token:
            errors["token"] = ["Give a token or use the cluster's stored credential, not both."]
        elif None not in asked and (
            problems := stored_credential_problems(
                user=user, action=asked[0], cluster=asked[1], unattended=unattended
            )
        ):
            errors["token"] = problems
    elif problems := token_errors(token or ""):
        errors["token"] = problems
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
        errors["idempotency_key"] = [f"An idempotency key has 1 to {MAX_KEY_LENGTH} characters."]
    if errors:
        raise ValidationError(errors)
    return values["action"], values["cluster"], values["cids"]
