"""A restarted controller (issue 13): calls an earlier process connected to a person go
on, connected; the rest go to the dialplan fallback; the bridges the earlier process
left are destroyed. Over the fake ARI's channels and bridges, as ``GET /channels``
and ``GET /bridges`` list them after a SIGKILL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.component.test_calls import OPEN, Rig, destroyed, open_, ts
from tests.fakes import MemoryStore
from vvk_pbx.domain.callflow.states import Connected
from vvk_pbx.domain.calls import CallRecord, Leg, Outcome
from vvk_pbx.domain.routing import CallKind, route
from vvk_pbx.storage.calllog import StorageError
from vvk_pbx.storage.cdr import CdrFile

__all__ = ["open_"]  # the rig fixture, open hours


def channel(
    cid: str, args: str, state: str = "Up", name: str = "", number: str = ""
) -> dict[str, Any]:
    return {
        "id": cid,
        "name": name or f"PJSIP/trunk-{cid}",
        "state": state,
        "caller": {"number": number or "0701234567", "name": ""},
        "creationtime": "2026-11-30T10:00:00.000+0100",
        "dialplan": {"app_name": "Stasis", "app_data": f"vvk-pbx,{args}", "exten": "012319100"},
    }


def logged(rig: Rig, call_id: str, operator: str) -> None:
    """The call's row and leg as the earlier process wrote them: answered by ``operator``."""
    policy = rig.controller.policy
    decision = route(
        CallKind.INBOUND, "0701234567", "012319100", OPEN, policy.calendar, policy.numbering
    )
    record = CallRecord.arrive(call_id, "0701234567", "012319100", OPEN, decision)
    answered = OPEN + timedelta(seconds=4)
    rig.store.calls[call_id] = record.answered(answered, operator, 5000, 4)
    rig.store.legs[f"{call_id}:op1"] = Leg(
        f"{call_id}:op1", call_id, f"PJSIP/{operator}", "op", OPEN, OPEN, answered
    )


def set_scene(rig: Rig) -> None:
    """After a SIGKILL: "a" talks with operator 1001, "b" waits alone in its bridge,
    "c" is held while 1002 consults 1201, and two bridges are empty."""
    rig.fake.channels = [
        channel("a", "inbound,012319100"),
        channel("a:op1", "leg,a", name="PJSIP/1001-00000001"),
        channel("b", "inbound,012319100", number="0702222222"),
        channel("c", "inbound,012319100", number="0703333333"),
        channel("c:op1", "leg,c", name="PJSIP/1002-00000002"),
        channel("c:cons2", "leg,c", name="PJSIP/1201-00000003"),
    ]
    rig.fake.bridges = {
        "a:bridge": ["a", "a:op1"],
        "b:bridge": ["b"],
        "c:bridge": ["c"],
        "c:consult": ["c:op1", "c:cons2"],
        "gone:bridge": [],
        "gone:consult": [],
        "someone-elses": [],
    }


async def test_a_restart_keeps_connected_calls_and_clears_stale_bridges(open_: Rig) -> None:
    logged(open_, "a", "1001")
    set_scene(open_)
    await open_.reconciliation.resync()

    line = open_.controller.registry.line("a")
    assert line is not None and line.call.state == Connected("a:op1", "1001")
    assert line.bridge == "a:bridge" and line.call.answered and line.call.bridged
    consulted = open_.controller.registry.line("c")
    assert consulted is not None and consulted.call.state == Connected("c:op1", "1002")
    assert open_.queue.operators["1001"].call == "a", "1001 is busy: offered no new call"
    assert open_.queue.operators["1002"].call == "c"

    posts = open_.posts()
    assert ("channels/a/continue" not in [p for p, _ in posts]) and (
        "channels/a:op1" not in [p for p, _ in posts]
    ), "the talking call is left as it is"
    assert (
        "channels/b/continue",
        {"context": "vvk-fallback-inbound", "extension": "s", "priority": "1"},
    ) in posts
    # The consultation: 1002 back with the caller, the person asked hung up.
    assert ("bridges/c:consult/removeChannel", {"channel": "c:op1"}) in posts
    assert ("bridges/c:bridge/addChannel", {"channel": "c:op1"}) in posts
    assert ("channels/c:cons2", {"reason": "normal"}) in posts
    assert sorted(open_.fake.bridges) == ["a:bridge", "c:bridge", "someone-elses"]

    # The adopted call ends as any call does: the caller hangs up, the operator's leg
    # goes, and the row (one, the earlier process's) ends answered by 1001.
    await open_.event(
        {
            "type": "StasisEnd",
            "timestamp": ts(OPEN + timedelta(minutes=5)),
            "channel": channel("a", "inbound,012319100"),
        }
    )
    await open_.event(destroyed("a:op1", OPEN + timedelta(minutes=5)))
    await open_.recorder.flush()
    record = open_.store.calls["a"]
    assert record.ended_at == OPEN + timedelta(minutes=5)
    assert (record.outcome, record.answered_by) == (Outcome.ANSWERED, "1001")
    assert "[resync] the controller restarted; connected to 1001, adopted" in record.trace
    assert "a:bridge" not in open_.fake.bridges
    assert open_.queue.operators["1001"].call is None, "1001 is free again"


async def test_a_call_is_adopted_even_when_the_call_log_does_not_answer(open_: Rig) -> None:
    class Down(MemoryStore):
        async def get_call(self, call_id: str) -> CallRecord | None:
            raise StorageError("database is locked")

    open_.reconciliation.store = Down()
    set_scene(open_)
    await open_.reconciliation.resync()
    line = open_.controller.registry.line("a")
    assert line is not None and line.call.state == Connected("a:op1", "1001")
    assert any("could not be read" in step for step in line.call.record.trace)


def cdr_line(
    call_id: str, kind: str, party: str, start: float, answer: float, end: float, disposition: str
) -> str:
    """A line as cdr_custom writes it (dialplan/cdr_custom.conf)."""
    cells = [
        call_id,
        kind,
        "0701234567",
        "012319100",
        party,
        f"{start:.6f}",
        f"{answer:.6f}" if answer else "",
        f"{end:.6f}",
        disposition,
        "Karin",
    ]
    return ",".join(f'"{c}"' for c in cells) + "\n"


async def test_calls_only_the_fallback_handled_are_logged_once_from_the_cdr(
    open_: Rig, tmp_path: Path
) -> None:
    start = OPEN.timestamp()
    path = tmp_path / "vvk-calls.csv"
    # "f1": the fallback rang both operators, 1002 answered; "f2": closed message, no
    # party; "had": a call a controller had (no mark); "known": marked but logged.
    path.write_text(
        cdr_line("f1", "inbound", "PJSIP/1001-00000001", start, 0, start + 20, "NO ANSWER")
        + cdr_line("f1", "inbound", "PJSIP/1002-00000002", start, start + 4, start + 60, "ANSWERED")
        + cdr_line("f2", "inbound", "", start + 1, start + 1.5, start + 9, "ANSWERED")
        + cdr_line("had", "", "PJSIP/1001-00000003", start, start + 2, start + 30, "ANSWERED")
        + cdr_line("known", "inbound", "", start, start + 1, start + 5, "ANSWERED")
        + '"half-written'
    )
    logged(open_, "known", "1001")
    open_.reconciliation.cdr = CdrFile(path)
    assert await open_.reconciliation.import_fallback_calls() == 2
    record = open_.store.calls["f1"]
    assert (record.outcome, record.answered_by) == (Outcome.FALLBACK, "1002")
    assert record.answered_at == OPEN + timedelta(seconds=4)
    assert record.ended_at == OPEN + timedelta(seconds=60)
    assert record.caller_name == "Karin" and record.direction == "external"
    assert any("CDR" in step for step in record.trace)
    quiet = open_.store.calls["f2"]
    assert (quiet.outcome, quiet.answered_by, quiet.ended_at) == (
        Outcome.FALLBACK,
        None,
        OPEN + timedelta(seconds=9),
    )
    assert "had" not in open_.store.calls
    assert open_.store.calls["known"].outcome is not Outcome.FALLBACK, "a logged call is left"
    # Read again (a later round, a restart): nothing twice; the half line waits.
    assert await open_.reconciliation.import_fallback_calls() == 0
    with path.open("a") as out:
        out.write('",x\n' + cdr_line("f3", "internal", "", start, 0, start + 3, "NO ANSWER"))
    assert await open_.reconciliation.import_fallback_calls() == 1
    assert open_.store.calls["f3"].direction == "internal"
