"""Faults survived (issue 13), on real Asterisk: asserted on the events Asterisk emits
(the observer app) and on what ARI lists afterwards.

- The controller SIGKILLed with two callers talking to operators and one waiting:
  restarted, it adopts the two talking calls (still bridged to the same operators,
  nothing hung up), hands the waiting caller to the fallback, and leaves no empty
  bridge of ours; the call log has one row per call.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.harness import (
    ONE_OPERATOR,
    OPEN_AT,
    Controller,
    Observer,
    Pbx,
    call_log,
    dial,
    dialplan_app,
    entered_stasis,
    place_call,
    playback_started,
    start_phone,
)

SWITCHBOARD = "012319100"


def left_bridge(channel_id: str) -> Any:
    def match(event: dict[str, Any]) -> bool:
        return event.get("type") == "ChannelLeftBridge" and event["channel"]["id"] == channel_id

    return match


def in_fallback(channel_id: str) -> Any:
    """The caller's channel entering the inbound fallback (its first NoOp)."""

    def match(event: dict[str, Any]) -> bool:
        return (
            dialplan_app(event, "NoOp")
            and event["channel"]["id"] == channel_id
            and event["channel"]["dialplan"]["context"] == "vvk-fallback-inbound"
        )

    return match


async def our_bridges(observer: Observer) -> dict[str, list[str]]:
    """The bridges of ours Asterisk has: ``<call>:bridge`` and ``<call>:consult``."""
    listed = await observer.rest("GET", "bridges")
    return {b["id"]: b["channels"] for b in listed if b["id"].endswith((":bridge", ":consult"))}


async def test_a_killed_controller_keeps_talking_calls_connected(
    pbx: Pbx, observer: Observer, controller: Controller
) -> None:
    process, database = await controller(OPEN_AT)
    phones = [await start_phone(pbx, ext, ring_ms=300) for ext in ("1001", "1002")]
    callers = []
    try:
        talking: dict[str, str] = {}  # caller channel -> the operator's leg
        operators: dict[str, str] = {}  # caller channel -> the operator's extension
        for number in ("0700000401", "0700000402"):
            callers.append(await place_call(pbx, SWITCHBOARD, caller_number=number, hold_ms=-1))
            call_id = await entered_stasis(observer, number, f"{number} in Stasis")
            answer = await observer.wait_for(
                lambda e, c=call_id: (
                    e.get("type") == "Dial"
                    and e.get("dialstatus") == "ANSWER"
                    and e["peer"]["id"].startswith(f"{c}:")
                ),
                15,
                f"an operator answering {number}",
            )
            talking[call_id] = answer["peer"]["id"]
            operators[call_id] = answer["peer"]["name"].split("/")[1].split("-")[0]
        assert sorted(operators.values()) == ["1001", "1002"]
        # A third caller waits: both operators are busy.
        callers.append(await place_call(pbx, SWITCHBOARD, caller_number="0700000403", hold_ms=-1))
        waiting = await entered_stasis(observer, "0700000403", "the waiting caller")
        await observer.wait_for(playback_started(waiting), 10, "the waiting caller's welcome")
        before = await our_bridges(observer)
        for call_id, leg in talking.items():
            assert set(before[f"{call_id}:bridge"]) == {call_id, leg}

        process.kill()  # SIGKILL: no goodbye to Asterisk
        process.wait(10)
        killed = len(observer.events)
        await controller(OPEN_AT)

        # The waiting caller goes to the fallback; the talking ones stay as they are.
        await observer.wait_for(
            in_fallback(waiting),
            10,
            "the waiting caller handed to the fallback",
        )
        await asyncio.sleep(2)  # anything the restart would do to the talking calls
        after = observer.events[killed:]
        for call_id, leg in talking.items():
            for channel in (call_id, leg):
                assert not [e for e in after if left_bridge(channel)(e)], f"{channel} left"
                assert not [
                    e
                    for e in after
                    if e.get("type") in ("ChannelHangupRequest", "ChannelDestroyed")
                    and e["channel"]["id"] == channel
                ], f"{channel} hung up by the restart"
        bridges = await our_bridges(observer)
        assert sorted(bridges) == sorted(f"{c}:bridge" for c in talking), bridges
        for call_id, leg in talking.items():
            assert set(bridges[f"{call_id}:bridge"]) == {call_id, leg}
        assert all(bridges.values()), "no empty bridge of ours"

        # The callers hang up (Asterisk sends their BYE): the adopted calls end as
        # answered, one row each.
        ids = [*talking, waiting]
        for call_id in ids:
            await observer.rest("DELETE", f"channels/{call_id}")
        calls = await call_log(
            database, lambda cs: all(any(c["id"] == i and c["ended_at"] for c in cs) for i in ids)
        )
        mine = [c for c in calls if c["id"] in ids]
        assert len(mine) == 3, "one row per call placed"
        by_id = {c["id"]: c for c in mine}
        for call_id, extension in operators.items():
            assert (by_id[call_id]["outcome"], by_id[call_id]["answered_by"]) == (
                "answered",
                extension,
            )
            assert any("adopted" in str(step) for step in by_id[call_id]["trace"])  # type: ignore[attr-defined]
        assert by_id[waiting]["outcome"] == "fallback"
        await asyncio.sleep(1)
        assert await our_bridges(observer) == {}, "the adopted calls' bridges went with them"
    finally:
        for sipp in (*callers, *phones):
            await sipp.stop()


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


async def test_the_supervisor_restarts_a_killed_controller_before_a_waiting_caller_notices(
    pbx: Pbx, observer: Observer, controller: Controller, tmp_path: Path
) -> None:
    """`vvk-pbx supervise` (scripts/run): the controller SIGKILLed while a caller talks
    to the one operator and another waits hearing the ring tone. The supervisor
    starts it again at once; within 3 s of the kill the waiting caller is in the
    fallback, the ring tone played until then, and the fallback's own media follows
    within 3 s: no silence longer. The talking call is adopted."""
    supervisor, database = await controller(OPEN_AT, edits=(ONE_OPERATOR,), supervised=True)
    phone = await start_phone(pbx, "1001", ring_ms=300)
    callers = []
    try:
        callers.append(await place_call(pbx, SWITCHBOARD, caller_number="0700000411", hold_ms=-1))
        talking = await entered_stasis(observer, "0700000411", "the first caller")
        await observer.wait_for(dial("PJSIP/1001-", "ANSWER"), 15, "1001 answering")
        callers.append(await place_call(pbx, SWITCHBOARD, caller_number="0700000412", hold_ms=-1))
        waiting = await entered_stasis(observer, "0700000412", "the waiting caller")
        ring = await observer.wait_for(
            playback_started(waiting, "tone:ring;tonezone=se"), 20, "the waiting caller's ring tone"
        )
        pid_file = tmp_path / "controller.pid"
        first = int(pid_file.read_text())
        os.kill(first, signal.SIGKILL)
        killed = datetime.now(UTC)
        handed = await observer.wait_for(
            in_fallback(waiting),
            10,
            "the waiting caller in the fallback",
        )
        gap = (at(handed) - killed).total_seconds()
        assert gap <= 3.0, f"the waiting caller reached the fallback {gap:.1f} s after the kill"
        finished = [
            e
            for e in observer.events
            if e.get("type") == "PlaybackFinished" and e["playback"]["id"] == ring["playback"]["id"]
        ]
        # The ring tone played until the new controller stopped it to hand the caller over.
        assert finished and (at(handed) - at(finished[0])).total_seconds() < 0.5
        assert supervisor.poll() is None and int(pid_file.read_text()) != first
        # The fallback routes by the real time, which the test's shifted clock does not
        # move: its first media (a Dial ringing the operators, or the closed message
        # after its Wait(0.5)) comes within 3 s of the hand-over either way.
        media = await observer.wait_for(
            lambda e: (
                (dialplan_app(e, "Dial") or dialplan_app(e, "Playback"))
                and e["channel"]["id"] == waiting
            ),
            5,
            "the fallback's first media for the waiting caller",
        )
        assert (at(media) - at(handed)).total_seconds() <= 3.0
        bridges = await our_bridges(observer)
        assert list(bridges) == [f"{talking}:bridge"] and len(bridges[f"{talking}:bridge"]) == 2
        for call_id in (talking, waiting):
            await observer.rest("DELETE", f"channels/{call_id}")
        calls = await call_log(
            database,
            lambda cs: all(
                any(c["id"] == i and c["ended_at"] for c in cs) for i in (talking, waiting)
            ),
        )
        by_id = {c["id"]: c for c in calls}
        assert (by_id[talking]["outcome"], by_id[talking]["answered_by"]) == ("answered", "1001")
        assert by_id[waiting]["outcome"] == "fallback"
    finally:
        for sipp in (*callers, phone):
            await sipp.stop()
