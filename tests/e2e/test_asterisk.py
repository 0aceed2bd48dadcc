"""Real Asterisk 22: calls placed with SIPp, asserted on the events Asterisk emits to the observer."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, time, timedelta

import aiohttp

from tests.conftest import ROOT
from tests.e2e.conftest import PbxEnv
from tests.e2e.harness import (
    Event,
    Observer,
    Pbx,
    StasisApp,
    dial,
    dialplan_app,
    place_call,
    start_phone,
    stasis_entry,
)
from vvk_pbx.asterisk import local
from vvk_pbx.config import Settings
from vvk_pbx.config.model import (
    WEEKDAY_NAMES,
    ClosedDate,
    DateOverride,
    Overrides,
    Person,
    Switch,
    Weekly,
)
from vvk_pbx.domain.calendar import Calendar, TimeRange

NEVER = 86_400_000  # ring_ms of a phone that never answers
SWITCHBOARD = "012319100"


def varset(variable: str, value: str, channel_id: str):  # type: ignore[no-untyped-def]
    def match(event: Event) -> bool:
        return (
            event.get("type") == "ChannelVarset"
            and event.get("variable") == variable
            and event.get("value") == value
            and event.get("channel", {}).get("id") == channel_id
        )

    return match


def ts(event: Event) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def open_now(env: PbxEnv) -> None:
    now = datetime.now(env.settings.site.tz)
    switch = Switch(
        state="open", start=now - timedelta(hours=1), end=now + timedelta(hours=2), reason="test"
    )
    env.set_overrides(Overrides(switch=(switch,)))


def closed_today(env: PbxEnv) -> None:
    # Today and tomorrow, so a test that runs across midnight is still closed.
    today = datetime.now(env.settings.site.tz).date()
    closed = tuple(ClosedDate(date=today + timedelta(days=d), reason="test") for d in (0, 1))
    env.set_overrides(Overrides(closed=closed))


# ----------------------------------------------------------------- into Stasis


async def test_trunk_call_enters_stasis_with_the_inbound_argument(
    pbx: Pbx, observer: Observer
) -> None:
    controller = StasisApp(pbx, pbx.app)
    await controller.start()
    try:
        call = await place_call(pbx, SWITCHBOARD, caller_number="0701234567", hold_ms=-1)
        entry = await observer.wait_for(
            stasis_entry(pbx.app, f"inbound,{SWITCHBOARD}"), 10, "trunk call entering Stasis"
        )
        assert entry["channel"]["name"].startswith("PJSIP/trunk-")
        assert entry["channel"]["caller"]["number"] == "0701234567"
        start = await controller.wait_for(
            lambda e: e["type"] == "StasisStart", 10, "StasisStart at the controller"
        )
        assert start["args"] == ["inbound", SWITCHBOARD]
        await controller.rest("DELETE", f"channels/{start['channel']['id']}")
        await call.wait(15)
    finally:
        await controller.stop()


async def test_internal_call_and_feature_code_enter_stasis_with_their_kind(
    pbx: Pbx, observer: Observer
) -> None:
    controller = StasisApp(pbx, pbx.app)
    await controller.start()
    try:
        internal = await place_call(pbx, "1102", from_extension="1101", hold_ms=-1)
        entry = await observer.wait_for(
            stasis_entry(pbx.app, "internal,1102"), 10, "internal call entering Stasis"
        )
        assert entry["channel"]["name"].startswith("PJSIP/1101-")
        feature = await place_call(pbx, "*23*2*1430#", from_extension="1103", hold_ms=-1)
        await observer.wait_for(
            stasis_entry(pbx.app, "feature,*23*2*1430#"), 10, "feature code entering Stasis"
        )
        starts = await _stasis_starts(controller, 2)
        assert sorted(tuple(s["args"]) for s in starts) == [
            ("feature", "*23*2*1430#"),
            ("internal", "1102"),
        ]
        for start in starts:
            await controller.rest("DELETE", f"channels/{start['channel']['id']}")
        await internal.wait(15)
        await feature.wait(15)
    finally:
        await controller.stop()


async def _stasis_starts(app: StasisApp, count: int) -> list[Event]:
    await app.wait_for(
        lambda _: len(app.matching(lambda e: e["type"] == "StasisStart")) >= count,
        10,
        f"{count} StasisStart events",
    )
    return app.matching(lambda e: e["type"] == "StasisStart")


# ----------------------------------------------------------------- fallback


async def test_fallback_rings_the_operators_when_open(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    open_now(pbx_env)
    answering = await start_phone(pbx, "1001", ring_ms=1500)
    silent = await start_phone(pbx, "1002", ring_ms=NEVER)
    try:
        call = await place_call(pbx, SWITCHBOARD, hold_ms=1000)
        entry = await observer.wait_for(
            stasis_entry(pbx.app, f"inbound,{SWITCHBOARD}"), 10, "Stasis attempt"
        )
        caller_id = entry["channel"]["id"]
        await observer.wait_for(
            varset("STASISSTATUS", "FAILED", caller_id), 10, "STASISSTATUS=FAILED"
        )
        ringing = await observer.wait_for(dial("PJSIP/1001-", "RINGING"), 10, "1001 ringing")
        answered = await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 15, "1001 answering")
        assert answered["caller"]["id"] == caller_id
        await observer.wait_for(dial("PJSIP/1002-", "RINGING"), 10, "1002 ringing too")
        await observer.wait_for(dial("PJSIP/1002-", "CANCEL"), 10, "1002 cancelled")
        # The phone rang 1.5 s before it answered; Asterisk's own timestamps say so.
        rang = (ts(answered) - ts(ringing)).total_seconds()
        assert 1.2 <= rang <= 1.8, rang
        assert await call.wait(20) == 0
    finally:
        await answering.stop()
        await silent.stop()


async def test_fallback_plays_the_closed_message_when_closed(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    closed_today(pbx_env)
    operator = await start_phone(pbx, "1001", ring_ms=500)
    try:
        call = await place_call(pbx, SWITCHBOARD, hold_ms=-1, dtmf=[("1", 1500), ("2", 2000)])
        entry = await observer.wait_for(
            stasis_entry(pbx.app, f"inbound,{SWITCHBOARD}"), 10, "Stasis attempt"
        )
        caller_id = entry["channel"]["id"]
        playback = await observer.wait_for(
            lambda e: dialplan_app(e, "Playback") and e["channel"]["id"] == caller_id,
            10,
            "the closed message",
        )
        assert playback["dialplan_app_data"] == "vvk/fallback-closed"
        # The caller's RFC 4733 digits reach Asterisk during the message.
        for digit in ("1", "2"):
            await observer.wait_for(
                lambda e, d=digit: (
                    e.get("type") == "ChannelDtmfReceived"
                    and e.get("digit") == d
                    and e["channel"]["id"] == caller_id
                ),
                10,
                f"DTMF {digit}",
            )
        # The prompt file exists and played to its end, then the call ends.
        await observer.wait_for(
            varset("PLAYBACKSTATUS", "SUCCESS", caller_id), 60, "PLAYBACKSTATUS=SUCCESS"
        )
        assert await call.wait(30) == 0
        assert not observer.matching(lambda e: e.get("type") == "Dial"), "nobody may be dialled"
    finally:
        await operator.stop()


async def test_fallback_internal_call_rings_the_extension(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    phone = await start_phone(pbx, "1202", ring_ms=700)
    try:
        call = await place_call(pbx, "1202", from_extension="1201", hold_ms=800)
        await observer.wait_for(stasis_entry(pbx.app, "internal,1202"), 10, "Stasis attempt")
        await observer.wait_for(dial("PJSIP/1202-", "ANSWER"), 10, "1202 answering")
        assert await call.wait(20) == 0
    finally:
        await phone.stop()


async def test_fallback_skips_a_busy_operator(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    open_now(pbx_env)
    busy = await start_phone(pbx, "1001", busy=True)
    answering = await start_phone(pbx, "1002", ring_ms=500)
    try:
        call = await place_call(pbx, SWITCHBOARD, hold_ms=800)
        await observer.wait_for(dial("PJSIP/1001-", "BUSY"), 10, "1001 busy")
        await observer.wait_for(dial("PJSIP/1002-", "ANSWER"), 10, "1002 answering")
        assert await call.wait(20) == 0
    finally:
        await busy.stop()
        await answering.stop()


async def test_feature_code_without_controller_is_told_it_is_unavailable(
    pbx: Pbx, observer: Observer
) -> None:
    call = await place_call(pbx, "*23*2*1430#", from_extension="1101", hold_ms=-1)
    playback = await observer.wait_for(
        lambda e: dialplan_app(e, "Playback"), 10, "the unavailable message"
    )
    assert playback["dialplan_app_data"] == "vvk/fallback-feature-unavailable"
    assert await call.wait(30) == 0


# ----------------------------------------------------------------- GotoIfTime itself


def _clamped_range(env: PbxEnv, start_min: int, end_min: int) -> tuple[time, time] | None:
    """Today's local [now+start_min, now+end_min) as wall times, or None if it leaves today."""
    now = datetime.now(env.settings.site.tz)
    start, end = now + timedelta(minutes=start_min), now + timedelta(minutes=end_min)
    if start.date() != now.date() or end.date() != now.date():
        return None
    return start.time().replace(second=0, microsecond=0), end.time().replace(
        second=0, microsecond=0
    )


async def _window_around_now_or_after_midnight(env: PbxEnv) -> tuple[time, time]:
    """A window of today's wall times that holds now. From 23:59 to midnight no whole
    minute around now is left in the day (hours end by 23:59): then it waits for
    00:00, at most a minute, and the window starts there."""
    now = datetime.now(env.settings.site.tz)
    if now.hour == 23 and now.minute == 59:
        await asyncio.sleep(61 - now.second)
    window = _clamped_range(env, -2, 15) or _clamped_range(env, -15, 1)
    window = window or _clamped_range(env, 0, 5)
    assert window is not None, "a window around now after midnight"
    return window


def _weekly_every_day(env: PbxEnv, hours: tuple[time, time] | None) -> Calendar:
    ranges = () if hours is None else (TimeRange(*hours),)
    weekly = Weekly(**{day: ranges for day in WEEKDAY_NAMES})
    settings = env.settings.model_copy(
        update={
            "hours": env.settings.hours.model_copy(update={"weekly": weekly, "lunch": None}),
            "overrides": Overrides(),
        }
    )
    env.render(settings)
    return Calendar(settings.hours_policy())


async def _route_of_a_call(pbx: Pbx, observer: Observer) -> str:
    """Open or closed, by the fallback step Asterisk took: Ringing() starts the
    open context (every call rings once before Stasis, in from-trunk),
    Goto(vvk-fallback-closed) the closed one."""
    call = await place_call(pbx, SWITCHBOARD, hold_ms=1500, cancel_ms=3000)
    event = await observer.wait_for(
        lambda e: (
            (
                dialplan_app(e, "Ringing")
                and e["channel"]["dialplan"]["context"] == "vvk-fallback-open"
            )
            or (
                dialplan_app(e, "Goto") and e["dialplan_app_data"].startswith("vvk-fallback-closed")
            )
        ),
        10,
        "the open or closed branch",
    )
    await call.wait(20)
    return "open" if event["dialplan_app"] == "Ringing" else "closed"


async def test_weekly_hours_around_now_open_the_switchboard(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    # Open from two minutes ago for a quarter of an hour, every weekday, no
    # overrides: the weekly GotoIfTime lines decide (a red day or an eve today
    # follows the calendar instead, and so does the expectation).
    window = await _window_around_now_or_after_midnight(pbx_env)
    calendar = _weekly_every_day(pbx_env, window)
    expected = "open" if calendar.is_open(datetime.now(calendar.tz)) else "closed"
    assert await _route_of_a_call(pbx, observer) == expected


async def test_weekly_hours_outside_now_keep_it_closed(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    # Open only in a window that does not contain now (later today, or earlier).
    window = _clamped_range(pbx_env, 5, 20) or _clamped_range(pbx_env, -20, -5)
    assert window is not None
    calendar = _weekly_every_day(pbx_env, window)
    assert not calendar.is_open(datetime.now(calendar.tz))
    assert await _route_of_a_call(pbx, observer) == "closed"


async def test_a_day_override_with_hours_around_now_opens_by_date_and_time(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    window = await _window_around_now_or_after_midnight(pbx_env)
    today = datetime.now(pbx_env.settings.site.tz).date()
    day = DateOverride(date=today, hours=(TimeRange(*window),), reason="test")
    pbx_env.set_overrides(Overrides(day=(day,)))
    assert await _route_of_a_call(pbx, observer) == "open"


# ----------------------------------------------------------------- numbers that used to fail


async def test_one_digit_internal_call_enters_stasis_and_reaches_the_switchboard(
    pbx_env: PbxEnv, pbx: Pbx, observer: Observer
) -> None:
    open_now(pbx_env)
    operator = await start_phone(pbx, "1001", ring_ms=300)
    try:
        call = await place_call(pbx, "9", from_extension="1101", hold_ms=500)
        await observer.wait_for(stasis_entry(pbx.app, "internal,9"), 10, "Stasis with 9")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
        assert await call.wait(20) == 0
    finally:
        await operator.stop()


async def test_unknown_internal_number_is_told_so_not_a_fast_busy(
    pbx: Pbx, observer: Observer
) -> None:
    call = await place_call(pbx, "4711", from_extension="1101", hold_ms=-1)
    await observer.wait_for(stasis_entry(pbx.app, "internal,4711"), 10, "Stasis with 4711")
    playback = await observer.wait_for(lambda e: dialplan_app(e, "Playback"), 10, "a message")
    assert playback["dialplan_app_data"] == "vvk/fallback-unknown-number"
    assert await call.wait(30) == 0  # answered, then hung up by Asterisk


async def test_asterisk_made_no_dns_lookups(pbx_env: PbxEnv) -> None:
    # Runs after the calls above. Without the host name in the chroot's
    # /etc/hosts, Asterisk resolves it through DNS; with no DNS here calls pile up.
    await asyncio.sleep(0)
    assert pbx_env.dns.queries == []
    text = "".join(
        path.read_text(errors="replace") for path in pbx_env.log_dir.glob("*") if path.is_file()
    )
    assert "Stasis" in text, "the log should show the calls"
    dns = [
        line
        for line in text.splitlines()
        if re.search(r"(WARNING|ERROR)", line)
        and re.search(r"DNS|dns|getaddrinfo|lookup|ROOT-SERVERS|resolve", line)
    ]
    assert not dns, dns[:5]


async def test_up_on_a_running_asterisk_gives_a_new_person_a_phone_and_a_name(
    pbx_env: PbxEnv, pbx: Pbx
) -> None:
    # Ops add Nils Nyman (1104) and run `scripts/run` (vvk-pbx asterisk up) again
    # while Asterisk runs: his phone and his spoken name must exist afterwards.
    nils = Person(name="Nils Nyman", extension="1104", unit="kommunledning", title="Sekreterare")
    settings = pbx_env.settings.model_copy(update={"staff": (*pbx_env.settings.staff, nils)})

    async def has(path: str, params: dict[str, str] | None = None) -> tuple[int, object]:
        async with (
            aiohttp.ClientSession(headers=pbx.auth_header()) as session,
            session.get(pbx.rest_url(path), params=params) as response,
        ):
            return response.status, await response.json()

    def up(with_settings: Settings) -> None:
        calendar = Calendar(with_settings.hours_policy())
        now = datetime.now(with_settings.site.tz)
        local.up(with_settings, calendar, pbx_env.layout, now, print)

    def endpoint() -> str:
        # Asterisk's CLI, not ARI: ARI's endpoint cache keeps a removed endpoint.
        return local.cli(pbx_env.layout, "pjsip show endpoint 1104")

    up(settings)
    try:
        assert "Endpoint:  1104" in endpoint(), "the new phone is an endpoint"
        _, sounds = await has("sounds", {"lang": "vvk"})
        assert "name-1104" in {s["id"] for s in sounds}  # type: ignore[attr-defined]
    finally:
        up(pbx_env.settings)
    assert "Unable to find object 1104" in endpoint(), "gone again with the person"
    _, sounds = await has("sounds", {"lang": "vvk"})
    assert "name-1104" not in {s["id"] for s in sounds}  # type: ignore[attr-defined]


async def test_scripts_call_places_the_readme_call(pbx: Pbx) -> None:
    """`scripts/call 012319100`, the README's first step after `scripts/run`, is answered
    (by the dialplan fallback here: no controller runs in this test)."""
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "call"),
        "012319100",
        "2",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert "call to 012319100: answered" in text, text
