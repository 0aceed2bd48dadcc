"""A fake ARI server for component tests: an aiohttp app on port 0.

It checks Basic auth, records every REST request, answers with canned
resources, and pushes events to connected websockets. A route real ARI does
not have (a misspelt endpoint) answers 404 "Resource not found", as Asterisk
22 does (``ari_routes.txt``). Controls:
``send_event(...)``, ``requests()``, ``reset()``, ``drop_connections()``,
``gone`` (ids that answer 404), ``fail`` (paths that answer an error), ``fail_create``
(endpoints that cannot be made), ``delay_s`` (slow answers), ``channels``
(what ``GET /channels`` lists). It never replaces the real-Asterisk tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web


def _routes() -> list[tuple[str, re.Pattern[str]]]:
    """Asterisk 22's REST routes (``ari_routes.txt``), as (method, path pattern)."""
    found = []
    for line in (Path(__file__).parent / "ari_routes.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            method, path = line.split()
            pattern = re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(path))
            found.append((method, re.compile(f"^{pattern}$")))
    return found


ROUTES = _routes()


def real_route(method: str, path: str) -> bool:
    """Whether real ARI has this route (``GET channels/{channelId}``, ...)."""
    return any(m == method and pattern.match(path) for m, pattern in ROUTES)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeAri:
    user: str = "vvk-pbx"
    password: str = "secret"
    gone: set[str] = field(default_factory=set)
    fail: dict[str, int] = field(default_factory=dict)  # path -> error status
    fail_create: dict[str, int] = field(default_factory=dict)  # endpoint -> channels/create error
    channels: list[dict[str, Any]] = field(default_factory=list)
    # GET bridges: bridge id -> the channels in it, kept as the REST calls make and
    # change them (create, addChannel, removeChannel, DELETE).
    bridges: dict[str, list[str]] = field(default_factory=dict)
    channel_states: dict[str, str] = field(default_factory=dict)  # GET channels/{id}
    sounds: dict[str, list[str]] = field(default_factory=dict)  # GET sounds?lang=: ids
    stored: dict[str, bytes] = field(default_factory=dict)  # GET recordings/stored[/name/file]
    device_states: dict[str, str] = field(default_factory=dict)  # GET deviceStates/{name}
    delay_s: float = 0.0
    connections: int = 0
    _requests: list[Request] = field(default_factory=list)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{path:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----- controls -----------------------------------------------------------------

    def requests(self, method: str | None = None) -> list[Request]:
        return [r for r in self._requests if method is None or r.method == method]

    def reset(self) -> None:
        self._requests.clear()
        self.gone.clear()

    async def send_event(self, event: dict[str, Any] | str) -> None:
        data = event if isinstance(event, str) else json.dumps(event)
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_str(data)

    async def drop_connections(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        self._sockets.clear()

    async def wait_connected(self, count: int, timeout: float = 5.0) -> None:
        async def reached() -> None:
            while self.connections < count or not self._sockets:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(reached(), timeout)

    # ----- handlers -------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {token}":
            return web.json_response({"message": "Authentication required"}, status=401)
        if "api_key" in request.query:
            return web.json_response({"message": "api_key in the URL is refused"}, status=400)
        response: web.StreamResponse = await handler(request)
        return response

    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self._sockets.append(ws)
        async for message in ws:
            if message.type is WSMsgType.ERROR:
                break
        return ws

    def _bridge(self, method: str, parts: list[str], query: Any, body: Any) -> web.Response | None:
        """The bridges Asterisk keeps; None for a request that only needs a 204."""
        if method == "GET" and parts == ["bridges"]:
            listed = [
                {"id": b, "bridge_type": "mixing", "channels": c} for b, c in self.bridges.items()
            ]
            return web.json_response(listed)
        if method == "POST" and parts == ["bridges"]:
            bridge_id = (body or {}).get("bridgeId") or query.get("bridgeId", "")
            self.bridges.setdefault(bridge_id, [])
            return web.json_response({"id": bridge_id, "channels": []})
        if len(parts) >= 2 and parts[1] not in self.bridges and method != "POST":
            return web.json_response({"message": "Bridge not found"}, status=404)
        if method == "DELETE" and len(parts) == 2:
            self.bridges.pop(parts[1], None)
        elif len(parts) == 3 and parts[2] in ("addChannel", "removeChannel"):
            channels = self.bridges.setdefault(parts[1], [])
            for channel in str((body or {}).get("channel") or query.get("channel", "")).split(","):
                if parts[2] == "addChannel" and channel not in channels:
                    channels.append(channel)
                elif parts[2] == "removeChannel" and channel in channels:
                    channels.remove(channel)
        return None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        path = request.match_info["path"]
        self._requests.append(Request(request.method, path, dict(request.query), body))
        if request.method == "GET" and path.startswith("deviceStates/"):
            # The device's name holds a slash, sent as %2F (PJSIP%2F1101), which the
            # route's pattern cannot see once decoded.
            name = path.removeprefix("deviceStates/")
            return web.json_response(
                {"name": name, "state": self.device_states.get(name, "UNKNOWN")}
            )
        if not real_route(request.method, path):
            return web.json_response({"message": "Resource not found"}, status=404)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        parts = path.split("/")
        if path in self.fail:
            return web.json_response({"message": "Internal Server Error"}, status=self.fail[path])
        if len(parts) > 1 and parts[1] in self.gone:
            return web.json_response({"message": "Channel not found"}, status=404)
        if request.method == "GET" and path == "channels":
            return web.json_response(self.channels)
        if path == "bridges" or parts[0] == "bridges":
            answer = self._bridge(request.method, parts, request.query, body)
            if answer is not None:
                return answer
        if request.method == "GET" and path == "recordings/stored":
            return web.json_response([{"name": n, "format": "wav"} for n in self.stored])
        if request.method == "GET" and path.startswith("recordings/stored/"):
            name = path.removeprefix("recordings/stored/").removesuffix("/file")
            if name not in self.stored:
                return web.json_response({"message": "Recording not found"}, status=404)
            return web.Response(body=self.stored[name], content_type="audio/wav")
        if request.method == "GET" and path == "sounds":
            ids = self.sounds.get(request.query.get("lang", ""), [])
            return web.json_response([{"id": i, "formats": []} for i in ids])
        if request.method == "GET" and len(parts) == 2 and parts[0] == "channels":
            state = self.channel_states.get(parts[1], "Ring")
            return web.json_response({"id": parts[1], "name": "PJSIP/x", "state": state})
        if request.method == "POST" and path == "channels/create":
            q = request.query
            if q["endpoint"] in self.fail_create:
                # What Asterisk says of a phone with no registration.
                return web.json_response(
                    {"error": "Allocation failed"}, status=self.fail_create[q["endpoint"]]
                )
            return web.json_response(
                {"id": q["channelId"], "name": f"{q['endpoint']}-0001", "state": "Down"}
            )
        if request.method == "POST" and len(parts) == 3 and parts[2] == "play":
            return web.json_response(
                {
                    "id": request.query.get("playbackId", "pb-1"),
                    "media_uri": request.query["media"],
                    "target_uri": f"channel:{parts[1]}",
                    "state": "queued",
                }
            )
        return web.Response(status=204)
