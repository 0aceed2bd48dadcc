"""The controller's HTTP API: a thin adapter that parses, calls the service and serialises.

Routes (JSON in and out; errors are ``{"error": "<reason>"}`` with a 4xx status):

- ``GET /health``: 200 while the ARI events socket is up, else 503.
- ``POST /calls/{id}/transfer`` with ``{"to": "<extension>"}``: a blind
  transfer of a connected call (A5). 202 when queued; 404 no such call in
  progress; 409 not connected; 422 a malformed body or an unknown extension.
- ``GET /referrals``: every referral in force, by extension (R6).
- ``GET /referrals/{extension}``: that person's referral in force; 404 when the
  phone is open or the extension is not a staff member's.
- ``PUT /referrals/{extension}`` with ``{"reason": 2, "until": "2026-12-01T14:30",
  "from": optional, "note": optional}`` (times without an offset are local):
  201 with the referral (R2, R3); 404 unknown extension; 422 otherwise.
- ``DELETE /referrals/{extension}``: open the phone (R4); 200 ``{"cleared": bool}``.
- ``GET /messages?unit=<id>&overdue=true``: the callback ledger (V2).
- ``POST /messages/{id}/called-back``: 200 with the message; 404 unknown.

Times in answers are ISO 8601 in the site's zone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from aiohttp import web

from vvk_pbx.domain.callflow.flows.transfer import TransferError
from vvk_pbx.domain.referral import Source
from vvk_pbx.services import views
from vvk_pbx.services.clock import Clock
from vvk_pbx.services.referrals import ReferralError, ReferralService, require_time_of_day

log = logging.getLogger(__name__)


class CallsPort(Protocol):
    """What the API needs of the calls in progress (``services.calls.CallController``)."""

    def request_transfer(self, call_id: str, to: str) -> None: ...


@dataclass(frozen=True)
class Services:
    """What the routes use: the calls, the referral service, the one clock."""

    calls: CallsPort
    referrals: ReferralService
    clock: Clock

    @property
    def tz(self) -> tzinfo:
        return self.referrals.calendar.tz


HEALTH: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("health")
SERVICES: web.AppKey[Services] = web.AppKey("services")


def make_app(services: Services, health: Callable[[], dict[str, Any]]) -> web.Application:
    """The aiohttp application. ``health()`` returns the body of ``/health``; its
    ``ari_connected`` decides 200 or 503."""
    app = web.Application(client_max_size=64 * 1024, middlewares=[_json_errors])
    app[HEALTH] = health
    app[SERVICES] = services
    app.router.add_get("/health", _health)
    app.router.add_post("/calls/{call_id}/transfer", _transfer)
    app.router.add_get("/referrals", _referrals)
    app.router.add_get("/referrals/{extension}", _referral)
    app.router.add_put("/referrals/{extension}", _set_referral)
    app.router.add_delete("/referrals/{extension}", _clear_referral)
    app.router.add_get("/messages", _messages)
    app.router.add_post("/messages/{message_id}/called-back", _called_back)
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
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _error(500, "internal error; the controller's log has the details")
    return response


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _health(request: web.Request) -> web.Response:
    body = request.app[HEALTH]()
    return web.json_response(body, status=200 if body.get("ari_connected") else 503)


async def _transfer(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    body = await _json_object(request, 'the body must be JSON: {"to": "<extension>"}')
    if isinstance(body, web.Response):
        return body
    to = body.get("to")
    if not isinstance(to, str) or not to:
        return _error(422, 'the body must be {"to": "<extension>"} with the extension as a string')
    extra = sorted(set(body) - {"to"})
    if extra:
        return _error(422, f"unknown field(s): {', '.join(extra)}; only 'to' is accepted")
    try:
        request.app[SERVICES].calls.request_transfer(call_id, to)
    except TransferError as exc:
        return _error(exc.status, exc.reason)
    return web.json_response({"call": call_id, "to": to, "status": "transferring"}, status=202)


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


def _instant(board: Services, value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise ReferralError(field, f"{field} must be a time like 2026-12-01T14:30")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ReferralError(field, f"{value!r} is not a time like 2026-12-01T14:30") from None
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
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    extra = sorted(set(body) - {"reason", "until", "from", "note"})
    if extra:
        return _error(422, f"unknown field(s): {', '.join(extra)}")
    extension = request.match_info["extension"]
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
            extension, reason, start, end, "api", Source.API, note
        )
    except ReferralError as exc:
        return _error(404 if exc.field == "extension" else 422, exc.reason)
    return web.json_response(views.referral_json(board.referrals, referral), status=201)


async def _clear_referral(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    try:
        cleared = await board.referrals.clear_referral(
            request.match_info["extension"], board.clock.now()
        )
    except ReferralError as exc:
        return _error(404, exc.reason)
    return web.json_response({"cleared": cleared is not None})


async def _messages(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    overdue = request.query.get("overdue", "false")
    if overdue not in ("true", "false"):
        return _error(422, "overdue must be true or false")
    now = board.clock.now()
    try:
        found = await board.referrals.ledger(now, request.query.get("unit"), overdue == "true")
    except ReferralError as exc:
        return _error(422, exc.reason)
    return web.json_response([views.message_json(m, now, board.tz) for m in found])


async def _called_back(request: web.Request) -> web.Response:
    board = request.app[SERVICES]
    now = board.clock.now()
    message = await board.referrals.called_back(request.match_info["message_id"], now)
    if message is None:
        return _error(404, f"no message {request.match_info['message_id']}")
    return web.json_response(views.message_json(message, now, board.tz))
