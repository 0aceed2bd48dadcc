"""Referrals on real Asterisk (issue 5): staff codes, what callers hear, colleague, voicemail."""

from __future__ import annotations

import array
import asyncio
import json
import wave
from datetime import datetime
from pathlib import Path

import aiohttp

from tests.conftest import SAMPLE_CONFIG
from tests.e2e.conftest import PbxEnv
from tests.e2e.harness import (
    CLOSED_AT,
    CONTROLLER_API,
    ONE_OPERATOR,
    OPEN_AT,
    SPEECH,
    Controller,
    Observer,
    Pbx,
    dial,
    dialplan_app,
    entered_stasis,
    operator_token,
    place_call,
    playback_started,
    played,
    start_phone,
    transfer,
    vvk,
)
from vvk_pbx.asterisk import local
from vvk_pbx.config import load
from vvk_pbx.domain.calendar import Calendar

DIRECT_1101 = "0123191101"
READ_BACK = [
    "sound:vvk/code-referred",
    "sound:vvk/name-1101",
    "sound:vvk/reason-2",
    "sound:vvk/and-back",
    "sound:vvk/today",
    "sound:vvk/at-clock",
    "sound:vvk/num-14",
    "sound:vvk/num-30",
]


def refer(database: str, extension: str, reason: int, start: str, until: str) -> None:
    """Refer a person's phone from the command line, as ops would."""
    vvk(database, "referrals", "set", extension, "--reason", str(reason), "--from", start,
        "--until", until)  # fmt: skip


def vvk_json(database: str, *args: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(vvk(database, *args, "--json"))
    return result


async def dial_code(pbx: Pbx, observer: Observer, code: str, hold_ms: int) -> str:
    """1101 dials a staff code; returns its channel id once it entered Stasis."""
    call = await place_call(pbx, code, from_extension="1101", hold_ms=hold_ms)
    entry = await observer.wait_for(
        lambda e: (
            dialplan_app(e, "Stasis")
            and e["channel"]["caller"]["number"] == "1101"
            and e["dialplan_app_data"] == f"vvk-pbx,feature,{code}"
        ),
        10,
        f"1101 dialing {code}",
    )
    await call.wait(30)
    channel_id: str = entry["channel"]["id"]
    return channel_id


async def test_a_staff_code_is_stored_and_read_back_and_clearing_opens_the_phone(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT)  # Monday 10:00: 14:30 is today
    channel = await dial_code(pbx, observer, "*23*2*1430#", hold_ms=9000)
    assert played(observer, channel)[: len(READ_BACK)] == READ_BACK
    [referral] = vvk_json(database, "referrals", "list", "--at", "2026-11-30T11:00")
    assert (referral["extension"], referral["reason"]) == ("1101", 2)
    assert str(referral["end"]).startswith("2026-11-30T14:30")

    # A caller to 1101 hears the referral; 1 reaches a colleague of the unit.
    colleague = await start_phone(pbx, "1102", ring_ms=400)
    try:
        call = await place_call(
            pbx, DIRECT_1101, caller_number="0700000041", hold_ms=20000, dtmf=[("1", 9000)]
        )
        caller = await entered_stasis(observer, "0700000041", "the call to 1101")
        await observer.wait_for(dial("PJSIP/1102-", "ANSWER"), 20, "colleague 1102 answering")
        media = played(observer, caller)
        assert media[:8] == [
            "sound:vvk/name-1101",
            "sound:vvk/reason-2",
            "sound:vvk/and-back",
            "sound:vvk/today",
            "sound:vvk/at-clock",
            "sound:vvk/num-14",
            "sound:vvk/num-30",
            "sound:vvk/referral-menu",
        ], media
        assert not observer.matching(dial("PJSIP/1101-", "RINGING")), "1101 never rang"
        await call.stop()
    finally:
        await colleague.stop()

    # 1101 comes back early: #23# opens the phone, and the next caller rings it.
    channel = await dial_code(pbx, observer, "#23#", hold_ms=5000)
    assert played(observer, channel)[:1] == ["sound:vvk/code-cleared"]
    phone = await start_phone(pbx, "1101", ring_ms=300)
    try:
        await place_call(pbx, DIRECT_1101, caller_number="0700000042", hold_ms=1000)
        await observer.wait_for(dial("PJSIP/1101-", "ANSWER"), 15, "1101's own phone answering")
    finally:
        await phone.stop()


async def test_a_caller_leaves_a_message_and_it_enters_the_ledger(
    pbx: Pbx, observer: Observer, controller: Controller, pbx_env: PbxEnv
) -> None:
    _, database = await controller(
        OPEN_AT, edits=(("[queue]", "[voicemail]\nmax_s = 30\nsilence_s = 3\n\n[queue]"),)
    )
    await dial_code(pbx, observer, "*23*2*1430#", hold_ms=9000)
    # 2 during the menu: the prompt (4.5 s), the beep, then 7 s of speech; 3 s of
    # silence end the message, and the controller thanks the caller and hangs up.
    call = await place_call(
        pbx,
        DIRECT_1101,
        caller_number="0700000043",
        hold_ms=-1,
        dtmf=[("2", 9000), (SPEECH, 15500)],
    )
    caller = await entered_stasis(observer, "0700000043", "the call to 1101")
    started = await observer.wait_for(
        lambda e: (
            e.get("type") == "RecordingStarted"
            and e["recording"]["target_uri"] == f"channel:{caller}"
        ),
        25,
        "the recording starting",
    )
    assert started["recording"]["name"] == f"vm-1101-{caller}"
    assert await call.wait(40) == 0
    ledger = []
    for _ in range(50):
        ledger = vvk_json(database, "callbacks")
        if ledger:
            break
        await asyncio.sleep(0.2)
    [message] = ledger
    assert (message["extension"], message["caller"], message["status"]) == (
        "1101",
        "0700000043",
        "new",
    )
    # Left at Asterisk's time (the routing clock is shifted, log times are not);
    # due 2 working days later on the H2 calendar (V2).
    settings = load(SAMPLE_CONFIG)
    left = datetime.fromisoformat(str(message["left_at"]))
    deadline = Calendar(settings.hours_policy()).add_working_days(left, 2)
    assert datetime.fromisoformat(str(message["deadline"])) == deadline
    # The recording is kept in Asterisk's spool, with the speech in it: its
    # length is the 7 s sample, give or take the silence detection's trim.
    stored = pbx_env.layout.inside(f"{local.CHROOT.recordings}/{message['recording']}.wav")
    assert stored.is_file(), stored
    with wave.open(str(stored)) as recorded:
        seconds = recorded.getnframes() / recorded.getframerate()
        samples = array.array("h", recorded.readframes(recorded.getnframes()))
    print("recorded", seconds, "s; ledger says", message["duration_s"])
    assert 5 <= float(message["duration_s"]) <= 12, message  # type: ignore[arg-type]
    assert 5 <= seconds <= 12
    assert max(abs(x) for x in samples) > 1000, "the speech is in the file"
    assert observer.matching(playback_started(caller, "sound:vvk/voicemail-saved"))


async def test_an_impossible_code_gets_the_spoken_error_and_stores_nothing(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(OPEN_AT)
    channel = await dial_code(pbx, observer, "*23*99*2561#", hold_ms=6000)
    assert played(observer, channel)[:1] == ["sound:vvk/code-error-impossible-time"]
    assert vvk_json(database, "referrals", "list", "--at", "2026-11-30T11:00") == []


async def test_staff_listen_to_a_message_behind_the_pin_and_mark_it_called_back(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(
        OPEN_AT, edits=(("[queue]", "[voicemail]\nmax_s = 10\nsilence_s = 3\n\n[queue]"),)
    )
    vvk(database, "pins", "set", "1101", "--pin", "4711")
    await dial_code(pbx, observer, "*23*2*1430#", hold_ms=9000)
    call = await place_call(
        pbx, DIRECT_1101, caller_number="0700000044", hold_ms=-1, dtmf=[("2", 9000)]
    )
    caller = await entered_stasis(observer, "0700000044", "the call to 1101")
    assert await call.wait(40) == 0
    # 1101 listens: *98#, the PIN and #, then 5 (called back) during the message.
    keys = [("4", 4000), ("7", 4300), ("1", 4600), ("1", 4900), ("#", 5200), ("5", 16000)]
    listen = await place_call(pbx, "*98#", from_extension="1101", hold_ms=-1, dtmf=keys)
    await observer.wait_for(
        playback_started(media=f"recording:vm-1101-{caller}"),
        20,
        "the message playing to 1101",
    )
    assert await listen.wait(40) == 0
    [message] = vvk_json(database, "callbacks")
    assert message["status"] == "called_back"


async def test_a_silent_mailbox_call_says_goodbye_and_hangs_up(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    await controller(OPEN_AT)
    call = await place_call(pbx, "*98#", from_extension="1101", hold_ms=-1)
    entry = await observer.wait_for(
        lambda e: dialplan_app(e, "Stasis") and e["dialplan_app_data"] == "vvk-pbx,feature,*98#",
        10,
        "1101 dialing *98#",
    )
    assert await call.wait(30) == 0, "the controller hung up after the goodbye"
    assert played(observer, entry["channel"]["id"]) == [
        "sound:vvk/voicemail-pin",
        "sound:vvk/goodbye",
    ]


async def test_zero_reaches_the_closed_message_when_the_switchboard_is_closed(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    _, database = await controller(CLOSED_AT)  # Christmas Day
    refer(database, "1101", 4, "2026-12-20T00:00", "2027-01-04T08:00")
    call = await place_call(
        pbx, DIRECT_1101, caller_number="0700000045", hold_ms=16000, dtmf=[("0", 11000)]
    )
    caller = await entered_stasis(observer, "0700000045", "the call to 1101")
    await observer.wait_for(
        playback_started(caller, "sound:vvk/closed"),
        20,
        "the closed message after 0",
    )
    media = played(observer, caller)
    # "… har semester och är tillbaka måndag den fjärde januari klockan 8", then the menu.
    assert media[:9] == [
        "sound:vvk/name-1101",
        "sound:vvk/reason-4",
        "sound:vvk/and-back",
        "sound:vvk/day-0",
        "sound:vvk/the-date",
        "sound:vvk/ord-4",
        "sound:vvk/month-1",
        "sound:vvk/at-clock",
        "sound:vvk/num-8",
    ], media
    assert media.index("sound:vvk/referral-menu") < media.index("sound:vvk/closed")
    await call.wait(30)


async def test_the_return_a_caller_hears_waits_for_the_units_phone_hours(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    # Monday 10:00. Oskar Dahl (1303, Bygg och miljö) is back at 15:30, when the
    # switchboard is open but his unit's phone hours (09–11, 13–15) are over (A7).
    _, database = await controller(OPEN_AT)
    refer(database, "1303", 2, "2026-11-30T09:00", "2026-11-30T15:30")
    call = await place_call(pbx, "0123191303", caller_number="0700000046", hold_ms=9000)
    caller = await entered_stasis(observer, "0700000046", "the call to 1303")
    await observer.wait_for(
        playback_started(caller, "sound:vvk/referral-menu"), 20, "the menu after the referral"
    )
    # "Oskar Dahl är på möte och är tillbaka i morgon klockan 9"
    assert played(observer, caller) == [
        "sound:vvk/name-1303",
        "sound:vvk/reason-2",
        "sound:vvk/and-back",
        "sound:vvk/tomorrow",
        "sound:vvk/at-clock",
        "sound:vvk/num-9",
        "sound:vvk/referral-menu",
    ]
    [referral] = vvk_json(database, "referrals", "list", "--at", "2026-11-30T11:00")
    assert (referral["end"], referral["announced_end"]) == (
        "2026-11-30T15:30:00+01:00",
        "2026-12-01T09:00:00+01:00",
    )
    await call.wait(30)


async def test_a_new_person_without_a_spoken_name_is_reported(
    controller: Controller, pbx_env: PbxEnv, tmp_path: Path
) -> None:
    # Ops add a person but do not run `vvk-pbx sounds build`: Asterisk has every
    # prompt but the new name, and the controller says so in its health and log.
    new_person = (
        '[[staff]]\nname = "Anna Berg"',
        '[[staff]]\nname = "Nils Nyman"\nextension = "1104"\nunit = "kommunledning"\n'
        'title = "Nämndsekreterare"\n\n[[staff]]\nname = "Anna Berg"',
    )
    # The sounds directory outlives test runs: make sure no earlier run left the name.
    stale = pbx_env.layout.inside(f"{local.CHROOT.sounds}/name-1104.wav")
    stale.unlink(missing_ok=True)
    await controller(OPEN_AT, edits=(new_person,))
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{CONTROLLER_API}/health") as response,
    ):
        health = await response.json()
    assert health["missing_prompts"] == ["name-1104"], health
    log = (tmp_path / "controller.log").read_text(encoding="utf-8")
    assert "1 prompt(s) missing in Asterisk (name-1104)" in log


async def test_an_operator_transfers_a_caller_to_a_referred_person(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    # R5: "directly, or transferred by an operator". 1101 is on a course until 14:30;
    # the operator puts the caller through anyway, and the caller hears why.
    _, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,))
    refer(database, "1101", 5, "2026-11-30T08:00", "2026-11-30T14:30")
    operator = await start_phone(pbx, "1001", ring_ms=300)
    try:
        call = await place_call(pbx, "012319100", caller_number="0700000047", hold_ms=14000)
        caller = await entered_stasis(observer, "0700000047", "the call to the switchboard")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 10, "the operator answering")
        status, body = await transfer(caller, "1101", operator_token(database))
        assert status == 202, body
        await observer.wait_for(
            playback_started(caller, "sound:vvk/referral-menu"), 20, "the referral, then the menu"
        )
        assert played(observer, caller)[-8:] == [
            "sound:vvk/name-1101",
            "sound:vvk/reason-5",
            "sound:vvk/and-back",
            "sound:vvk/today",
            "sound:vvk/at-clock",
            "sound:vvk/num-14",
            "sound:vvk/num-30",
            "sound:vvk/referral-menu",
        ]
        assert not observer.matching(dial("PJSIP/1101-", "RINGING")), "1101 never rang"
        await call.wait(30)
    finally:
        await operator.stop()


async def test_a_message_recorded_while_the_controller_dies_reaches_the_ledger(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    voicemail = ("[queue]", "[voicemail]\nmax_s = 30\nsilence_s = 3\n\n[queue]")
    process, database = await controller(OPEN_AT, edits=(voicemail,))
    refer(database, "1101", 2, "2026-11-30T08:00", "2026-11-30T14:30")
    call = await place_call(
        pbx,
        DIRECT_1101,
        caller_number="0700000048",
        hold_ms=26000,
        dtmf=[("2", 9000), (SPEECH, 15500)],
    )
    caller = await entered_stasis(observer, "0700000048", "the call to 1101")
    await observer.wait_for(
        lambda e: (
            e.get("type") == "RecordingStarted"
            and e["recording"]["target_uri"] == f"channel:{caller}"
        ),
        25,
        "the recording starting",
    )
    process.kill()  # SIGKILL while the caller speaks: Asterisk records on
    process.wait(10)
    await call.wait(60)
    assert vvk_json(database, "callbacks") == []
    await controller(OPEN_AT, edits=(voicemail,))  # the same database
    [message] = vvk_json(database, "callbacks")
    assert (message["extension"], message["caller"], message["recording"]) == (
        "1101",
        "0700000048",
        f"vm-1101-{caller}",
    )
    assert 5 <= float(message["duration_s"]) <= 12, message  # type: ignore[arg-type]
    # The call's row, left open by the killed controller, ends as a voicemail call.
    for _ in range(50):
        [row] = [c for c in vvk_json(database, "calls", "list") if c["id"] == caller]
        if row["ended_at"]:
            break
        await asyncio.sleep(0.1)
    assert (row["outcome"], bool(row["ended_at"])) == ("voicemail", True), row
