"""The API's routes as data, and the OpenAPI 3.1 document built from them (``/openapi.json``).

``make_app`` registers exactly the routes of ``http.api.ROUTES`` and this module
describes exactly those, with the request models that validate them
(``http/schemas.py``): a route cannot be served without being in the document, and
a body cannot be taken in a shape the document does not give. JSON schemas come
from pydantic (``models_json_schema``; the call log's from its dataclasses via
``TypeAdapter``), so the document is never written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from vvk_pbx.domain.calls import CallRecord, Leg
from vvk_pbx.http import schemas

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"
OPENAPI_PATH = "/openapi.json"


class Who(Enum):
    """Who may call a route (S1, ``domain/access.py``); the value is what the document says."""

    PUBLIC = "anyone, without a login"
    LOGGED_IN = "anyone logged in"
    OPERATOR = "an operator (a person with the role, or an operator token)"
    READER = "an operator or a reports token (reads everything, changes nothing)"
    ADMIN = "an admin token"
    OWN_OR_OPERATOR = "the person themself (their own extension), or an operator"


@dataclass(frozen=True)
class Route:
    """One route: how it is served and how it is described.

    ``body``/``query`` validate the request before ``handler`` runs (422 otherwise);
    ``answer`` is the success body: a model, a component name (``"Call"``), or None
    for a body that is not JSON (``media``); ``path_values`` the only values a path
    parameter has, where they are few and known. ``errors`` are the statuses besides
    those every route of its kind has (401/403 when not public, 422 with a body or
    query, 503 when the database is down)."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    who: Who
    refusal: str = "your role may not do this"
    body: type[schemas.Strict] | None = None
    body_required: bool = True
    query: type[schemas.Query] | None = None
    ok: int = 200
    answer: type[BaseModel] | str | None = None
    many: bool = False
    media: tuple[str, ...] = ("application/json",)
    errors: tuple[int, ...] = ()
    description: str = ""
    database: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    path_values: dict[str, tuple[str, ...]] = field(default_factory=dict)


PATH_PARAMETERS = {
    "call_id": "the call's id (its caller channel's), from the live feed or the call log; "
    "`next` for the first in line where answering",
    "extension": "a staff member's or operator's extension",
    "message_id": "a ledger entry's id",
    "name": "a token's name",
    "filename": "a file of the pages",
}

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: queued for the call; the live feed shows the result",
    304: "Not modified (If-None-Match matched the ETag)",
    401: "Not logged in, or the token is not valid",
    403: "The role may not, or a browser change without its X-CSRF-Token",
    404: "Not found",
    409: "Not now: the call is not in a state that allows it, or the name is taken",
    413: "The body is over 64 KiB",
    422: "The request is malformed, or the rules refuse a value (see fields)",
    423: "Locked after too many wrong PINs",
    503: "The database does not answer; nothing changed",
}


def document(routes: Sequence[Route], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``: a JSON-ready dict."""
    components = _components(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vvk-pbx",
            "version": version,
            "description": (
                "The switchboard's API (växel och hänvisning). Times are ISO 8601; without "
                "an offset they are the site's local time. Errors are "
                "`{error, message, fields}`: `error` is a stable id (below), `message` a "
                "sentence for a person, `fields` the parameters at fault.\n\n"
                + "\n".join(f"- `{k}`: {v}" for k, v in schemas.ERROR_IDS.items())
                + "\n\nA change made with the session cookie sends the session's "
                "`X-CSRF-Token` header (from `POST /login` or `GET /me`)."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a machine's token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "vvk_session"},
            },
        },
    }


def _components(routes: Iterable[Route]) -> dict[str, Any]:
    inputs: list[tuple[type[BaseModel], Any]] = [(schemas.ErrorAnswer, "serialization")]
    for route in routes:
        if route.body is not None:
            inputs.append((route.body, "validation"))
        if isinstance(route.answer, type):
            inputs.append((route.answer, "serialization"))
    unique = list(dict.fromkeys(inputs))
    _, top = models_json_schema(unique, ref_template=REF)
    found: dict[str, Any] = dict(top.get("$defs", {}))
    for name, shape in (("Call", CallRecord), ("Leg", Leg)):
        schema = TypeAdapter(shape).json_schema(mode="serialization", ref_template=REF)
        found.update(schema.pop("$defs", {}))
        found[name] = schema
    found["Leg"]["properties"].pop("call_id", None)
    found["Leg"]["required"] = [r for r in found["Leg"]["required"] if r != "call_id"]
    found["Call"]["properties"]["legs"] = {
        "type": "array",
        "items": {"$ref": REF.format(model="Leg")},
    }
    return found


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{route.method.lower()}{_camel(route.path)}",
        "summary": route.summary,
        "tags": [route.tag],
        "description": (route.description + "\n\n" if route.description else "")
        + f"Who: {route.who.value}.",
        "parameters": _parameters(route),
        "responses": _responses(route),
    }
    operation["security"] = [] if route.who is Who.PUBLIC else [{"bearer": []}, {"session": []}]
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}
            },
        }
    operation.update(route.extra)
    return operation


def _camel(path: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", path)
    return "".join(word[:1].upper() + word[1:] for word in words if word) or "Root"


def _parameters(route: Route) -> list[dict[str, Any]]:
    found = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS.get(name, name),
            "schema": {"type": "string", "enum": list(route.path_values[name])}
            if name in route.path_values
            else {"type": "string", "minLength": 1},
        }
        for name in re.findall(r"\{(\w+)\}", route.path)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema(by_alias=True, ref_template=REF)
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            description = prop.pop("description", "")
            prop.pop("title", None)
            # A query string has no null: an absent parameter is the default.
            options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
            if len(options) == 1:
                prop.update(options[0])
            if prop.get("default", "") is None:
                del prop["default"]
            one = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                one["description"] = description
            found.append(one)
    return found


def _responses(route: Route) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorAnswer")}}}
    statuses = set(route.errors)
    if route.who is not Who.PUBLIC:
        statuses |= {401} if route.who is Who.LOGGED_IN else {401, 403}
    if route.body is not None:
        statuses |= {413, 422}
    if route.query is not None:
        statuses.add(422)
    if route.database and route.who is not Who.PUBLIC:
        statuses.add(503)
    responses: dict[str, Any] = {str(route.ok): {"description": STATUS_TEXT.get(route.ok, "OK")}}
    ok = responses[str(route.ok)]
    if isinstance(route.answer, str | type):
        name = route.answer if isinstance(route.answer, str) else route.answer.__name__
        schema: dict[str, Any] = {"$ref": REF.format(model=name)}
        if route.many:
            schema = {"type": "array", "items": schema}
        ok["content"] = {"application/json": {"schema": schema}}
    elif route.media != ("application/json",):
        ok["content"] = {media: {"schema": {"type": "string"}} for media in route.media}
    for status in sorted(statuses - {route.ok}):
        if status == 304:
            responses["304"] = {"description": STATUS_TEXT[304]}
            continue
        responses[str(status)] = {"description": STATUS_TEXT.get(status, ""), "content": error}
    return responses
