"""A thin typed ARI client on aiohttp: REST calls with timeouts, and one reconnecting event stream.

Why our own: ari-py (the design card's choice) fails to import on Python 3 and
is synchronous; the other PyPI clients lack reconnects, lose event order or
spin when the socket closes (``../shared/design/asterisk-notes.md``).

Errors::

    AriError(Exception)              a REST call failed
    ├── AriHttpError                 Asterisk answered 4xx/5xx (``.status``, ``.path``)
    │   └── AriNotFoundError              404: the channel, bridge or playback is gone
    └── AriUnavailableError               no answer: connection refused or timed out

Authentication is the Basic header, never ``api_key`` in the URL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast
from urllib.parse import quote

import aiohttp

from vvk_pbx.ari.models import Bridge, Channel, Event, Json, Playback, parse_event

log = logging.getLogger(__name__)


class AriError(Exception):
    """A REST call to ARI failed."""


class AriHttpError(AriError):
    """ARI answered with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method, self.path, self.status, self.message = method, path, status, message
        super().__init__(f"{method} {path}: {status} {message}")


class AriNotFoundError(AriHttpError):
    """404: the resource is gone (a caller hung up, a playback ended)."""


class AriUnavailableError(AriError):
    """ARI did not answer: connection refused, reset or timed out."""


@dataclass(frozen=True)
class AriConfig:
    """Where and who: ``base_url`` like ``http://127.0.0.1:8088`` (no ``/ari``)."""

    base_url: str
    user: str
    password: str
    app: str
    timeout_s: float = 5.0

    def auth_header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    @property
    def events_url(self) -> str:
        ws = self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{ws}/ari/events?app={self.app}"


class AriClient:
    """ARI's REST interface: one method per call the controller makes, each with a timeout."""

    def __init__(self, config: AriConfig, session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self._own_session = session is None
        self._session = session

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # A connection pool sized for bursts: REST calls of many calls overlap.
            connector = aiohttp.TCPConnector(limit=64)
            self._session = aiohttp.ClientSession(
                headers=self.config.auth_header(), connector=connector
            )
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, params: dict[str, str] | None = None, body: Json | None = None
    ) -> Any:
        """One REST call to ``/ari/<path>``. Returns the decoded JSON, or None for 204.

        Raises ``AriNotFoundError``, ``AriHttpError`` or ``AriUnavailableError``.
        """
        raw = await self._fetch(method, path, params, body)
        return json.loads(raw) if raw else None

    async def _fetch(
        self, method: str, path: str, params: dict[str, str] | None = None, body: Json | None = None
    ) -> bytes:
        """One REST call to ``/ari/<path>``; the body as sent. Raises as ``request``."""
        url = f"{self.config.base_url}/ari/{path}"
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        try:
            async with self.session.request(
                method, url, params=params, json=body, timeout=timeout
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    message = _message(raw.decode(errors="replace"))
                    error = AriNotFoundError if response.status == 404 else AriHttpError
                    raise error(method, path, response.status, message)
                return raw
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise AriUnavailableError(f"{method} {path}: {exc.__class__.__name__} {exc}") from exc

    # ----- sounds -----------------------------------------------------------------------

    async def sound_ids(self, directory: str) -> set[str]:
        """The ids of the sounds in one top-level directory of Asterisk's sounds
        (``GET /sounds?lang=<directory>``: Asterisk's media index takes each
        top-level directory for a language, so ``vvk/goodbye.wav`` is ``goodbye``
        in language ``vvk``). The index is read afresh on each request.
        Raises ``AriHttpError`` or ``AriUnavailableError``."""
        found = await self.request("GET", "sounds", params={"lang": directory})
        return {str(s["id"]) for s in found or [] if isinstance(s, dict) and "id" in s}

    # ----- stored recordings (voicemail) -------------------------------------------------

    async def stored_recordings(self) -> list[str]:
        """The names of the recordings in Asterisk's spool (``GET /recordings/stored``).
        Raises ``AriHttpError`` or ``AriUnavailableError``."""
        found = await self.request("GET", "recordings/stored")
        return [str(r["name"]) for r in found or [] if isinstance(r, dict) and "name" in r]

    async def delete_recording(self, name: str) -> None:
        """Delete a stored recording (``DELETE /recordings/stored/{name}``); one that is not
        there is deleted already."""
        with contextlib.suppress(AriNotFoundError):
            await self.request("DELETE", f"recordings/stored/{name}")

    async def stored_recording_file(self, name: str) -> bytes:
        """A stored recording's file as it is on disk (``GET /recordings/stored/{name}/file``).
        Raises ``AriNotFoundError``, ``AriHttpError`` or ``AriUnavailableError``."""
        return await self._fetch("GET", f"recordings/stored/{name}/file")

    # ----- channels -------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        return [Channel.parse(c) for c in await self.request("GET", "channels")]

    async def channel_state(self, channel_id: str) -> str | None:
        """The channel's state ("Ring", "Up", ...), or None if it is gone (``GET /channels/{id}``)."""
        try:
            raw = await self.request("GET", f"channels/{channel_id}")
        except AriNotFoundError:
            return None
        return Channel.parse(raw).state if isinstance(raw, dict) else ""

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang up; a channel that is already gone is not an error."""
        with contextlib.suppress(AriNotFoundError):
            await self.request("DELETE", f"channels/{channel_id}", {"reason": reason})

    async def play(
        self, channel_id: str, media: Sequence[str], playback_id: str | None = None
    ) -> Playback:
        """Play ``media`` (``sound:vvk/x``, ``digits:123``, ...) in order as one playback."""
        params = {"media": ",".join(media)}
        if playback_id is not None:
            params["playbackId"] = playback_id
        return Playback.parse(await self.request("POST", f"channels/{channel_id}/play", params))

    async def stop_playback(self, playback_id: str) -> None:
        with contextlib.suppress(AriNotFoundError):
            await self.request("DELETE", f"playbacks/{playback_id}")

    async def create_channel(
        self,
        endpoint: str,
        app_args: str,
        channel_id: str,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """A new outgoing channel that enters our app without dialling yet (``/channels/create``).

        It is not in Stasis until its own StasisStart arrives. ``variables`` are
        set on it at creation; a name ending in ``()`` writes that function.
        """
        params = {
            "endpoint": endpoint,
            "app": self.config.app,
            "appArgs": app_args,
            "channelId": channel_id,
        }
        if originator is not None:
            params["originator"] = originator
        body = {"variables": variables} if variables else None
        return Channel.parse(await self.request("POST", "channels/create", params, body))

    async def record(
        self, channel_id: str, name: str, max_duration_s: int, max_silence_s: int
    ) -> None:
        """Record the channel into ``name`` (WAV) with a beep first (``channels.json`` record).

        Ends at ``max_duration_s``, after ``max_silence_s`` of silence, on ``#``
        or on hangup; ``RecordingFinished`` then gives its duration.
        """
        await self.request(
            "POST",
            f"channels/{channel_id}/record",
            {
                "name": name,
                "format": "wav",
                "maxDurationSeconds": str(max_duration_s),
                "maxSilenceSeconds": str(max_silence_s),
                "ifExists": "overwrite",
                "beep": "true",
                "terminateOn": "#",
            },
        )

    async def transfer_progress(self, channel_id: str, state: str) -> None:
        """Tell a phone that sent REFER how its transfer goes (Asterisk ≥ 22.3, ``channels.json``).

        ``state``: ``channel_progress`` (NOTIFY 100), ``channel_answered`` (200),
        ``channel_unavailable`` (503) or ``channel_declined`` (603).
        """
        await self.request("POST", f"channels/{channel_id}/transfer_progress", {"states": state})

    async def dial(self, channel_id: str, caller: str | None = None, timeout_s: int = 0) -> None:
        params = {"timeout": str(timeout_s)}
        if caller is not None:
            params["caller"] = caller
        await self.request("POST", f"channels/{channel_id}/dial", params)

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str = "s", priority: int = 1
    ) -> None:
        """Send the channel back to the dialplan (the fallback), leaving Stasis."""
        await self.request(
            "POST",
            f"channels/{channel_id}/continue",
            {"context": context, "extension": extension, "priority": str(priority)},
        )

    # ----- bridges --------------------------------------------------------------------

    async def list_bridges(self) -> list[Bridge]:
        """Every bridge Asterisk has (``GET /bridges``), ours and others'."""
        return [Bridge.parse(b) for b in await self.request("GET", "bridges")]

    async def create_bridge(self, bridge_id: str, kind: str = "mixing") -> None:
        await self.request("POST", "bridges", {"type": kind, "bridgeId": bridge_id})

    async def add_to_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None:
        await self.request(
            "POST", f"bridges/{bridge_id}/addChannel", {"channel": ",".join(channel_ids)}
        )

    async def remove_from_bridge(self, bridge_id: str, channel_ids: Iterable[str]) -> None:
        await self.request(
            "POST", f"bridges/{bridge_id}/removeChannel", {"channel": ",".join(channel_ids)}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        with contextlib.suppress(AriNotFoundError):
            await self.request("DELETE", f"bridges/{bridge_id}")

    # ----- application --------------------------------------------------------------

    async def subscribe(self, sources: Iterable[str]) -> None:
        """Subscribe the app to event sources such as ``deviceState:PJSIP/1101``
        (``POST /applications/{app}/subscription``); they last while the app lives."""
        joined = ",".join(sources)
        if joined:
            await self.request(
                "POST", f"applications/{self.config.app}/subscription", {"eventSource": joined}
            )

    async def device_state(self, device: str) -> str:
        """A device's state now (``GET /deviceStates/{name}``): ``NOT_INUSE``, ``INUSE`` ..."""
        found = await self.request("GET", f"deviceStates/{quote(device, safe='')}")
        return str(found.get("state", "UNKNOWN")) if isinstance(found, dict) else "UNKNOWN"

    async def set_event_filter(self, allowed: Iterable[str]) -> None:
        """Ask Asterisk for only these event types (ARI 22 ``PUT /applications/{app}/eventFilter``)."""
        body = {"allowed": [{"type": t} for t in allowed], "disallowed": []}
        await self.request("PUT", f"applications/{self.config.app}/eventFilter", body=body)


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(data, dict):
        # Most errors say {"message": ...}; channel creation says {"error": ...}.
        return str(data.get("message", data.get("error", data)))
    return str(data)


# ----------------------------------------------------------------------------- events

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: attempt n waits up to min(cap, base·2ⁿ) s."""

    base_s: float = 0.2
    cap_s: float = 5.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(attempt, 30))
        # Half fixed, half random: never zero (no hot loop), never in lock-step.
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class OrderedDispatcher(Generic[T]):
    """Runs a handler for each item, in order per key, concurrently across keys.

    Items with the same key (for ARI events, their call) go through one queue
    and one worker task, so they are handled in the order they came. Each key
    has its own worker, so a slow handler for one call never delays another.
    A worker ends when its queue is empty. A handler that raises is logged; the
    next item is still handled.
    """

    def __init__(
        self, handler: Callable[[T], Awaitable[None]], key: Callable[[T], str] | None = None
    ) -> None:
        self._handler = handler
        # Without a key, items are ARI events keyed by their channel.
        self._key = key if key is not None else cast(Callable[[T], str], channel_key)
        self._queues: dict[str, asyncio.Queue[T]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    def submit(self, item: T) -> None:
        key = self._key(item)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            task = asyncio.create_task(self._work(key, queue), name=f"ari-events-{key or 'global'}")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        queue.put_nowait(item)

    async def _work(self, key: str, queue: asyncio.Queue[T]) -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                del self._queues[key]
                return
            try:
                await self._handler(item)
            except Exception:
                log.exception("handler failed for %r on %s", item, key or "(no key)")

    async def drain(self) -> None:
        """Wait until every submitted item has been handled."""
        while self._workers:
            await asyncio.gather(*list(self._workers), return_exceptions=True)

    @property
    def active_keys(self) -> int:
        return len(self._queues)


def channel_key(event: Event) -> str:
    """The default key of ARI events: their channel (``""`` for none)."""
    return event.channel_id or ""


class EventSink(Protocol):
    """Where the stream hands its events (an ``OrderedDispatcher``)."""

    def submit(self, event: Event, /) -> None: ...


class EventStream:
    """The app's one events websocket, reconnecting until ``stop()``.

    After every (re)connect ``on_connect`` runs before any event of the new
    connection is dispatched: the place to resync (``GET /channels``) and set
    the event filter. When the stream ends or fails, or ``on_connect`` raises,
    the next attempt waits a capped, jittered, growing delay; a connection that
    lasted ``stable_s`` resets the delay. ``connected`` is set while a
    websocket is open and its ``on_connect`` is done.

    When another connection takes the app (``ApplicationReplaced``: a second
    controller, asterisk-notes.md), this one stops for good and ``replaced``
    is set: reconnecting would take the app back and the two would fight.
    """

    def __init__(
        self,
        client: AriClient,
        dispatcher: EventSink,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        backoff: Backoff = Backoff(),
        stable_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.dispatcher = dispatcher
        self.on_connect = on_connect
        self.backoff = backoff
        self.stable_s = stable_s
        self.rng = rng or random.Random()
        self.connected = asyncio.Event()
        self.replaced = asyncio.Event()
        self.connects = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            try:
                await self._one_connection()
            except (aiohttp.ClientError, OSError, TimeoutError, AriError) as exc:
                log.warning("ARI events: %s: %s", exc.__class__.__name__, exc)
            except Exception:
                # Whatever on_connect raised: the stream must outlive it, or every
                # call goes to the fallback until someone restarts the process.
                log.exception("ARI events: the connection's set-up failed")
            self.connected.clear()
            if self._stopping.is_set() or self.replaced.is_set():
                break
            if loop.time() - started >= self.stable_s:
                attempt = 0
            delay = self.backoff.delay(attempt, self.rng)
            attempt += 1
            log.warning("ARI events: reconnecting in %.2f s (attempt %d)", delay, attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _one_connection(self) -> None:
        async with self.client.session.ws_connect(
            self.client.config.events_url, heartbeat=15
        ) as ws:
            self.connects += 1
            if self.on_connect is not None:
                await self.on_connect()
            self.connected.set()
            log.info("ARI events: connected (connection %d)", self.connects)
            stop = asyncio.ensure_future(self._stopping.wait())
            try:
                while True:
                    receive = asyncio.ensure_future(ws.receive())
                    done, _ = await asyncio.wait(
                        {receive, stop}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stop in done:
                        receive.cancel()
                        return
                    message = receive.result()
                    if message.type is aiohttp.WSMsgType.TEXT:
                        if self._dispatch(message.data):
                            return
                    elif message.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.ERROR,
                    ):
                        log.warning("ARI events: the stream ended (%s)", message.type.name)
                        return
            finally:
                stop.cancel()

    def _dispatch(self, data: str) -> bool:
        """Hand one message to the dispatcher; True when it ends this connection."""
        try:
            raw = json.loads(data)
        except ValueError:
            log.warning("ARI events: not JSON, skipped: %.100s", data)
            return False
        if not isinstance(raw, dict):
            return False
        if raw.get("type") == "ApplicationReplaced":
            log.error(
                "ARI events: another connection took the Stasis app %s: this controller "
                "no longer handles calls; stop the other one, then restart this one",
                self.client.config.app,
            )
            self.replaced.set()
            return True
        self.dispatcher.submit(parse_event(raw))
        return False
