"""End-to-end harness: SIPp phones and callers, and ARI apps that watch what Asterisk really does.

- ``Observer``: a second ARI app with ``subscribeAll=true``. It records every
  event Asterisk emits, so tests assert on Asterisk's own account (which
  dialplan app ran, who was dialled, when a leg rang and answered), never on
  the controller's log.
- ``StasisApp``: a bare websocket for an app name, standing in for a
  controller that is connected.
- ``Phone`` / ``Caller``: SIPp processes on loopback (``tests/e2e/sipp/``).

Port plan (all loopback; Asterisk: SIP 127.0.0.1:5060, RTP 10000–19999):
the phone of extension N listens on 127.0.0.1:(N + port_offset) as the config
says; an internal caller N sends from 127.0.0.1:(N + port_offset + 100);
trunk callers send from 127.0.0.2 (the trunk's address) on a free port;
SIPp media ports are taken from 20000–29999.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.harness import Tab, new_tab
from tests.e2e.sipp.make_dtmf_pcaps import SPEECH, SRC, write_pcaps
from vvk_pbx.bench.run import free_udp_port

SIPP_DIR = Path(__file__).parent / "sipp"
MAX_DTMF = 8
Event = dict[str, Any]


@dataclass(frozen=True)
class Pbx:
    """How to reach the Asterisk under test."""

    ari_port: int
    ari_user: str
    ari_password: str
    sip_port: int
    app: str
    port_offset: int
    log_dir: Path
    dtmf_dir: Path

    @property
    def sip(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def auth_header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.ari_user}:{self.ari_password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def events_url(self, app: str, subscribe_all: bool = False) -> str:
        url = f"ws://127.0.0.1:{self.ari_port}/ari/events?app={app}"
        return url + ("&subscribeAll=true" if subscribe_all else "")

    def rest_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ari_port}/ari/{path.lstrip('/')}"


def make_dtmf_pcaps(target: Path) -> Path:
    """Per-slot RFC 4733 pcaps and speech (see ``sipp/make_dtmf_pcaps.py`` for why), made once."""
    marker = target / ".done-speech"
    if not marker.exists():
        write_pcaps(target, MAX_DTMF)
        marker.touch()
    return target


# ----------------------------------------------------------------------------- ARI


class _WebsocketApp:
    def __init__(self, pbx: Pbx, app: str, subscribe_all: bool) -> None:
        self.pbx = pbx
        self.app = app
        self.subscribe_all = subscribe_all
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # A wedged ARI must fail the test in seconds, not after aiohttp's 5 minutes.
        self._session = aiohttp.ClientSession(
            headers=self.pbx.auth_header(),
            timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10),
        )
        self._ws = await self._session.ws_connect(
            self.pbx.events_url(self.app, self.subscribe_all),
            heartbeat=20,
            timeout=aiohttp.ClientWSTimeout(ws_close=5),
        )
        self._reader = asyncio.create_task(self._read(self._ws))

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._session is not None:
            await self._session.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            await self.on_event(event)
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def on_event(self, event: Event) -> None:
        """Hook for subclasses; runs before the event is recorded."""

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float, what: str
    ) -> Event:
        """The first recorded event matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n  ".join(summary(e) for e in self.events[-40:])
                    raise AssertionError(f"no {what} within {timeout} s; last events:\n  {seen}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        return [e for e in self.events if predicate(e)]

    async def rest(self, method: str, path: str, **params: str) -> Any:
        assert self._session is not None
        async with self._session.request(
            method, self.pbx.rest_url(path), params=params, timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            response.raise_for_status()
            return await response.json() if response.content_length else None


class Observer(_WebsocketApp):
    """ARI app ``observer`` with ``subscribeAll=true``: every event Asterisk emits."""

    def __init__(self, pbx: Pbx) -> None:
        super().__init__(pbx, "observer", subscribe_all=True)


class StasisApp(_WebsocketApp):
    """A connected app of the given name that answers nothing: it only records StasisStart."""

    def __init__(self, pbx: Pbx, app: str) -> None:
        super().__init__(pbx, app, subscribe_all=False)


def summary(event: Event) -> str:
    channel = event.get("channel") or event.get("peer") or {}
    bits = [event.get("timestamp", ""), event.get("type", "?"), channel.get("name", "")]
    if event.get("type") == "ChannelDialplan":
        bits.append(f"{event.get('dialplan_app')}({event.get('dialplan_app_data')})")
    if event.get("type") == "Dial":
        bits.append(f"dialstatus={event.get('dialstatus')!r}")
    if str(event.get("type", "")).startswith("Playback"):
        bits.append(event.get("playback", {}).get("media_uri", ""))
    return "  ".join(str(b) for b in bits)


def dialplan_app(event: Event, app: str) -> bool:
    return event.get("type") == "ChannelDialplan" and event.get("dialplan_app") == app


def stasis_entry(app: str, data: str) -> Callable[[Event], bool]:
    """The observer's sign that a channel entered another app's Stasis with these arguments."""

    def match(event: Event) -> bool:
        return dialplan_app(event, "Stasis") and event.get("dialplan_app_data") == f"{app},{data}"

    return match


def dial(peer_prefix: str, status: str) -> Callable[[Event], bool]:
    """A ``Dial`` event for a peer channel whose name starts with ``peer_prefix``."""

    def match(event: Event) -> bool:
        return (
            event.get("type") == "Dial"
            and event.get("peer", {}).get("name", "").startswith(peer_prefix)
            and event.get("dialstatus") == status
        )

    return match


def playback_started(
    channel_id: str | None = None, media: str | None = None
) -> Callable[[Event], bool]:
    """A ``PlaybackStarted`` event on channel ``channel_id`` of ``media`` (a media URI);
    None matches any. Asterisk emits one for each media URI of a playback in turn."""

    def match(event: Event) -> bool:
        playback = event.get("playback", {})
        return (
            event.get("type") == "PlaybackStarted"
            and (channel_id is None or playback.get("target_uri") == f"channel:{channel_id}")
            and (media is None or playback.get("media_uri") == media)
        )

    return match


# ----------------------------------------------------------------------------- SIPp

_media_ports = itertools.cycle(range(20000, 30000, 4))


@dataclass
class Sipp:
    """One SIPp process. ``wait`` returns its exit code (0: the call went as scripted)."""

    name: str
    process: asyncio.subprocess.Process
    log_prefix: Path
    args: list[str] = field(default_factory=list)

    async def wait(self, timeout: float) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"sipp {self.name} still running after {timeout} s") from None

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def messages(self) -> str:
        path = self.log_prefix.with_suffix(".msg")
        return path.read_text(errors="replace") if path.exists() else ""


async def _spawn(pbx: Pbx, name: str, args: list[str], lasting: bool = True) -> Sipp:
    """Start SIPp; a ``lasting`` one (a phone, a call) must still run once it has bound."""
    pbx.log_dir.mkdir(parents=True, exist_ok=True)
    prefix = pbx.log_dir / f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    full = [
        "sipp",
        pbx.sip,
        *args,
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(prefix.with_suffix(".err")),
        "-trace_msg",
        "-message_file",
        str(prefix.with_suffix(".msg")),
    ]
    with prefix.with_suffix(".out").open("w") as out:
        process = await asyncio.create_subprocess_exec(
            *full, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    sipp = Sipp(name, process, prefix, full)
    if not lasting:
        return sipp
    await asyncio.sleep(0.2)  # let it bind before anything calls it
    if process.returncode is not None:
        raise AssertionError(f"sipp {name} exited at once ({process.returncode}): {prefix}.out")
    return sipp


async def start_phone(
    pbx: Pbx, extension: str, *, ring_ms: int = 1000, talk_ms: int = -1, busy: bool = False
) -> Sipp:
    """A phone for ``extension`` on its static contact: rings ``ring_ms`` then answers.

    ``ring_ms`` of 86_400_000 never answers (a CANCEL ends the ringing);
    ``busy`` answers every call with 486; ``talk_ms`` -1 waits for the far
    end's BYE. Handles any number of calls until stopped.
    """
    port = int(extension) + pbx.port_offset
    return await _spawn(
        pbx,
        f"phone-{extension}",
        [
            "-sf",
            str(SIPP_DIR / "phone.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mp",
            str(next(_media_ports)),
            "-set",
            "busy",
            "1" if busy else "0",
            "-set",
            "ring_ms",
            str(ring_ms),
            "-set",
            "talk_ms",
            str(talk_ms),
        ],
    )


async def register(pbx: Pbx, extension: str, password: str, expires_s: int = 3600) -> None:
    """Register ``extension`` from its phone's address (``[asterisk.phones] mode =
    "register"``), as a desk phone does; a phone started there afterwards takes its calls.
    ``expires_s`` 0 removes the registration."""
    sipp = await _spawn(
        pbx,
        f"register-{extension}",
        [
            "-sf",
            str(SIPP_DIR / "register.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(int(extension) + pbx.port_offset),
            "-key",
            "ext",
            extension,
            "-key",
            "expires",
            str(expires_s),
            "-au",
            extension,
            "-ap",
            password,
            "-m",
            "1",
            "-timeout",
            "10s",
            "-timeout_error",
        ],
        lasting=False,
    )
    code = await sipp.wait(15)
    assert code == 0, f"{extension} did not register: {sipp.messages()[-1500:]}"


async def start_transferring_phone(
    pbx: Pbx, extension: str, refer_to: str, *, ring_ms: int = 300, talk_ms: int = 1000
) -> Sipp:
    """A phone for ``extension`` that answers one call after ``ring_ms``, talks
    ``talk_ms``, then transfers it blind (SIP REFER) to ``refer_to``."""
    return await _spawn(
        pbx,
        f"transferring-{extension}",
        [
            "-sf",
            str(SIPP_DIR / "phone_refer.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(int(extension) + pbx.port_offset),
            "-mp",
            str(next(_media_ports)),
            "-m",
            "1",
            "-set",
            "ring_ms",
            str(ring_ms),
            "-set",
            "talk_ms",
            str(talk_ms),
            "-set",
            "refer_to",
            refer_to,
        ],
    )


async def place_call(
    pbx: Pbx,
    dialed: str,
    *,
    from_extension: str | None = None,
    caller_number: str = "0701234567",
    caller_name: str | None = None,
    hold_ms: int = 2000,
    cancel_ms: int = 0,
    dtmf: list[tuple[str, int]] | None = None,
) -> Sipp:
    """One call. From the trunk (127.0.0.2) unless ``from_extension`` is given.

    ``dtmf``: ``[(digit, ms after the answer), ...]``, increasing, at most 8,
    keep them 200 ms apart; ``SPEECH`` as the last "digit" sends 7 s of speech
    (G.711 A-law). ``hold_ms``: after the answer the caller hangs up
    (-1: wait for the far end's BYE). ``cancel_ms``: give up ringing after that
    long (0: never). ``#`` in ``dialed`` is escaped as ``%23``.
    """
    if from_extension is None:
        host, port, user = "127.0.0.2", free_udp_port("127.0.0.2"), caller_number
    else:
        host, port, user = "127.0.0.1", int(from_extension) + pbx.port_offset + 100, from_extension
    args = [
        "-sf",
        str(SIPP_DIR / "caller.xml"),
        "-s",
        dialed.replace("#", "%23"),
        "-i",
        host,
        "-p",
        str(port),
        "-mp",
        str(next(_media_ports)),
        "-key",
        "caller",
        user,
        "-key",
        "caller_display",
        _display(caller_name),
        "-set",
        "cancel_ms",
        str(cancel_ms),
        "-m",
        "1",
        "-timeout",
        "120s",
        "-timeout_error",
    ]
    digits = dtmf or []
    if len(digits) > MAX_DTMF:
        raise ValueError(f"at most {MAX_DTMF} DTMF digits")
    if any(digit == SPEECH for digit, _ in digits[:-1]):
        raise ValueError("speech must be the caller's last entry")
    previous = 0
    for slot in range(1, MAX_DTMF + 1):
        if slot <= len(digits):
            digit, at = digits[slot - 1]
            name = {"*": "star", "#": "pound"}.get(digit, digit)
            pcap = pbx.dtmf_dir / f"dtmf_2833_{name}_s{slot}.pcap"
            gap, previous = at - previous, at
            if gap < 0:
                raise ValueError("DTMF times must increase")
        else:
            pcap, gap = SRC / "dtmf_2833_0.pcap", 0
        args += ["-key", f"dtmf{slot}", str(pcap), "-set", f"dtmf{slot}_gap_ms", str(gap)]
    hold = hold_ms if hold_ms < 0 else max(0, hold_ms - previous)
    args += ["-set", "dtmf_count", str(len(digits)), "-set", "hold_ms", str(hold)]
    return await _spawn(pbx, f"call-{user}-to-{dialed}", args)


def _display(name: str | None) -> str:
    """A From display name as SIP writes it (RFC 3261 quoted-string), or nothing."""
    if name is None:
        return ""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" '


class DnsSink:
    """Counts DNS queries sent to 127.0.0.1:53, where the chroot's resolv.conf points."""

    def __init__(self) -> None:
        self.queries: list[bytes] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 53))
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, _ = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries.append(data)

    def close(self) -> None:
        self._running = False
        self._thread.join()
        self._sock.close()


async def start_carrier(pbx: Pbx, *, ring_ms: int = 500) -> Sipp:
    """The public network behind the trunk (127.0.0.2:5060): answers calls to on-call numbers."""
    return await _spawn(
        pbx,
        "carrier",
        [
            "-sf",
            str(SIPP_DIR / "phone.xml"),
            "-i",
            "127.0.0.2",
            "-p",
            "5060",
            "-mp",
            str(next(_media_ports)),
            "-set",
            "busy",
            "0",
            "-set",
            "ring_ms",
            str(ring_ms),
            "-set",
            "talk_ms",
            "-1",
        ],
    )


# ----------------------------------------------------------------------------- the controller

VVK = str(Path(sys.executable).parent / "vvk-pbx")
CLOSED_AT = "2026-12-25T10:00:00"  # Christmas Day: closed; opens again Monday 2026-12-28 08:00
OPEN_AT = "2026-11-30T10:00:00"  # a Monday morning
# A config edit for the controller fixture: only 1001 is an operator.
ONE_OPERATOR = ('[[operators]]\nname = "Växeln 2"\nextension = "1002"\n', "")
CONTROLLER_API = "http://127.0.0.1:18089"


def vvk(database: str, *args: str) -> str:
    """Run a ``vvk-pbx`` command on the test's database and the sample config; its stdout."""
    from tests.conftest import ROOT, SAMPLE_CONFIG

    return subprocess.run(
        [VVK, *args, "--database", database, "--config", str(SAMPLE_CONFIG)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},  # tables unwrapped, as on a wide terminal
    ).stdout


def operator_token(database: str) -> str:
    """A new operator's bearer token, made as ops make one (``vvk-pbx tokens create``)."""
    name = f"e2e-{next(_tokens)}"
    return vvk(database, "tokens", "create", "--role", "operator", "--name", name).strip()


_tokens = itertools.count(1)


async def transfer(call_id: str, to: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """``POST /calls/{id}/transfer`` on the controller under test with the bearer
    ``token`` (none: no Authorization header): its status and JSON.

    The observer may see an operator's answer before the controller has handled
    it; until then the call is "not connected" (409), so that is retried for 5 s.
    """
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(50):
            async with session.post(
                f"{CONTROLLER_API}/calls/{call_id}/transfer", json={"to": to}
            ) as response:
                body: dict[str, Any] = await response.json()
                if response.status != 409:
                    return response.status, body
            await asyncio.sleep(0.1)
    return response.status, body


async def api(
    method: str, path: str, token: str, body: object = None, retry_409_s: float = 5
) -> tuple[int, Any]:
    """One request to the controller under test's API with an operator's bearer token:
    its status and JSON. A 409 is retried for ``retry_409_s``: the observer may see a
    call move before the controller has handled it."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + retry_409_s
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            async with session.request(method, f"{CONTROLLER_API}{path}", json=body) as response:
                found = await response.json()
                if response.status != 409 or time.monotonic() > deadline:
                    return response.status, found
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def page_as(browser: Browser, database: str, extension: str, path: str) -> AsyncIterator[Tab]:
    """A page of the controller under test (``/console``, ``/wallboard``), logged in as
    ``extension`` with a PIN set as ops set one (``vvk-pbx pins set``)."""
    pin = f"{int(extension) % 10000:04d}"[::-1] + "7"
    vvk(database, "pins", "set", extension, "--pin", pin)
    async with new_tab(browser, CONTROLLER_API) as tab:
        page = tab.page
        await page.goto(path)
        await page.get_by_test_id("login-extension").fill(extension)
        await page.get_by_test_id("login-pin").fill(pin)
        await page.get_by_test_id("login-submit").click()
        await expect(page.get_by_test_id("who")).to_contain_text(extension)
        await expect(page.get_by_test_id("feed-lost")).to_be_hidden()
        yield tab
        assert not tab.dialogs and not tab.errors, (tab.dialogs, tab.errors)


def row(page: Page, testid: str, **data: str) -> Locator:
    """The element ``data-testid=testid`` with these ``data-*`` attributes."""
    attrs = "".join(f'[data-{k.replace("_", "-")}="{v}"]' for k, v in data.items())
    return page.locator(f'[data-testid="{testid}"]{attrs}')


def entered_bridge(bridge_id: str, channel_id: str) -> Callable[[Event], bool]:
    """Asterisk's ``ChannelEnteredBridge`` of ``channel_id`` into ``bridge_id``."""

    def match(event: Event) -> bool:
        return (
            event.get("type") == "ChannelEnteredBridge"
            and event.get("bridge", {}).get("id") == bridge_id
            and event.get("channel", {}).get("id") == channel_id
        )

    return match


Controller = Callable[..., Awaitable[tuple[subprocess.Popen[bytes], str]]]
Row = dict[str, Any]


async def call_log(
    database: str, until: Callable[[list[Row]], object], timeout: float = 10
) -> list[Row]:
    """The controller's call log, as ``vvk-pbx calls list --json`` shows it (legs
    included), once ``until(rows)`` holds: read in-process, with no CLI process per look.
    Raises ``AssertionError`` when it does not hold within ``timeout`` s."""
    from vvk_pbx.services.views import call_json
    from vvk_pbx.storage.calllog import CallLog

    tz = ZoneInfo("Europe/Stockholm")
    deadline = time.monotonic() + timeout
    store = await CallLog.open(database, create=False)
    try:
        while True:
            records = await store.list_calls()
            legs = await store.legs_by_call([r.id for r in records])
            rows = [call_json(r, tz, legs.get(r.id, [])) for r in records]
            if until(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"the call log never matched within {timeout} s: {rows}")
            await asyncio.sleep(0.1)
    finally:
        await store.close()


async def calls_in(database: str, match: Callable[[Row], object], timeout: float = 10) -> list[Row]:
    """The calls of the log that ``match``, once there is one (``call_log``)."""
    rows = await call_log(database, lambda rows: any(match(r) for r in rows), timeout)
    return [row for row in rows if match(row)]


def played(observer: Observer, channel_id: str) -> list[str]:
    """Media URIs started on a channel, in order: Asterisk emits PlaybackStarted for each
    media URI of a playback in turn (PlaybackContinuing repeats the one that ended)."""
    return [e["playback"]["media_uri"] for e in observer.matching(playback_started(channel_id))]


async def entered_stasis(observer: Observer, caller_number: str, what: str) -> str:
    """The channel id of the call from ``caller_number`` once it tries our Stasis app."""
    entry = await observer.wait_for(
        lambda e: dialplan_app(e, "Stasis") and e["channel"]["caller"]["number"] == caller_number,
        10,
        what,
    )
    channel_id: str = entry["channel"]["id"]
    return channel_id
