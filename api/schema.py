"""The API's OpenAPI description beyond what drf-spectacular reads from the views: the
answers every operation may give (problems and their headers), the parameters several views
share with their bounds, and two fixes to the generated document (postprocessing hooks, named
in SPECTACULAR_SETTINGS).

The description is the API's contract: each bound the server enforces is declared, here or on
its serializer, and a request the description allows is never refused for its shape
(tests/test_api_properties.py sends generated requests to check it both ways).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers

from api.pagination import NewestFirst
from api.problems import PROBLEM
from jobs.models import Job
from jobs.services.input import MAX_KEY_LENGTH

_MESSAGES = {"type": "array", "items": {"type": "string"}}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [_MESSAGES, {"type": "object", "additionalProperties": _MESSAGES}]
        },
    }
)
class FieldErrors(serializers.DictField):
    """Messages by field; a list's by the position of each invalid item."""


class ProblemSerializer(serializers.Serializer):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = FieldErrors(
        required=False,
        help_text="The messages for each invalid field or parameter, by its name; for a "
        'list, by the position of each invalid item (from 0): {"cids": {"1": [...]}}.',
    )


class FreezeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cluster = serializers.CharField(allow_null=True, help_text="Null: every cluster.")
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField()


class ConflictProblemSerializer(ProblemSerializer):
    """A 409: customers busy with other jobs, a job a worker claimed first, or a change freeze
    over the cluster."""

    jobs = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        help_text="For busy customers: the jobs in progress that hold them, those the caller "
        "may see.",
    )
    freeze = FreezeSerializer(
        required=False,
        help_text="For a change freeze: the freeze that refuses Set Actions to the cluster "
        "until its end.",
    )


def _header(name: str, codes: list[int], description: str, type=OpenApiTypes.STR):
    return OpenApiParameter(
        name, type, OpenApiParameter.HEADER, response=codes, required=True, description=description
    )


# Who answers with each: DRF's throttles and api.waits (429), tmsdash.faults (503),
# api.problems (401, 405), api.views.submit (200 of a replay).
RETRY_AFTER = _header(
    "Retry-After", [429, 503], "Seconds to wait before asking again.", OpenApiTypes.INT
)
WWW_AUTHENTICATE = _header("WWW-Authenticate", [401], 'The scheme to use: Bearer realm="tmsdash".')
ALLOW = _header("Allow", [405], "The methods this path answers.")
LOCATION = _header(
    "Location",
    [201],
    "The API URL of the job made (GET /jobs/{id}), or of its batch (GET /batches/{id}) when "
    "the cluster's limit of customers a request split them into several jobs.",
)
REPLAYED = _header(
    "Idempotent-Replayed",
    [200],
    "true: the answer is the jobs the first request with this Idempotency-Key and body made; "
    "nothing was made again.",
)

PROBLEM_DESCRIPTIONS = {
    400: "A malformed or invalid request, and nothing was written: `errors` names each invalid "
    "field or parameter.",
    401: "No valid API token.",
    403: "Not allowed for this token or its user.",
    404: "No such object, or not one the caller may see.",
    405: "Not a method this path answers: `Allow` lists those it does.",
    406: "The Accept header does not allow application/json, the type of every answer but "
    "a problem's.",
    409: "Customers busy with jobs in progress (`jobs` names those the caller may see), or a "
    "job a worker claimed first.",
    415: "The body is not JSON (Content-Type: application/json).",
    422: "The Idempotency-Key was used before with another request body.",
    429: "Too many requests for this token: retry after `Retry-After` seconds.",
    500: "The server failed; the error was logged.",
    503: "The database is not answering for a moment; nothing was changed: retry after "
    "`Retry-After` seconds.",
}
# What any operation may answer, whatever it does: a malformed request (a NUL in the address,
# say), no token, a method or media type the path does not serve, the rate limit, a failure.
EVERY_OPERATION = (400, 401, 405, 406, 429, 500, 503)


def problems(*codes: int) -> dict:
    """The problem responses for these status codes."""
    return {
        (code, PROBLEM): OpenApiResponse(
            ConflictProblemSerializer if code == 409 else ProblemSerializer,
            description=PROBLEM_DESCRIPTIONS[code],
        )
        for code in codes
    }


def operation(
    *,
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict,
    parameters: list | None = None,
    errors: tuple[int, ...] = (),
    **kwargs,
) -> Callable:
    """extend_schema for one operation: its name as a method, a summary, its tag, and every
    answer it may give: `responses`, the problems `errors` names and those of every
    operation, with their headers."""
    given = {key[0] if isinstance(key, tuple) else key for key in responses}
    codes = sorted({*EVERY_OPERATION, *errors} - given)
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        tags=[tag],
        parameters=[*(parameters or []), RETRY_AFTER, WWW_AUTHENTICATE, ALLOW],
        responses={**responses, **problems(*codes)},
        **kwargs,
    )


def page_parameters(pagination: type[NewestFirst]) -> list[OpenApiParameter]:
    """A cursor-paged list's parameters, with the bounds `pagination` enforces."""
    return [
        OpenApiParameter(
            pagination.page_size_query_param,
            {
                "type": "integer",
                "minimum": 1,
                "maximum": pagination.max_page_size,
                "default": pagination.page_size,
            },
            OpenApiParameter.QUERY,
            description=f"Rows a page, from 1 to {pagination.max_page_size}.",
        ),
        OpenApiParameter(
            pagination.cursor_query_param,
            OpenApiTypes.STR,
            OpenApiParameter.QUERY,
            description="Where the page starts: take it from a page's `next` or `previous` "
            "link, never make one.",
        ),
    ]


# An action as the API reads it: by its name as the dashboard writes it, or by its number (the
# service reads a name in any spelling too: jobs.services.input.parse_action). Generated
# clients name the numbers after their actions (x-enum-varnames).
ACTION = {
    "type": "string",
    "enum": [*Job.Action.labels, *map(str, Job.Action.values)],
    "x-enum-varnames": [*Job.Action.names, *(f"{name}_NUMBER" for name in Job.Action.names)],
}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # No control characters: the server refuses them with a 400 (api/views/submit.py).
    {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[^\\x00-\\x1f\\x7f]*$",
    },
    OpenApiParameter.HEADER,
    required=True,
    description=f"Any string of 1 to {MAX_KEY_LENGTH} characters without control characters, "
    "new for each intended "
    "submit: the same key and body again answer the first request's jobs (200, "
    "Idempotent-Replayed), the same key with another body 422.",
)


def _referred(schemas: dict, prop: dict) -> dict | None:
    """The component a property refers to as `allOf: [$ref]`, if it does."""
    refs = prop.get("allOf", [])
    if len(refs) != 1 or "$ref" not in refs[0]:
        return None
    return schemas[refs[0]["$ref"].rsplit("/", 1)[1]]


def enums(result: dict, generator, request, public) -> dict:
    """Two fixes to what drf-spectacular's enum hook (which moves each enum to a component of
    its own) leaves:

    - A nullable choice is left as `allOf: [$ref XEnum], nullable: true`, whose enum lacks null
      (OpenAPI 3.0 reads `nullable` as adding nothing to an enum) and which linters refuse (a
      `nullable` without `type`). The property gets the enum's type and values, null among
      them, in place; an enum component nothing refers to any more goes.
    - An enum's x-enum-varnames (ACTION's) are left on the property: they go with the enum.
    """
    schemas = result.get("components", {}).get("schemas", {})
    for component in schemas.values():
        properties = component.get("properties", {})
        for name, prop in properties.items():
            target = _referred(schemas, prop)
            if target is None or "enum" not in target:
                continue
            if "x-enum-varnames" in prop:
                target["x-enum-varnames"] = prop.pop("x-enum-varnames")
            if prop.get("nullable"):
                rest = {key: value for key, value in prop.items() if key != "allOf"}
                enum = {"type": target["type"], "enum": [*target["enum"], None]}
                properties[name] = enum | rest
    text = json.dumps([result["paths"], schemas])
    for name in [name for name, schema in schemas.items() if "enum" in schema]:
        if f'"#/components/schemas/{name}"' not in text:
            del schemas[name]
    return result


def valid_page_examples(result: dict, generator, request, public) -> dict:
    """Page links that are URIs. DRF's CursorPagination describes `next` with an example
    ending in a stray quote, which is no URI (its format), so linters refuse it."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.startswith("Paginated") and "next" in component.get("properties", {}):
            links = component["properties"]
            links["next"]["example"] = "https://tmsdash.example.org/api/v1/jobs?cursor=cD0yMDI2"
            links["previous"]["example"] = (
                "https://tmsdash.example.org/api/v1/jobs?cursor=cj0xJnA9MjAyNg"
            )
    return result


def empty_filters_allowed(result: dict, generator, request, public) -> dict:
    """An optional query parameter sent empty (`?status=`) is read as not sent: DRF reads
    query parameters as an HTML form's fields. The pagination reads its `page_size` itself,
    and refuses an empty one."""
    for path in result["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if (
                    parameter["in"] == "query"
                    and not parameter.get("required")
                    and parameter["name"] != NewestFirst.page_size_query_param
                ):
                    parameter["allowEmptyValue"] = True
    return result


def bodies_required(result: dict, generator, request, public) -> dict:
    """Every request body the API reads is required. drf-spectacular reads that from the
    body's own `required` properties, which a body described as `oneOf` (a run grant's: for
    a group or for a user) has not; without a body, such a request is a 400."""
    for path in result["paths"].values():
        for operation in path.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result


# tmsdash.middleware.RefuseNulMiddleware refuses a NUL anywhere in the path or the query
# string (400) before any view reads it.
NO_NUL = "^[^\\x00]*$"


def no_nul_in_the_address(result: dict, generator, request, public) -> dict:
    """Every string in the address (a path or query parameter) is declared without NUL, which
    the server refuses in any of them: a filter the description allowed with a NUL in it
    (`/audit?event=%00`) was a 400. An enum or a format (a UUID, a date) holds none already; a
    parameter with a pattern of its own excludes NUL in it (a customer ID's)."""
    for path in result["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if (
                    parameter["in"] in ("path", "query")
                    and schema.get("type") == "string"
                    and not {"enum", "format", "pattern"} & schema.keys()
                ):
                    schema["pattern"] = NO_NUL
    return result
