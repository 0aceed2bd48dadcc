"""The controller's HTTP API: a thin adapter that parses, calls the service and serialises.

Routes (JSON in and out; errors are ``{"error": "<reason>"}`` with a 4xx status).
Every route but the three public ones needs a person's session (``POST /login``:
an HttpOnly, SameSite=Strict cookie; a change sends the session's
``X-CSRF-Token``) or a machine's ``Authorization: Bearer <token>`` (S1): 401
without, 403 with a role that may not (``domain/access.py``).

- public: ``GET /health`` (200 while the ARI events socket is up, else 503),
  ``GET /hours`` (the switchboard open or closed now, and the next change, H5),
  ``POST /login`` with ``{"extension": "1101", "pin": "4711"}`` (200 with who
  and the CSRF token; 401 wrong; 423 locked, as the phone locks).
- ``POST /logout``; ``GET /me``: who the request is.
- ``POST /calls/{id}/transfer`` with ``{"to": "<extension>"}`` (operator): a
  blind transfer of a connected call (A5). 202 when queued; 404 no such call in
  progress; 409 not connected; 422 a malformed body or an unknown extension.
- ``GET /referrals``: every referral in force, by extension (R6).
- ``GET /referrals/{extension}``: that person's referral in force; 404 when the
  phone is open or the extension is not a staff member's.
- ``PUT /referrals/{extension}`` with ``{"reason": 2, "until": "2026-12-01T14:30",
  "from": optional, "note": optional}`` (times without an offset are local):
  201 with the referral (R2, R3); 404 unknown extension; 422 otherwise. A
  person may change their own, an operator anyone's.
- ``DELETE /referrals/{extension}``: open the phone (R4); 200 ``{"cleared": bool}``.
- ``GET /messages?unit=<id>&overdue=true``: the callback ledger (V2); a person
  sees only their own.
- ``POST /messages`` (operator) with ``{"extension", "caller", "name", "note"}``:
  a message taken for a person, into the ledger with its deadline (V2).
- ``POST /calls/{id}/answer`` (``next``: the first in line) ``{"operator"?}``,
  ``POST /calls/{id}/park``, ``POST /calls/{id}/transfer`` with ``"consult": true``,
  then ``POST /calls/{id}/consult/complete`` or ``.../cancel`` (operator): the
  console's svara, parkera and koppla med förfrågan; 202, or 404/409/422.
- ``POST /operators/{ext}/presence`` with ``{"presence": "in"|"paused"|"out"}``.
- ``GET /directory?q=`` (anyone logged in): the staff directory, searched
  without regard to case or diacritics; ``GET /reasons``: the referral reasons.
- ``POST /messages/{id}/called-back``: 200 with the message; 404 unknown. A
  person marks their own, an operator any.
- ``GET /calls?since=<time>&until=<time>`` (operator, reports): the call log
  with legs, as ``vvk-pbx calls list --json``; ``since`` defaults to today's
  start, local.
- ``GET /events`` (operator, reports): the live feed as server-sent events
  (``services/live.py``): ``snapshot`` first, then ``change`` per section;
  ``cut`` when the page fell behind or the controller stops (reconnect).
- ``GET /tokens``, ``POST /tokens`` with ``{"name": "intranet", "role":
  "reports"}`` (201 with the secret, shown once), ``DELETE /tokens/{name}``
  (admin): the machines' tokens, as ``vvk-pbx tokens``.

A database that does not answer is 503 with the reason; nothing is half done.

Every change records who made it (``set_by``, ``cleared_by``,
``called_back_by``: an extension or ``token:<name>``).

Times in answers are ISO 8601 in the site's zone.
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
from typing import Any, Protocol

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from vvk_pbx.domain.access import Principal, token_role
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.callflow.flows.transfer import TransferError
from vvk_pbx.domain.calls import CallRecord, Leg
from vvk_pbx.domain.queue import Presence
from vvk_pbx.domain.referral import Source
from vvk_pbx.http import pages
from vvk_pbx.services import hours_web, views
from vvk_pbx.services import report as report_service
from vvk_pbx.services.access import AccessService, LoginError
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.export import (
    FORMATS,
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
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
COOKIE = "vvk_session"
EXPORT_FILTERS = ("direction", "unit", "operator", "outcome")
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/hours"),
    ("GET", "/hours.ics"),
    ("GET", "/hours.html"),
    ("POST", "/login"),
}
HOURS_MAX_AGE_S = 60
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def make_app(services: Services, health: Callable[[], dict[str, Any]]) -> web.Application:
    """The aiohttp application. ``health()`` returns the body of ``/health``; its
    ``ari_connected`` decides 200 or 503."""
    app = web.Application(client_max_size=64 * 1024, middlewares=[_json_errors, _authenticated])
    app[HEALTH] = health
    app[SERVICES] = services
    if services.metrics is not None:
        app[METRICS_HANDLER] = make_aiohttp_handler(services.metrics.registry)
    app.router.add_get("/health", _health)
    app.router.add_get("/hours", _hours)
    app.router.add_get("/hours.ics", _hours_ics)
    app.router.add_get("/hours.html", _hours_html)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/me", _me)
    app.router.add_post("/calls/{call_id}/transfer", _transfer)
    app.router.add_post("/calls/{call_id}/answer", _answer)
    app.router.add_post("/calls/{call_id}/park", _park)
    app.router.add_post("/calls/{call_id}/consult/complete", _consult_complete)
    app.router.add_post("/calls/{call_id}/consult/cancel", _consult_cancel)
    app.router.add_post("/operators/{extension}/presence", _presence)
    app.router.add_get("/directory", _directory)
    app.router.add_get("/reasons", _reasons)
    app.router.add_get("/referrals", _referrals)
    app.router.add_get("/referrals/{extension}", _referral)
    app.router.add_put("/referrals/{extension}", _set_referral)
    app.router.add_delete("/referrals/{extension}", _clear_referral)
    app.router.add_get("/messages", _messages)
    app.router.add_post("/messages", _take_message)
    app.router.add_post("/messages/{message_id}/called-back", _called_back)
    app.router.add_get("/calls", _calls)
    app.router.add_get("/calls/export", _export)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/report", _report)
    app.router.add_get("/events", _events)
    app.router.add_get("/tokens", _tokens)
    app.router.add_post("/tokens", _create_token)
    app.router.add_delete("/tokens/{name}", _revoke_token)
    pages.add_pages(app)
    return app


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error as ``{"error": ...}``: aiohttp's own (404, 405, 413) and unexpected ones."""
    try:
        response: web.StreamResponse = await handler(request)
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


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


class Forbidden(web.HTTPForbidden):
    """403 with the reason, as JSON (``_json_errors``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason=reason)


@web.middleware
async def _authenticated(request: web.Request, handler: Any) -> web.StreamResponse:
    """Who the request is (S1): a session cookie or a bearer token, or 401. A change made
    with a cookie must carry the session's CSRF token (the cookie is SameSite=Strict
    too): a page of another site cannot make one."""
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
                return _error(403, "a change from the browser needs its X-CSRF-Token")
    if principal is None:
        return _error(401, "log in (POST /login) or send Authorization: Bearer <token>")
    request[PRINCIPAL] = principal
    response = await handler(request)
    return response


def _principal(request: web.Request, allowed: bool = True, what: str = "") -> Principal:
    """The request's principal; raises 403 (``what`` says why) unless ``allowed``.
    Checked before the body is read: one who may not gets 403, never a 422 that
    tells how the body would have been taken."""
    if not allowed:
        raise Forbidden(what or "your role may not do this")
    return request[PRINCIPAL]


def _hours_at(request: web.Request) -> datetime:
    """``?at=`` (local without an offset), else now: the instant the hours are asked for.
    Raises ``ReferralError``."""
    services = request.app[SERVICES]
    if "at" not in request.query:
        return services.clock.now()
    return _instant(services, request.query["at"], "at", whole_days=True)


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
    try:
        at = _hours_at(request)
    except ReferralError as exc:
        return _error(422, exc.reason)
    week = hours_web.week_json(request.app[SERVICES].calendar, at)
    body = json.dumps(week, ensure_ascii=False).encode()
    return _cached(request, body, "application/json")


async def _hours_ics(request: web.Request) -> web.Response:
    """Public (H5): the next 365 days' openings and closed days as iCalendar."""
    services = request.app[SERVICES]
    start = services.clock.now().astimezone(services.tz).date()
    return _cached(request, hours_web.ics(services.calendar, start), "text/calendar")


async def _hours_html(request: web.Request) -> web.Response:
    """Public (H5): the same as a small HTML fragment to embed in the website."""
    try:
        at = _hours_at(request)
    except ReferralError as exc:
        return _error(422, exc.reason)
    body = hours_web.fragment(request.app[SERVICES].calendar, at).encode()
    return _cached(request, body, "text/html")


async def _login(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await _json_object(request, 'the body must be {"extension": "...", "pin": "..."}')
    if isinstance(body, web.Response):
        return body
    extension, pin = body.get("extension"), body.get("pin")
    if not isinstance(extension, str) or not isinstance(pin, str):
        return _error(422, 'the body must be {"extension": "...", "pin": "..."} as strings')
    try:
        login = await services.access.login(extension, pin, services.clock.now())
    except LoginError as exc:
        return _error(exc.status, exc.reason)
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


async def _transfer(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    principal = _principal(request, request[PRINCIPAL].operates, "only an operator transfers calls")
    body = await _json_object(request, 'the body must be a JSON object: {"to": "<extension>"}')
    if isinstance(body, web.Response):
        return body
    to, consult = body.get("to"), body.get("consult", False)
    if not isinstance(to, str) or not to:
        return _error(422, 'the body must be {"to": "<extension>"} with the extension as a string')
    if not isinstance(consult, bool):
        return _error(422, "consult must be true or false")
    extra = sorted(set(body) - {"to", "consult"})
    if extra:
        return _error(422, f"unknown field(s): {', '.join(extra)}; only 'to' and 'consult'")
    calls = request.app[SERVICES].calls
    try:
        if consult:
            calls.request_consult(call_id, to, principal.name)
        else:
            calls.request_transfer(call_id, to, principal.name)
    except TransferError as exc:
        return _error(exc.status, exc.reason)
    status = "consulting" if consult else "transferring"
    return web.json_response({"call": call_id, "to": to, "status": status}, status=202)


def _operating(request: web.Request, what: str) -> Principal:
    return _principal(request, request[PRINCIPAL].operates, f"only an operator {what}")


async def _answer(request: web.Request) -> web.Response:
    """``POST /calls/{id}/answer`` (``next``: the first in line), optionally with
    ``{"operator": "1001"}``; a logged-in operator answers on their own phone."""
    principal = _operating(request, "answers calls from the queue")
    body = await _json_object(request) if request.can_read_body else {}
    if isinstance(body, web.Response):
        return body
    operator = body.get("operator", principal.extension)
    if not isinstance(operator, str) or not operator:
        return _error(422, 'say whose phone answers: {"operator": "<extension>"}')
    if set(body) - {"operator"}:
        return _error(422, "only 'operator' is accepted")
    wanted = request.match_info["call_id"]
    try:
        call_id = request.app[SERVICES].calls.request_answer(
            None if wanted == "next" else wanted, operator
        )
    except (TransferError, QueueError) as exc:
        return _error(exc.status, exc.reason)
    return web.json_response(
        {"call": call_id, "operator": operator, "status": "ringing"}, status=202
    )


async def _park(request: web.Request) -> web.Response:
    principal = _operating(request, "parks calls")
    call_id = request.match_info["call_id"]
    try:
        request.app[SERVICES].calls.request_park(call_id, principal.name)
    except TransferError as exc:
        return _error(exc.status, exc.reason)
    return web.json_response({"call": call_id, "status": "parked"}, status=202)


async def _consult_complete(request: web.Request) -> web.Response:
    return await _consult_end(request, complete=True)


async def _consult_cancel(request: web.Request) -> web.Response:
    return await _consult_end(request, complete=False)


async def _consult_end(request: web.Request, complete: bool) -> web.Response:
    principal = _operating(request, "transfers calls")
    call_id = request.match_info["call_id"]
    try:
        request.app[SERVICES].calls.request_consult_end(call_id, complete, principal.name)
    except TransferError as exc:
        return _error(exc.status, exc.reason)
    status = "completing" if complete else "taking back"
    return web.json_response({"call": call_id, "status": status}, status=202)


async def _presence(request: web.Request) -> web.Response:
    """``{"presence": "in" | "paused" | "out"}``: an operator's state, set by any operator
    (one who went home logged in is logged out by a colleague)."""
    extension = request.match_info["extension"]
    _operating(request, "sets an operator's state")
    body = await _json_object(request, 'the body must be {"presence": "in" | "paused" | "out"}')
    if isinstance(body, web.Response):
        return body
    try:
        presence = Presence(str(body.get("presence")))
    except ValueError:
        return _error(422, 'presence must be "in", "paused" or "out"')
    if set(body) - {"presence"}:
        return _error(422, "only 'presence' is accepted")
    try:
        request.app[SERVICES].calls.set_presence(extension, presence)
    except QueueError as exc:
        return _error(exc.status, exc.reason)
    return web.json_response({"extension": extension, "presence": presence.value})


async def _directory(request: web.Request) -> web.Response:
    """The staff directory (D1), ``?q=`` searching name, unit, title or extension while
    ignoring case and diacritics ("asa" finds "Åsa")."""
    board = request.app[SERVICES]
    found = views.directory(board.referrals.settings, request.query.get("q", ""))
    return web.json_response(found)


async def _reasons(request: web.Request) -> web.Response:
    """The referral reasons (R1): code, name, the phrase callers hear."""
    reasons = request.app[SERVICES].referrals.reasons
    return web.json_response(
        [{"code": r.code, "name": r.name, "phrase": r.phrase} for r in reasons.values()]
    )


async def _json_object(
    request: web.Request, reason: str = "the body must be a JSON object"
) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or a 422 saying what is expected."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        # RecursionError: a body nested thousands of levels deep.
        return _error(422, reason)
    if not isinstance(body, dict):
        return _error(422, reason)
    return body


def _instant(board: Services, value: object, field: str, whole_days: bool = False) -> datetime:
    """An ISO 8601 time; without an offset, local. A date alone (midnight) only where
    ``whole_days`` (a period's bounds): nobody is back at 00:00. Raises ``ReferralError``."""
    if not isinstance(value, str):
        raise ReferralError(field, f"{field} must be a time like 2026-12-01T14:30")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ReferralError(field, f"{value!r} is not a time like 2026-12-01T14:30") from None
    if not whole_days:
        require_time_of_day(value, field)
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
        return _error(404, f"{extension} is not a staff extension")
    found = await board.referrals.in_force_now(board.clock.now())
    if extension not in found:
        return _error(404, f"{extension} has no referral in force: the phone is open")
    return web.json_response(views.referral_json(board.referrals, found[extension]))


async def _set_referral(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    extension = request.match_info["extension"]
    principal = request[PRINCIPAL]
    _principal(
        request,
        principal.may_change_referral(extension),
        "a person changes their own referral only; an operator anyone's",
    )
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    extra = sorted(set(body) - {"reason", "until", "from", "note"})
    if extra:
        return _error(422, f"unknown field(s): {', '.join(extra)}")
    try:
        reason = body.get("reason")
        if not isinstance(reason, int) or isinstance(reason, bool):
            raise ReferralError("reason", "reason must be a reason code (a whole number)")
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            raise ReferralError("note", "note must be text")
        now = board.clock.now()
        start = _instant(board, body["from"], "from") if "from" in body else now
        end = _instant(board, body.get("until"), "until")
        referral = await board.referrals.set_referral(
            extension, reason, start, end, principal.name, Source.API, note
        )
    except ReferralError as exc:
        return _error(404 if exc.field == "extension" else 422, exc.reason)
    return web.json_response(views.referral_json(board.referrals, referral), status=201)


async def _clear_referral(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    extension = request.match_info["extension"]
    principal = request[PRINCIPAL]
    _principal(
        request,
        principal.may_change_referral(extension),
        "a person clears their own referral only; an operator anyone's",
    )
    try:
        cleared = await board.referrals.clear_referral(extension, board.clock.now(), principal.name)
    except ReferralError as exc:
        return _error(404, exc.reason)
    return web.json_response({"cleared": cleared is not None})


async def _messages(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    overdue = request.query.get("overdue", "false")
    if overdue not in ("true", "false"):
        return _error(422, "overdue must be true or false")
    now = board.clock.now()
    principal = request[PRINCIPAL]
    try:
        found = await board.referrals.ledger(now, request.query.get("unit"), overdue == "true")
    except ReferralError as exc:
        return _error(422, exc.reason)
    if not principal.reads_everything:  # a person: their own messages only
        found = [m for m in found if m.extension == principal.extension]
    return web.json_response([views.message_json(m, now, board.tz) for m in found])


async def _take_message(request: web.Request) -> web.Response:
    """*Ta meddelande* (operator): ``{"extension": "1101", "caller": "0701234567",
    "name": optional, "note": optional, "call": optional call id}`` -> 201 with the
    ledger entry, its deadline 2 working days on (V2) and who took it (S1)."""
    board = request.app[SERVICES]
    principal = _operating(request, "takes messages for others")
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    extra = sorted(set(body) - {"extension", "caller", "name", "note", "call"})
    if extra:
        return _error(422, f"unknown field(s): {', '.join(extra)}")
    fields = {key: body.get(key, "") for key in ("extension", "caller", "name", "note")}
    call = body.get("call")
    if not all(isinstance(value, str) for value in fields.values()) or not isinstance(
        call, str | None
    ):
        return _error(422, "extension, caller, name, note and call must be text")
    try:
        message = await board.referrals.message_taken(
            fields["extension"],
            fields["caller"],
            fields["name"],
            fields["note"],
            principal.name,
            board.clock.now(),
            call,
        )
    except ReferralError as exc:
        unknown = exc.field == "extension" and bool(fields["extension"])
        return _error(404 if unknown else 422, exc.reason)
    return web.json_response(views.message_json(message, board.clock.now(), board.tz), status=201)


async def _called_back(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    now = board.clock.now()
    message_id = request.match_info["message_id"]
    principal = request[PRINCIPAL]
    found = await board.referrals.message(message_id)
    if found is None:
        return _error(404, f"no message {message_id}")
    _principal(request, principal.may_mark(found.extension), "you may mark your own messages only")
    message = await board.referrals.called_back(message_id, now, principal.name)
    if message is None:
        return _error(404, f"no message {message_id}")
    return web.json_response(views.message_json(message, now, board.tz))


async def _calls(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    _principal(
        request, request[PRINCIPAL].reads_everything, "the call log is for operators and reports"
    )
    # The call log is on Asterisk's timeline (A1): today is the real one, whatever the
    # controller's --clock says.
    today = board.clock.real().astimezone(board.tz).replace(hour=0, minute=0, second=0)
    today = today.replace(microsecond=0)
    query = request.query
    try:
        since = _instant(board, query["since"], "since", True) if "since" in query else today
        until = _instant(board, query["until"], "until", True) if "until" in query else None
    except ReferralError as exc:
        return _error(422, exc.reason)
    records = await board.call_log.list_calls(since, until)
    legs = await board.call_log.legs_by_call([r.id for r in records])
    return web.json_response([views.call_json(r, board.tz, legs.get(r.id, [])) for r in records])


async def _export(request: web.Request) -> web.StreamResponse:
    """``GET /calls/export?format=csv|csv-sv|jsonl|xlsx&from=&to=&direction=&unit=&operator=
    &outcome=`` (operator, reports): the call log streamed as a download (F1); the
    export is in the audit log with who asked (S1). 422 for a bad filter."""
    board = request.app[SERVICES]
    principal = _principal(
        request, request[PRINCIPAL].reads_everything, "the call log is for operators and reports"
    )
    query = request.query
    extra = sorted(set(query) - {"format", "from", "to", *EXPORT_FILTERS})
    if extra:
        return _error(422, f"unknown parameter(s): {', '.join(extra)}")
    fmt = query.get("format", "csv")
    try:
        wanted = Filter(
            _instant(board, query["from"], "from", True) if "from" in query else None,
            _instant(board, query["to"], "to", True) if "to" in query else None,
            **{key: query[key] for key in EXPORT_FILTERS if key in query},
        )
        if fmt not in FORMATS:
            raise ExportError("format", f"format is one of {', '.join(FORMATS)}")
        board.exports.query(wanted)  # a bad filter is a 422 before the download starts
    except (ExportError, ReferralError) as exc:
        return _error(422, exc.reason)
    now = board.clock.now()
    response = web.StreamResponse(
        headers={
            "Content-Type": MEDIA_TYPES[fmt],
            "Content-Disposition": f'attachment; filename="{default_name(fmt, now)}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    # The rows go to a spooled file and out in chunks: the store's pages are read on
    # the loop, and a slow client never holds a database connection.
    with tempfile.TemporaryFile() as spool:
        await board.exports.export(wanted, fmt, spool, principal.name, now)
        spool.seek(0)
        while chunk := spool.read(64 * 1024):
            await response.write(chunk)
    await response.write_eof()
    return response


async def _report(request: web.Request) -> web.Response:
    """``GET /report?month=2026-11`` (operator, reports): the monthly follow-up as a page."""
    board = request.app[SERVICES]
    _principal(request, request[PRINCIPAL].reads_everything, "the report is for reports")
    month = request.query.get("month", "")
    settings = board.referrals.settings
    try:
        figures = await report_service.build(
            month, board.exports.calls, board.referrals.messages, settings, board.clock.now()
        )
    except report_service.ReportError as exc:
        return _error(422, str(exc))
    return web.Response(text=report_service.render(figures, settings), content_type="text/html")


async def _metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus's text format (operator, reports: a scraper sends a reports token),
    served by prometheus-client's own aiohttp handler over the controller's registry."""
    _principal(
        request, request[PRINCIPAL].reads_everything, "metrics are for operators and reports"
    )
    handler = request.app.get(METRICS_HANDLER)
    if handler is None:
        return _error(404, "no metrics in this process")
    response: web.StreamResponse = await handler(request)
    return response


def _admin(request: web.Request) -> Principal:
    return _principal(request, request[PRINCIPAL].administers, "only an admin manages tokens")


async def _tokens(request: web.Request) -> web.Response:
    _admin(request)
    board = request.app[SERVICES]
    return web.json_response([views.token_json(t, board.tz) for t in await board.access.tokens()])


async def _create_token(request: web.Request) -> web.Response:
    _admin(request)
    board = request.app[SERVICES]
    expected = 'the body must be {"name": "intranet", "role": "reports"}'
    body = await _json_object(request, expected)
    if isinstance(body, web.Response):
        return body
    name, role = body.get("name"), body.get("role")
    if set(body) != {"name", "role"} or not isinstance(name, str) or not isinstance(role, str):
        return _error(422, expected)
    try:
        chosen = token_role(role)
    except ValueError as exc:
        return _error(422, str(exc))
    try:
        secret = await board.access.create_token(name, chosen, board.clock.now())
    except TokenExistsError as exc:
        return _error(409, str(exc))
    except ValueError as exc:
        return _error(422, str(exc))
    return web.json_response({"name": name, "role": role, "token": secret}, status=201)


async def _revoke_token(request: web.Request) -> web.Response:
    _admin(request)
    board = request.app[SERVICES]
    name = request.match_info["name"]
    if not await board.access.revoke(name, board.clock.now()):
        return _error(404, f"no token {name!r} in force")
    return web.json_response({"revoked": name})


KEEPALIVE_S = 15.0  # a ping this often, so proxies keep the stream and pages can tell it lives


def _sse(event: str, data: object, seq: int | None = None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _events(request: web.Request) -> web.StreamResponse:
    _principal(request, request[PRINCIPAL].reads_everything, "the live feed is for operators")
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
