"""The controller's HTTP API: a thin adapter that parses, calls the service and serialises.

The routes are ``ROUTES`` at the end of this module (the pages' are in ``pages.py``):
each with who may call it and the pydantic models of its query and body
(``http/schemas.py``). ``/openapi.json`` is built from the same table
(``http/openapi.py``), so it describes every route and nothing else.

Every route but the public ones needs a person's session (``POST /login``: an
HttpOnly, SameSite=Strict cookie; a change sends the session's ``X-CSRF-Token``)
or a machine's ``Authorization: Bearer <token>`` (S1): 401 without, 403 with a role
that may not (``domain/access.py``), checked before the body is read.

Errors are ``{"error": <stable id>, "message": <text>, "fields": [{"field",
"message"}]}`` (``schemas.ErrorAnswer``). A database that does not answer is 503;
nothing is half done. Every change records who made it (``set_by``,
``cleared_by``, ``called_back_by``: an extension or ``token:<name>``). Times in
answers are ISO 8601 in the site's zone; times asked for without an offset are
local.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol, TypeVar

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler
from pydantic import BaseModel, ValidationError

from vvk_pbx import __version__
from vvk_pbx.domain.access import Principal, token_role
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.callflow.flows.transfer import TransferError
from vvk_pbx.domain.calls import CallRecord, Leg
from vvk_pbx.domain.queue import Presence
from vvk_pbx.domain.referral import Source
from vvk_pbx.http import openapi, pages, schemas
from vvk_pbx.http.openapi import Route, Who
from vvk_pbx.http.schemas import ErrorId, Strict
from vvk_pbx.services import hours_web, views
from vvk_pbx.services import report as report_service
from vvk_pbx.services.access import AccessService, LoginError
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.export import (
    MEDIA_TYPES,
    ExportError,
    ExportService,
    Filter,
    default_name,
)
from vvk_pbx.services.live import LiveFeed
from vvk_pbx.services.metrics import Metrics
from vvk_pbx.services.operator_queue import QueueError
from vvk_pbx.services.referrals import ReferralError, ReferralService, require_time_of_day
from vvk_pbx.storage.access import TokenExistsError
from vvk_pbx.storage.calllog import StorageError

log = logging.getLogger(__name__)


class CallsPort(Protocol):
    """What the API needs of the calls in progress (``services.calls.CallController``)."""

    def request_transfer(self, call_id: str, to: str, by: str | None = None) -> None: ...
    def request_answer(self, call_id: str | None, extension: str) -> str: ...
    def request_park(self, call_id: str, by: str) -> None: ...
    def request_consult(self, call_id: str, to: str, by: str) -> None: ...
    def request_consult_end(self, call_id: str, complete: bool, by: str) -> None: ...
    def set_presence(self, extension: str, presence: Presence) -> None: ...


class CallLogPort(Protocol):
    """What the API reads of the call log (``storage.calllog.CallLog``)."""

    async def list_calls(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[CallRecord]: ...
    async def legs_by_call(self, call_ids: list[str]) -> dict[str, list[Leg]]: ...


@dataclass(frozen=True)
class Services:
    """What the routes use: the calls in progress and their log, the referral and access
    services, the one clock."""

    calls: CallsPort
    call_log: CallLogPort
    referrals: ReferralService
    access: AccessService
    clock: Clock
    live: LiveFeed
    exports: ExportService
    metrics: Metrics | None = None

    @property
    def tz(self) -> tzinfo:
        return self.referrals.calendar.tz

    @property
    def calendar(self) -> Calendar:
        return self.referrals.calendar


HEALTH: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("health")
SERVICES: web.AppKey[Services] = web.AppKey("services")
METRICS_HANDLER: web.AppKey[Any] = web.AppKey("metrics_handler")
DOCUMENT: web.AppKey[bytes] = web.AppKey("openapi_document")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
BODY: web.RequestKey[BaseModel] = web.RequestKey("body")
QUERY: web.RequestKey[BaseModel] = web.RequestKey("query")
COOKIE = "vvk_session"
EXPORT_FILTERS = ("direction", "unit", "operator", "outcome")
HOURS_MAX_AGE_S = 60
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
M = TypeVar("M", bound=BaseModel)


def make_app(services: Services, health: Callable[[], dict[str, Any]]) -> web.Application:
    """The aiohttp application: the routes of ``ROUTES`` and the pages, each bound to its
    request models (``_bound``), and ``/openapi.json`` describing exactly those.
    ``health()`` returns the body of ``/health``; its ``ari_connected`` decides 200 or 503."""
    app = web.Application(client_max_size=64 * 1024, middlewares=[_json_errors, _authenticated])
    app[HEALTH] = health
    app[SERVICES] = services
    if services.metrics is not None:
        app[METRICS_HANDLER] = make_aiohttp_handler(services.metrics.registry)
    every = all_routes()
    app[DOCUMENT] = json.dumps(openapi.document(every, __version__), ensure_ascii=False).encode()
    for route in every:
        app.router.add_route(route.method, route.path, _bound(route))
    return app


def all_routes() -> list[Route]:
    """Every route the app serves: the API's and the pages'."""
    return [*ROUTES, *pages.ROUTES]


class ApiError(Exception):
    """An answer other than success: the HTTP ``status``, the stable ``error`` id
    (``schemas.ERROR_IDS``), a sentence for a person and the fields at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        error: ErrorId | None = None,
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error: ErrorId = error or _id_of(status)
        self.fields = fields or []

    @classmethod
    def of_value(cls, field: str, reason: str, status: int = 422) -> ApiError:
        """A value the rules refuse, naming its field (``ReferralError``, ``ExportError``)."""
        error: ErrorId = "not_found" if status == 404 else "invalid_value"
        return cls(status, reason, error, [{"field": field, "message": reason}])


def _id_of(status: int) -> ErrorId:
    ids: dict[int, ErrorId] = {
        400: "bad_request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_large",
        422: "invalid_value",
        423: "locked",
        503: "database_unavailable",
    }
    return ids.get(status, "internal")


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error as ``ErrorAnswer`` JSON: ours (``ApiError``), aiohttp's own (404, 405,
    413) and unexpected ones (500, logged with the traceback)."""
    try:
        response: web.StreamResponse = await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.message, exc.error, exc.fields)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except StorageError as exc:
        log.error("HTTP %s %s: %s", request.method, request.path, exc)
        return _error(503, f"the database is not answering; try again: {exc}")
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _error(500, "internal error; the controller's log has the details")
    return response


def _error(
    status: int,
    message: str,
    error: ErrorId | None = None,
    fields: list[dict[str, str]] | None = None,
) -> web.Response:
    body = {"error": error or _id_of(status), "message": message, "fields": fields or []}
    return web.json_response(body, status=status)


@web.middleware
async def _authenticated(request: web.Request, handler: Any) -> web.StreamResponse:
    """Who the request is (S1): a session cookie or a bearer token, or 401. A change made
    with a cookie must carry the session's CSRF token (the cookie is SameSite=Strict
    too): a page of another site cannot make one. Public routes pass as they are."""
    if (request.method, request.path) in PUBLIC or pages.is_public(request.method, request.path):
        response: web.StreamResponse = await handler(request)
        return response
    services, now = request.app[SERVICES], request.app[SERVICES].clock.now()
    principal: Principal | None = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        principal = await services.access.from_token(header.removeprefix("Bearer ").strip())
    elif COOKIE in request.cookies:
        principal = await services.access.from_session(request.cookies[COOKIE], now)
        if principal is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get("X-CSRF-Token", "")
            if principal.csrf is None or not secrets.compare_digest(sent, principal.csrf):
                return _error(
                    403, "a change from the browser needs its X-CSRF-Token", "csrf_missing"
                )
    if principal is None:
        return _error(401, "log in (POST /login) or send Authorization: Bearer <token>")
    request[PRINCIPAL] = principal
    response = await handler(request)
    return response


def _may(who: Who, principal: Principal, request: web.Request) -> bool:
    """Whether ``principal`` may call a route for ``who`` (``domain/access.py``)."""
    if who is Who.OPERATOR:
        return principal.operates
    if who is Who.READER:
        return principal.reads_everything
    if who is Who.ADMIN:
        return principal.administers
    if who is Who.OWN_OR_OPERATOR:
        return principal.may_change_referral(request.match_info["extension"])
    return True


def _bound(route: Route) -> openapi.Handler:
    """``route.handler`` behind its checks, in this order: the role (403: one who may not
    never learns from a 422 how the body would have been taken), then the query string
    and the body against the route's models (422 with the fields)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if route.who is not Who.PUBLIC and not _may(route.who, request[PRINCIPAL], request):
            raise ApiError(403, route.refusal)
        if route.query is not None:
            values = {key: request.query.getone(key) for key in request.query}
            request[QUERY] = _validated(route.query, values, "invalid_query")
        if route.body is not None:
            request[BODY] = await _read_body(request, route.body, route.body_required)
        return await route.handler(request)

    return handle


async def _read_body(request: web.Request, model: type[Strict], required: bool) -> BaseModel:
    """The body parsed and validated by ``model`` in one step (pydantic's JSON parser:
    a body nested thousands deep is an error, not a crash). Raises ``ApiError`` 422
    (``invalid_json`` or ``invalid_body``) or 413 (aiohttp's limit)."""
    raw = await request.read()
    if not raw.strip() and not required:
        return model()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        if any(p["type"] == "json_invalid" for p in problems):
            raise ApiError(422, model.expected, "invalid_json") from None
        if any(not p["loc"] for p in problems):  # JSON, but not an object
            raise ApiError(
                422, model.expected, "invalid_body", [{"field": "", "message": "not an object"}]
            ) from None
        raise _invalid(model, problems, "invalid_body") from None


def _validated(model: type[M], values: dict[str, str], error: ErrorId) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        expected: str = getattr(model, "expected", "the request")
        raise _invalid(model, exc.errors(include_url=False), error, expected) from None


def _invalid(
    model: type[BaseModel], problems: Any, error: ErrorId, expected: str | None = None
) -> ApiError:
    fields = []
    for problem in problems:
        name = ".".join(str(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden":
            said = "unknown parameter" if error == "invalid_query" else "unknown field"
        else:
            said = problem["msg"]
        fields.append({"field": name, "message": said})
    said = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(422, f"{expected or getattr(model, 'expected', '')}; {said}", error, fields)


def _body(request: web.Request, model: type[M]) -> M:
    """The validated body of this request's route; ``model`` must be the route's."""
    return _parsed(request, BODY, model)


def _query(request: web.Request, model: type[M]) -> M:
    """The validated query string of this request's route; ``model`` must be the route's."""
    return _parsed(request, QUERY, model)


def _parsed(request: web.Request, key: web.RequestKey[BaseModel], model: type[M]) -> M:
    found = request[key]
    if not isinstance(found, model):
        raise TypeError(f"the route validates {type(found).__name__}, not {model.__name__}")
    return found


def _hours_at(request: web.Request) -> datetime:
    """``?at=`` (local without an offset), else now: the instant the hours are asked for.
    Raises ``ApiError``."""
    services = request.app[SERVICES]
    at = _query(request, schemas.HoursQuery).at
    return services.clock.now() if at is None else _instant(services, at, "at", whole_days=True)


def _cached(request: web.Request, body: bytes, content_type: str) -> web.Response:
    """A public answer with an ``ETag`` (its digest) and ``Cache-Control``; 304 when the
    client has it already. The hours change at most by the minute."""
    tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": f"public, max-age={HOURS_MAX_AGE_S}"}
    if tag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)


async def _hours(request: web.Request) -> web.Response:
    """Public (H5): open or closed now (or ``?at=``), why, the next change, the week ahead."""
    week = hours_web.week_json(request.app[SERVICES].calendar, _hours_at(request))
    body = json.dumps(week, ensure_ascii=False).encode()
    return _cached(request, body, "application/json")


async def _hours_ics(request: web.Request) -> web.Response:
    """Public (H5): the next 365 days' openings and closed days as iCalendar."""
    services = request.app[SERVICES]
    start = services.clock.now().astimezone(services.tz).date()
    return _cached(request, hours_web.ics(services.calendar, start), "text/calendar")


async def _hours_html(request: web.Request) -> web.Response:
    """Public (H5): the same as a small HTML fragment to embed in the website."""
    body = hours_web.fragment(request.app[SERVICES].calendar, _hours_at(request)).encode()
    return _cached(request, body, "text/html")


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json")


async def _login(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = _body(request, schemas.LoginBody)
    try:
        login = await services.access.login(body.extension, body.pin, services.clock.now())
    except LoginError as exc:
        raise ApiError(
            exc.status, exc.reason, "login_failed" if exc.status == 401 else None
        ) from None
    response = web.json_response(_me_json(services, login.principal))
    response.set_cookie(
        COOKIE,
        login.secret,
        max_age=services.access.settings.access.session_hours * 3600,
        httponly=True,
        samesite="Strict",
        path="/",
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if COOKIE in request.cookies:
        await services.access.logout(request.cookies[COOKIE])
    response = web.json_response({"logged_out": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def _me(request: web.Request) -> web.Response:
    return web.json_response(_me_json(request.app[SERVICES], request[PRINCIPAL]))


def _me_json(services: Services, principal: Principal) -> dict[str, Any]:
    return {
        "name": principal.name,
        "who": services.access.who(principal),
        "extension": principal.extension,
        "roles": sorted(role.value for role in principal.roles),
        "csrf": principal.csrf,
    }


async def _health(request: web.Request) -> web.Response:
    body = request.app[HEALTH]()
    return web.json_response(body, status=200 if body.get("ari_connected") else 503)


def _refused(exc: TransferError | QueueError) -> ApiError:
    return ApiError(exc.status, exc.reason)


async def _transfer(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    body = _body(request, schemas.TransferBody)
    calls, by = request.app[SERVICES].calls, request[PRINCIPAL].name
    try:
        if body.consult:
            calls.request_consult(call_id, body.to, by)
        else:
            calls.request_transfer(call_id, body.to, by)
    except TransferError as exc:
        raise _refused(exc) from None
    status = "consulting" if body.consult else "transferring"
    return web.json_response({"call": call_id, "to": body.to, "status": status}, status=202)


async def _answer(request: web.Request) -> web.Response:
    """``POST /calls/{id}/answer`` (``next``: the first in line), optionally with
    ``{"operator": "1001"}``; a logged-in operator answers on their own phone."""
    operator = _body(request, schemas.AnswerBody).operator or request[PRINCIPAL].extension
    if not operator:
        raise ApiError(
            422,
            'say whose phone answers: {"operator": "<extension>"}',
            "invalid_body",
            [{"field": "operator", "message": "a token has no phone of its own"}],
        )
    wanted = request.match_info["call_id"]
    try:
        call_id = request.app[SERVICES].calls.request_answer(
            None if wanted == "next" else wanted, operator
        )
    except (TransferError, QueueError) as exc:
        raise _refused(exc) from None
    return web.json_response(
        {"call": call_id, "operator": operator, "status": "ringing"}, status=202
    )


async def _park(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    try:
        request.app[SERVICES].calls.request_park(call_id, request[PRINCIPAL].name)
    except TransferError as exc:
        raise _refused(exc) from None
    return web.json_response({"call": call_id, "status": "parked"}, status=202)


async def _consult_complete(request: web.Request) -> web.Response:
    return await _consult_end(request, complete=True)


async def _consult_cancel(request: web.Request) -> web.Response:
    return await _consult_end(request, complete=False)


async def _consult_end(request: web.Request, complete: bool) -> web.Response:
    call_id = request.match_info["call_id"]
    try:
        request.app[SERVICES].calls.request_consult_end(call_id, complete, request[PRINCIPAL].name)
    except TransferError as exc:
        raise _refused(exc) from None
    status = "completing" if complete else "taking back"
    return web.json_response({"call": call_id, "status": status}, status=202)


async def _presence(request: web.Request) -> web.Response:
    """``{"presence": "in" | "paused" | "out"}``: an operator's state, set by any operator
    (one who went home logged in is logged out by a colleague)."""
    extension = request.match_info["extension"]
    presence = _body(request, schemas.PresenceBody).presence
    try:
        request.app[SERVICES].calls.set_presence(extension, presence)
    except QueueError as exc:
        raise _refused(exc) from None
    return web.json_response({"extension": extension, "presence": presence.value})


async def _directory(request: web.Request) -> web.Response:
    """The staff directory (D1), ``?q=`` searching name, unit, title or extension while
    ignoring case and diacritics ("asa" finds "Åsa")."""
    board = request.app[SERVICES]
    found = views.directory(board.referrals.settings, _query(request, schemas.DirectoryQuery).q)
    return web.json_response(found)


async def _reasons(request: web.Request) -> web.Response:
    """The referral reasons (R1): code, name, the phrase callers hear."""
    reasons = request.app[SERVICES].referrals.reasons
    return web.json_response(
        [{"code": r.code, "name": r.name, "phrase": r.phrase} for r in reasons.values()]
    )


def _instant(board: Services, value: str, field: str, whole_days: bool = False) -> datetime:
    """An ISO 8601 time; without an offset, local. A date alone (midnight) only where
    ``whole_days`` (a period's bounds): nobody is back at 00:00. Raises ``ApiError``."""
    try:
        at = datetime.fromisoformat(value)
        if not whole_days:
            require_time_of_day(value, field)
    except ReferralError as exc:  # before ValueError, which it is
        raise ApiError.of_value(field, exc.reason) from None
    except ValueError:
        raise ApiError.of_value(field, f"{value!r} is not a time like 2026-12-01T14:30") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=board.tz)


async def _referrals(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    found = await board.referrals.in_force_now(board.clock.now())
    return web.json_response(
        [views.referral_json(board.referrals, found[ext]) for ext in sorted(found)]
    )


async def _referral(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    extension = request.match_info["extension"]
    if extension not in board.referrals.staff:
        raise ApiError(404, f"{extension} is not a staff extension")
    found = await board.referrals.in_force_now(board.clock.now())
    if extension not in found:
        raise ApiError(404, f"{extension} has no referral in force: the phone is open")
    return web.json_response(views.referral_json(board.referrals, found[extension]))


async def _set_referral(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    extension = request.match_info["extension"]
    body = _body(request, schemas.ReferralBody)
    now = board.clock.now()
    start = _instant(board, body.start, "from") if body.start is not None else now
    end = _instant(board, body.until, "until")
    try:
        referral = await board.referrals.set_referral(
            extension, body.reason, start, end, request[PRINCIPAL].name, Source.API, body.note
        )
    except ReferralError as exc:
        raise ApiError.of_value(
            exc.field, exc.reason, 404 if exc.field == "extension" else 422
        ) from None
    return web.json_response(views.referral_json(board.referrals, referral), status=201)


async def _clear_referral(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    extension = request.match_info["extension"]
    try:
        cleared = await board.referrals.clear_referral(
            extension, board.clock.now(), request[PRINCIPAL].name
        )
    except ReferralError as exc:
        raise ApiError(404, exc.reason) from None
    return web.json_response({"cleared": cleared is not None})


async def _messages(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    query = _query(request, schemas.MessagesQuery)
    now = board.clock.now()
    principal = request[PRINCIPAL]
    try:
        found = await board.referrals.ledger(now, query.unit, query.overdue == "true")
    except ReferralError as exc:
        raise ApiError.of_value(exc.field, exc.reason) from None
    if not principal.reads_everything:  # a person: their own messages only
        found = [m for m in found if m.extension == principal.extension]
    return web.json_response([views.message_json(m, now, board.tz) for m in found])


async def _take_message(request: web.Request) -> web.Response:
    """*Ta meddelande* (operator): ``{"extension": "1101", "caller": "0701234567",
    "name": optional, "note": optional, "call": optional call id}`` -> 201 with the
    ledger entry, its deadline 2 working days on (V2) and who took it (S1)."""
    board = request.app[SERVICES]
    body = _body(request, schemas.MessageBody)
    try:
        message = await board.referrals.message_taken(
            body.extension,
            body.caller,
            body.name,
            body.note,
            request[PRINCIPAL].name,
            board.clock.now(),
            body.call,
        )
    except ReferralError as exc:
        unknown = exc.field == "extension" and bool(body.extension)
        raise ApiError.of_value(exc.field, exc.reason, 404 if unknown else 422) from None
    return web.json_response(views.message_json(message, board.clock.now(), board.tz), status=201)


async def _called_back(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    now = board.clock.now()
    message_id = request.match_info["message_id"]
    principal = request[PRINCIPAL]
    found = await board.referrals.message(message_id)
    if found is None:
        raise ApiError(404, f"no message {message_id}")
    if not principal.may_mark(found.extension):
        raise ApiError(403, "you may mark your own messages only")
    message = await board.referrals.called_back(message_id, now, principal.name)
    if message is None:
        raise ApiError(404, f"no message {message_id}")
    return web.json_response(views.message_json(message, now, board.tz))


async def _calls(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    # The call log is on Asterisk's timeline (A1): today is the real one, whatever the
    # controller's --clock says.
    today = board.clock.real().astimezone(board.tz).replace(hour=0, minute=0, second=0)
    today = today.replace(microsecond=0)
    query = _query(request, schemas.CallsQuery)
    since = _instant(board, query.since, "since", True) if query.since is not None else today
    until = _instant(board, query.until, "until", True) if query.until is not None else None
    records = await board.call_log.list_calls(since, until)
    legs = await board.call_log.legs_by_call([r.id for r in records])
    return web.json_response([views.call_json(r, board.tz, legs.get(r.id, [])) for r in records])


async def _export(request: web.Request) -> web.StreamResponse:
    """``GET /calls/export?format=csv|csv-sv|jsonl|xlsx&from=&to=&direction=&unit=&operator=
    &outcome=`` (operator, reports): the call log streamed as a download (F1); the
    export is in the audit log with who asked (S1). 422 for a bad filter."""
    board = request.app[SERVICES]
    query = _query(request, schemas.ExportQuery)
    try:
        wanted = Filter(
            _instant(board, query.start, "from", True) if query.start is not None else None,
            _instant(board, query.to, "to", True) if query.to is not None else None,
            **{
                key: getattr(query, key)
                for key in EXPORT_FILTERS
                if getattr(query, key) is not None
            },
        )
        board.exports.query(wanted)  # a bad filter is a 422 before the download starts
    except ExportError as exc:
        raise ApiError.of_value(exc.field, exc.reason) from None
    now = board.clock.now()
    response = web.StreamResponse(
        headers={
            "Content-Type": MEDIA_TYPES[query.format],
            "Content-Disposition": f'attachment; filename="{default_name(query.format, now)}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    # The rows go to a spooled file and out in chunks: the store's pages are read on
    # the loop, and a slow client never holds a database connection.
    with tempfile.TemporaryFile() as spool:
        await board.exports.export(wanted, query.format, spool, request[PRINCIPAL].name, now)
        spool.seek(0)
        while chunk := spool.read(64 * 1024):
            await response.write(chunk)
    await response.write_eof()
    return response


async def _report(request: web.Request) -> web.Response:
    """``GET /report?month=2026-11`` (operator, reports): the monthly follow-up as a page."""
    board = request.app[SERVICES]
    month = _query(request, schemas.ReportQuery).month
    settings = board.referrals.settings
    try:
        figures = await report_service.build(
            month, board.exports.calls, board.referrals.messages, settings, board.clock.now()
        )
    except report_service.ReportError as exc:
        raise ApiError.of_value("month", str(exc)) from None
    return web.Response(text=report_service.render(figures, settings), content_type="text/html")


async def _metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus's text format (operator, reports: a scraper sends a reports token),
    served by prometheus-client's own aiohttp handler over the controller's registry."""
    handler = request.app.get(METRICS_HANDLER)
    if handler is None:
        raise ApiError(404, "no metrics in this process")
    response: web.StreamResponse = await handler(request)
    return response


async def _tokens(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    return web.json_response([views.token_json(t, board.tz) for t in await board.access.tokens()])


async def _create_token(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    body = _body(request, schemas.TokenBody)
    try:
        secret = await board.access.create_token(
            body.name, token_role(body.role), board.clock.now()
        )
    except TokenExistsError as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise ApiError.of_value("name", str(exc)) from None
    return web.json_response({"name": body.name, "role": body.role, "token": secret}, status=201)


async def _revoke_token(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    name = request.match_info["name"]
    if not await board.access.revoke(name, board.clock.now()):
        raise ApiError(404, f"no token {name!r} in force")
    return web.json_response({"revoked": name})


KEEPALIVE_S = 15.0  # a ping this often, so proxies keep the stream and pages can tell it lives


def _sse(event: str, data: object, seq: int | None = None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _events(request: web.Request) -> web.StreamResponse:
    feed = request.app[SERVICES].live
    snapshot, sub = await feed.subscribe()
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    try:
        await response.prepare(request)
        await response.write(_sse("snapshot", snapshot, snapshot["seq"]))
        while True:
            try:
                message = await asyncio.wait_for(sub.next(), KEEPALIVE_S)
            except TimeoutError:
                # A named event, not a comment: a page that hears nothing for
                # 2.5 × KEEPALIVE_S knows its stream is dead even when no error comes.
                now = views.local(request.app[SERVICES].clock.real(), request.app[SERVICES].tz)
                await response.write(_sse("ping", {"now": now}))
                continue
            if message is None:
                await response.write(_sse("cut", {"reconnect": True}))
                break
            await response.write(_sse("change", message, message["seq"]))
    except ConnectionResetError:
        pass  # the page went away; noticed at the next write (a keepalive at the latest)
    finally:
        feed.unsubscribe(sub)
    return response


_CALLS = "calls in progress"
_REFERRALS = "referrals"
_LEDGER = "callbacks"
_LOG = "call log and follow-up"
_PUBLIC = "public"
_ACCESS = "access"
_CALL_ERRORS = (404, 409, 422)
ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/health",
        _health,
        "The controller's state: 200 while the ARI events "
        "socket is up, else 503 with the same body",
        _PUBLIC,
        Who.PUBLIC,
        answer=schemas.Health,
        errors=(503,),
        database=False,
    ),
    Route(
        "GET",
        "/hours",
        _hours,
        "Open or closed now (or at ?at=), why, the next change and the week ahead (H5)",
        _PUBLIC,
        Who.PUBLIC,
        query=schemas.HoursQuery,
        answer=schemas.HoursAnswer,
        errors=(304,),
        database=False,
    ),
    Route(
        "GET",
        "/hours.ics",
        _hours_ics,
        "The next 365 days' openings and closed days as iCalendar (H5)",
        _PUBLIC,
        Who.PUBLIC,
        media=("text/calendar",),
        errors=(304,),
        database=False,
    ),
    Route(
        "GET",
        "/hours.html",
        _hours_html,
        "The hours as an HTML fragment for the website (H5)",
        _PUBLIC,
        Who.PUBLIC,
        query=schemas.HoursQuery,
        media=("text/html",),
        errors=(304,),
        database=False,
    ),
    Route(
        "GET",
        openapi.OPENAPI_PATH,
        _openapi,
        "This document",
        _PUBLIC,
        Who.PUBLIC,
        media=("application/json",),
        database=False,
    ),
    Route(
        "POST",
        "/login",
        _login,
        "Log in with the extension and the phone's PIN: sets the "
        "session cookie; the answer has the CSRF token (S1)",
        _ACCESS,
        Who.PUBLIC,
        body=schemas.LoginBody,
        answer=schemas.MeAnswer,
        errors=(401, 423, 503),
    ),
    Route(
        "POST",
        "/logout",
        _logout,
        "End the session",
        _ACCESS,
        Who.LOGGED_IN,
        answer=schemas.LoggedOut,
    ),
    Route(
        "GET",
        "/me",
        _me,
        "Who the request is, and the session's CSRF token",
        _ACCESS,
        Who.LOGGED_IN,
        answer=schemas.MeAnswer,
    ),
    Route(
        "POST",
        "/calls/{call_id}/transfer",
        _transfer,
        "Transfer a connected call: blind, or with consultation (koppla med förfrågan, A5)",
        _CALLS,
        Who.OPERATOR,
        "only an operator transfers calls",
        body=schemas.TransferBody,
        ok=202,
        answer=schemas.CallAction,
        errors=_CALL_ERRORS,
        database=False,
    ),
    Route(
        "POST",
        "/calls/{call_id}/answer",
        _answer,
        "Answer a waiting caller on an operator's phone (svara); `next` is the first in line",
        _CALLS,
        Who.OPERATOR,
        "only an operator answers calls from the queue",
        body=schemas.AnswerBody,
        body_required=False,
        ok=202,
        answer=schemas.CallAction,
        errors=_CALL_ERRORS,
        database=False,
    ),
    Route(
        "POST",
        "/calls/{call_id}/park",
        _park,
        "Park a connected call; it rings the operator again after recall_s (parkera)",
        _CALLS,
        Who.OPERATOR,
        "only an operator parks calls",
        ok=202,
        answer=schemas.CallAction,
        errors=_CALL_ERRORS,
        database=False,
    ),
    Route(
        "POST",
        "/calls/{call_id}/consult/complete",
        _consult_complete,
        "Complete a consultation: the caller and the colleague talk (slutför)",
        _CALLS,
        Who.OPERATOR,
        "only an operator transfers calls",
        ok=202,
        answer=schemas.CallAction,
        errors=_CALL_ERRORS,
        database=False,
    ),
    Route(
        "POST",
        "/calls/{call_id}/consult/cancel",
        _consult_cancel,
        "Cancel a consultation: the operator takes the caller back",
        _CALLS,
        Who.OPERATOR,
        "only an operator transfers calls",
        ok=202,
        answer=schemas.CallAction,
        errors=_CALL_ERRORS,
        database=False,
    ),
    Route(
        "POST",
        "/operators/{extension}/presence",
        _presence,
        "An operator's state: in, paused or out",
        _CALLS,
        Who.OPERATOR,
        "only an operator sets an operator's state",
        body=schemas.PresenceBody,
        answer=schemas.PresenceAnswer,
        errors=(404, 422),
        database=False,
    ),
    Route(
        "GET",
        "/directory",
        _directory,
        "The staff directory (D1), searched without regard to case or diacritics",
        _REFERRALS,
        Who.LOGGED_IN,
        query=schemas.DirectoryQuery,
        answer=schemas.PersonAnswer,
        many=True,
        database=False,
    ),
    Route(
        "GET",
        "/reasons",
        _reasons,
        "The referral reasons (R1): code, name, the phrase callers hear",
        _REFERRALS,
        Who.LOGGED_IN,
        answer=schemas.ReasonAnswer,
        many=True,
        database=False,
    ),
    Route(
        "GET",
        "/referrals",
        _referrals,
        "Every referral in force, by extension (R6)",
        _REFERRALS,
        Who.LOGGED_IN,
        answer=schemas.ReferralAnswer,
        many=True,
    ),
    Route(
        "GET",
        "/referrals/{extension}",
        _referral,
        "A person's referral in force; 404 when their phone is open",
        _REFERRALS,
        Who.LOGGED_IN,
        answer=schemas.ReferralAnswer,
        errors=(404,),
    ),
    Route(
        "PUT",
        "/referrals/{extension}",
        _set_referral,
        "Set a person's referral (R2, R3)",
        _REFERRALS,
        Who.OWN_OR_OPERATOR,
        "a person changes their own referral only; an operator anyone's",
        body=schemas.ReferralBody,
        ok=201,
        answer=schemas.ReferralAnswer,
        errors=(404,),
    ),
    Route(
        "DELETE",
        "/referrals/{extension}",
        _clear_referral,
        "Open a person's phone (R4)",
        _REFERRALS,
        Who.OWN_OR_OPERATOR,
        "a person clears their own referral only; an operator anyone's",
        answer=schemas.Cleared,
        errors=(404,),
    ),
    Route(
        "GET",
        "/messages",
        _messages,
        "The callback ledger (V2); a person sees their own",
        _LEDGER,
        Who.LOGGED_IN,
        query=schemas.MessagesQuery,
        answer=schemas.MessageAnswer,
        many=True,
    ),
    Route(
        "POST",
        "/messages",
        _take_message,
        "A message taken for a person (ta meddelande, V2): into their ledger with its deadline",
        _LEDGER,
        Who.OPERATOR,
        "only an operator takes messages for others",
        body=schemas.MessageBody,
        ok=201,
        answer=schemas.MessageAnswer,
        errors=(404,),
    ),
    Route(
        "POST",
        "/messages/{message_id}/called-back",
        _called_back,
        "Mark a message called back; a person marks their own, an operator any",
        _LEDGER,
        Who.LOGGED_IN,
        answer=schemas.MessageAnswer,
        errors=(403, 404),
    ),
    Route(
        "GET",
        "/calls",
        _calls,
        "The call log with legs (A1, O1), as `vvk-pbx calls list --json`",
        _LOG,
        Who.READER,
        "the call log is for operators and reports",
        query=schemas.CallsQuery,
        answer="Call",
        many=True,
    ),
    Route(
        "GET",
        "/calls/export",
        _export,
        "The call log as a download: CSV, Swedish-Excel "
        "CSV, JSON lines or XLSX (F1); recorded in the audit log (S1)",
        _LOG,
        Who.READER,
        "the call log is for operators and reports",
        query=schemas.ExportQuery,
        media=tuple(dict.fromkeys(MEDIA_TYPES.values())),
    ),
    Route(
        "GET",
        "/report",
        _report,
        "The monthly follow-up as one HTML page (O1)",
        _LOG,
        Who.READER,
        "the report is for reports",
        query=schemas.ReportQuery,
        media=("text/html",),
    ),
    Route(
        "GET",
        "/metrics",
        _metrics,
        "Prometheus's text format",
        _LOG,
        Who.READER,
        "metrics are for operators and reports",
        media=("text/plain",),
        errors=(404,),
        database=False,
    ),
    Route(
        "GET",
        "/events",
        _events,
        "The live feed as server-sent events: `snapshot`, then "
        "`change` per section, `ping` every 15 s, `cut` to reconnect",
        _CALLS,
        Who.READER,
        "the live feed is for operators",
        media=("text/event-stream",),
        database=False,
    ),
    Route(
        "GET",
        "/tokens",
        _tokens,
        "The machines' tokens (never their secrets)",
        _ACCESS,
        Who.ADMIN,
        "only an admin manages tokens",
        answer=schemas.TokenAnswer,
        many=True,
    ),
    Route(
        "POST",
        "/tokens",
        _create_token,
        "A new token: the secret is in this answer only",
        _ACCESS,
        Who.ADMIN,
        "only an admin manages tokens",
        body=schemas.TokenBody,
        ok=201,
        answer=schemas.TokenCreated,
        errors=(409,),
    ),
    Route(
        "DELETE",
        "/tokens/{name}",
        _revoke_token,
        "Revoke a token at once",
        _ACCESS,
        Who.ADMIN,
        "only an admin manages tokens",
        answer=schemas.Revoked,
        errors=(404,),
    ),
)
PUBLIC = {(route.method, route.path) for route in ROUTES if route.who is Who.PUBLIC}
