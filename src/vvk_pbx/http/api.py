"""The controller's HTTP API: a thin adapter that parses, calls the service and serialises.

Routes (JSON in and out; errors are ``{"error": "<reason>"}`` with a 4xx status):

- ``GET /health``: 200 while the ARI events socket is up, else 503.
- ``POST /calls/{id}/transfer`` with ``{"to": "<extension>"}``: a blind
  transfer of a connected call (A5). 202 when queued; 404 no such call in
  progress; 409 not connected; 422 a malformed body or an unknown extension.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from vvk_pbx.services.switchboard import Switchboard, TransferError

HEALTH: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("health")
SWITCHBOARD: web.AppKey[Switchboard] = web.AppKey("switchboard")


def make_app(switchboard: Switchboard, health: Callable[[], dict[str, Any]]) -> web.Application:
    """The aiohttp application. ``health()`` returns the body of ``/health``; its
    ``ari_connected`` decides 200 or 503."""
    app = web.Application(client_max_size=64 * 1024)
    app[HEALTH] = health
    app[SWITCHBOARD] = switchboard
    app.router.add_get("/health", _health)
    app.router.add_post("/calls/{call_id}/transfer", _transfer)
    return app


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def _health(request: web.Request) -> web.Response:
    body = request.app[HEALTH]()
    return web.json_response(body, status=200 if body.get("ari_connected") else 503)


async def _transfer(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(422, 'the body must be JSON: {"to": "<extension>"}')
    to = body.get("to") if isinstance(body, dict) else None
    if not isinstance(to, str) or not to:
        return _error(422, 'the body must be {"to": "<extension>"} with the extension as a string')
    extra = sorted(set(body) - {"to"})
    if extra:
        return _error(422, f"unknown field(s): {', '.join(extra)}; only 'to' is accepted")
    try:
        request.app[SWITCHBOARD].request_transfer(call_id, to)
    except TransferError as exc:
        return _error(exc.status, exc.reason)
    return web.json_response({"call": call_id, "to": to, "status": "transferring"}, status=202)
