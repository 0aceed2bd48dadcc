"""The console's table (park and koppla med förfrågan): (state, event) -> (state, commands)."""

from __future__ import annotations

from tests.unit.flowtable import AT, OPEN, Row, call, rows, step
from vvk_pbx.domain.callflow.commands import (
    CancelTimer,
    CloseConsult,
    Command,
    Enqueue,
    HangUpLegs,
    LegSpec,
    LookUpReferral,
    MoveLegs,
    Play,
    Ring,
    StartTimer,
    StopPrompt,
)
from vvk_pbx.domain.callflow.events import (
    CallEvent,
    ConsultCancelled,
    ConsultCompleted,
    ConsultRequested,
    LegAnswered,
    LegFailed,
    LegGone,
    ParkRequested,
    TimerFired,
    Unpark,
)
from vvk_pbx.domain.callflow.flows.common import RINGBACK
from vvk_pbx.domain.callflow.states import (
    Connected,
    Consulting,
    Parked,
    Purpose,
    Queued,
    Reaching,
    State,
    Timer,
)

OP1 = "c:op1"
TALKING = Connected(OP1, "1001")
ON_THE_PHONE = {"answered": True, "bridged": True, "legs": 2}
HOLDING = {**ON_THE_PHONE, "playing": "ringback", "legs": 3}
ASKING = Consulting(OP1, "1001", "1201", frozenset({"c:cons3"}))
TALKING_TO_1201 = Consulting(OP1, "1001", "1201", frozenset(), "c:cons3")
RINGBACK_PLAYS = Play((RINGBACK,), "ringback")

TABLE: list[Row] = [
    (
        "park: the operator's phone hangs up, the caller hears the ring tone, the recall runs",
        TALKING,
        ON_THE_PHONE,
        ParkRequested("1001"),
        Parked("1001"),
        (HangUpLegs((OP1,)), RINGBACK_PLAYS, StartTimer(Timer.RECALL, 60)),
    ),
    (
        "park asked when the call is no longer connected: nothing happens",
        Queued(),
        {"answered": True},
        ParkRequested("1001"),
        Queued(),
        (),
    ),
    (
        "the operator's leg ends after the park: the caller stays parked",
        Parked("1001"),
        {**ON_THE_PHONE, "playing": "ringback"},
        LegGone(OP1, AT),
        Parked("1001"),
        (),
    ),
    (
        "the recall: back to the switchboard, for the operator who parked first",
        Parked("1001"),
        {**ON_THE_PHONE, "playing": "ringback"},
        TimerFired(Timer.RECALL),
        Queued(),
        (Enqueue(True, OPEN, "1001"), StartTimer(Timer.OVERFLOW, 60)),
    ),
    (
        "an operator picks the parked caller: no recall, offered to them",
        Parked("1001"),
        {**ON_THE_PHONE, "playing": "ringback"},
        Unpark("1002"),
        Queued(),
        (CancelTimer(Timer.RECALL), Enqueue(True, OPEN, "1002"), StartTimer(Timer.OVERFLOW, 60)),
    ),
    (
        "koppla med förfrågan: the operator apart, the caller holds, 1201 rings there",
        TALKING,
        ON_THE_PHONE,
        ConsultRequested("1201", "1001"),
        ASKING,
        (
            MoveLegs((OP1,), consult=True),
            RINGBACK_PLAYS,
            Ring((LegSpec("c:cons3", "PJSIP/1201", "1201"),), Purpose.CONSULT, 72, consult=True),
        ),
    ),
    (
        "förfrågan to no extension (the call moved on since the API checked): nothing",
        TALKING,
        ON_THE_PHONE,
        ConsultRequested("4711", "1001"),
        TALKING,
        (),
    ),
    (
        "1201 answers: the operator and 1201 talk",
        ASKING,
        HOLDING,
        LegAnswered("c:cons3", "1201", AT),
        TALKING_TO_1201,
        (),
    ),
    (
        "completed: 1201 joins the caller, the operator leaves",
        TALKING_TO_1201,
        HOLDING,
        ConsultCompleted("1001"),
        Connected("c:cons3", "1201"),
        (
            MoveLegs(("c:cons3",), consult=False),
            CloseConsult(),
            HangUpLegs((OP1,)),
            StopPrompt(),
        ),
    ),
    (
        "taken back: 1201 is hung up, the caller has the operator again",
        TALKING_TO_1201,
        HOLDING,
        ConsultCancelled("1001"),
        TALKING,
        (
            HangUpLegs(("c:cons3",)),
            MoveLegs((OP1,), consult=False),
            CloseConsult(),
            StopPrompt(),
        ),
    ),
    (
        "1201 does not answer: the caller back to the operator by itself",
        ASKING,
        HOLDING,
        LegFailed("c:cons3", "NOANSWER"),
        TALKING,
        (MoveLegs((OP1,), consult=False), CloseConsult(), StopPrompt()),
    ),
    (
        "1201 hangs up after talking: the caller back to the operator",
        TALKING_TO_1201,
        HOLDING,
        LegGone("c:cons3", AT),
        TALKING,
        (MoveLegs((OP1,), consult=False), CloseConsult(), StopPrompt()),
    ),
    (
        "the operator hangs up while 1201 talks: completed, as a desk phone does",
        TALKING_TO_1201,
        HOLDING,
        LegGone(OP1, AT),
        Connected("c:cons3", "1201"),
        (MoveLegs(("c:cons3",), consult=False), CloseConsult(), StopPrompt()),
    ),
    (
        "completed before 1201 answers: a blind transfer to 1201 (their referral first)",
        ASKING,
        HOLDING,
        ConsultCompleted("1001"),
        Reaching("1201", Purpose.TRANSFER),
        (HangUpLegs((OP1, "c:cons3")), CloseConsult(), LookUpReferral("1201")),
    ),
]


@rows(TABLE)
def test_console(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    assert step(call(state, **fields), event)[:2] == (after, commands)


def test_the_trace_says_who_parked_and_who_asked_whom() -> None:
    _, _, parked = step(call(TALKING, **ON_THE_PHONE), ParkRequested("token:console"))
    assert "[A3] parked by 1001 (asked by token:console); recall in 60 s" in parked.record.trace
    _, _, asked = step(call(TALKING, **ON_THE_PHONE), ConsultRequested("1201", "token:console"))
    assert asked.record.trace[-2:] == (
        "[A5] 1001 asks 1201 before transferring",
        "[S1] the consultation was asked for by token:console",
    )
