"""The operator queue's table, the caller's side (A3, A4, A6): (state, event) -> (state, commands)."""

from __future__ import annotations

from tests.unit.flowtable import AT, OPEN, Row, call, ctx, rows, sounds, step
from vvk_pbx.domain.callflow.commands import (
    Answer,
    CancelTimer,
    Command,
    Enqueue,
    GiveBack,
    HangUpLegs,
    LeaveQueue,
    LegSpec,
    Play,
    Ring,
    StartTimer,
    StopPrompt,
    ToDialplan,
)
from vvk_pbx.domain.callflow.decide import arrive
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallEvent,
    InQueue,
    LegAnswered,
    LegFailed,
    LegGone,
    Offered,
    TimerFired,
)
from vvk_pbx.domain.callflow.flows.common import RINGBACK
from vvk_pbx.domain.callflow.states import (
    Connected,
    HandedOver,
    Purpose,
    Queued,
    Ringing,
    State,
    Timer,
)
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.routing import CallKind

OP = Purpose.OPERATOR
OVF = Purpose.OVERFLOW
OP1, OP2 = "c:op1", "c:op2"
BOTH = frozenset({OP1, OP2})
OPERATORS = (LegSpec(OP1, "PJSIP/1001", "1001"), LegSpec(OP2, "PJSIP/1002", "1002"))
# The sample's overflow group is the unit kommunledning: its members in order.
UNIT = (
    LegSpec("c:ovf3", "PJSIP/1101", "1101"),
    LegSpec("c:ovf4", "PJSIP/1102", "1102"),
    LegSpec("c:ovf5", "PJSIP/1103", "1103"),
)
UNIT_LEGS = frozenset(leg.id for leg in UNIT)
WELCOME = (*sounds("welcome", "please-hold"), RINGBACK)

TABLE: list[Row] = [
    (
        "nobody free: the caller is answered and hears the welcome, then ringback (A3)",
        Queued(),
        {},
        InQueue(waiting=True),
        Queued(),
        (Answer(), Play(WELCOME, "welcome")),
    ),
    (
        "back in line, already hearing the ring tone: nothing new plays",
        Queued(),
        {"answered": True, "playing": "ringback", "bridged": True},
        InQueue(waiting=True),
        Queued(),
        (),
    ),
    (
        "an operator is free for an unanswered caller: no prompt, the dialplan rings (A3)",
        Queued(),
        {},
        InQueue(waiting=False),
        Queued(),
        (),
    ),
    (
        "an operator is free for a caller we answered (0 in the menu): the ring tone",
        Queued(),
        {"answered": True},
        InQueue(waiting=False),
        Queued(),
        (Play((RINGBACK,), "ringback"),),
    ),
    (
        "offered: the reserved operators ring",
        Queued(),
        {},
        Offered(("1001", "1002")),
        Ringing(OP, BOTH),
        (Ring(OPERATORS, OP, 72),),
    ),
    (
        "offered while the welcome plays: it stops so the caller can join the bridge",
        Queued(),
        {"answered": True, "playing": "welcome"},
        Offered(("1001", "1002")),
        Ringing(OP, BOTH),
        (StopPrompt(), Ring(OPERATORS, OP, 72), Play((RINGBACK,), "ringback")),
    ),
    (
        "offered when the call moved on: the operators go back",
        Ringing(OP, BOTH),
        {"legs": 2},
        Offered(("1001",)),
        Ringing(OP, BOTH),
        (GiveBack(("1001",)),),
    ),
    (
        "one phone of two ends: the other rings on",
        Ringing(OP, BOTH),
        {"legs": 2, "bridged": True},
        LegGone(OP1, AT),
        Ringing(OP, frozenset({OP2})),
        (),
    ),
    (
        "the last phone is busy: back in line by arrival (A4)",
        Ringing(OP, frozenset({OP2})),
        {"legs": 2, "bridged": True},
        LegFailed(OP2, "BUSY"),
        Queued(),
        (Enqueue(True, OPEN),),
    ),
    (
        "an operator answers: the call is theirs, the other phone told it was answered elsewhere",
        Ringing(OP, BOTH),
        {"legs": 2, "bridged": True},
        LegAnswered(OP2, "1002", AT),
        Connected(OP2, "1002"),
        (CancelTimer(Timer.OVERFLOW), Answer(), HangUpLegs((OP1,), "answered_elsewhere")),
    ),
    (
        "a late answer from a phone no longer ringing changes nothing here",
        Ringing(OP, frozenset({OP2})),
        {"legs": 2, "bridged": True},
        LegAnswered(OP1, "1001", AT),
        Ringing(OP, frozenset({OP2})),
        (),
    ),
    (
        "no person in overflow_after_s, waiting: the overflow group rings (A6)",
        Queued(),
        {"answered": True, "playing": "welcome", "bridged": False, "legs": 2},
        TimerFired(Timer.OVERFLOW),
        Ringing(OVF, UNIT_LEGS),
        (LeaveQueue(), StopPrompt(), Ring(UNIT, OVF, 72), Play((RINGBACK,), "ringback")),
    ),
    (
        "no person in overflow_after_s, operators ringing: they stop, the group rings",
        Ringing(OP, BOTH),
        {"legs": 2, "bridged": True},
        TimerFired(Timer.OVERFLOW),
        Ringing(OVF, UNIT_LEGS),
        (LeaveQueue(), HangUpLegs((OP1, OP2)), Ring(UNIT, OVF, 72)),
    ),
    (
        "the group rings already: a late timer changes nothing",
        Ringing(OVF, UNIT_LEGS),
        {"legs": 5, "bridged": True},
        TimerFired(Timer.OVERFLOW),
        Ringing(OVF, UNIT_LEGS),
        (),
    ),
    (
        "nobody of the group answers: the dialplan fallback",
        Ringing(OVF, frozenset({"c:ovf5"})),
        {"legs": 5, "bridged": True},
        LegGone("c:ovf5", AT),
        HandedOver(),
        (ToDialplan("vvk-fallback-inbound", "s", None),),
    ),
]


@rows(TABLE)
def test_operator_queue(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    assert step(call(state, **fields), event)[:2] == (after, commands)


def test_an_open_switchboard_puts_the_caller_in_line_with_the_overflow_timer() -> None:
    result = arrive("c", Arrived(CallKind.INBOUND, "0701234567", "012319100", OPEN), ctx())
    assert result.call.state == Queued()
    assert result.commands == (Enqueue(True, OPEN), StartTimer(Timer.OVERFLOW, 60))


def test_an_internal_call_to_the_operator_code_queues_as_internal() -> None:
    result = arrive("c", Arrived(CallKind.INTERNAL, "1101", "9", OPEN), ctx())
    assert result.commands[0] == Enqueue(False, OPEN)


def test_the_operators_answer_counts_rings_from_arrival() -> None:
    ringing = call(Ringing(OP, BOTH), legs=2, bridged=True)
    _, _, after = step(ringing, LegAnswered(OP2, "1002", AT))  # 5 s after arrival
    record = after.record
    assert (record.answered_by, record.rings, record.within_goal, record.outcome) == (
        "1002",
        1,
        True,
        Outcome.ANSWERED,
    )
    assert record.trace[-1] == "[A1] answered by 1002"
