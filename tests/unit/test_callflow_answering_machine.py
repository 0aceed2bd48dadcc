"""The answering machine's table (H5): (state, event) -> (state, commands)."""

from __future__ import annotations

from tests.unit.flowtable import AT, CLOSED, Row, call, ctx, rows, sounds, step
from vvk_pbx.domain.callflow.commands import (
    Answer,
    CancelTimer,
    Command,
    Forget,
    HangUp,
    LegSpec,
    Play,
    Ring,
    StopPrompt,
    ToDialplan,
)
from vvk_pbx.domain.callflow.decide import arrive
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallerGone,
    CallEvent,
    Digit,
    LegAnswered,
    LegGone,
    PromptDone,
)
from vvk_pbx.domain.callflow.flows.common import RINGBACK
from vvk_pbx.domain.callflow.states import (
    Announcing,
    Connected,
    Done,
    HandedOver,
    Purpose,
    Ringing,
    State,
    Timer,
)
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.routing import Action, CallKind

# Christmas Day: the switchboard opens again Monday at 8; the three on-call numbers.
MESSAGE = sounds(
    "welcome",
    "closed",
    "hours",
    "opens-again",
    "day-0",
    "at-clock",
    "num-8",
    "on-call-1",
    "on-call-2",
    "on-call-3",
)
AM = Action.ANSWERING_MACHINE
ON_CALL_LEG = "c:oncall1"
SOCIAL = LegSpec(ON_CALL_LEG, "PJSIP/012319190@trunk", "012319190")

TABLE: list[Row] = [
    (
        "the message ends: it is repeated, with its words said afresh",
        Announcing(1),
        {"answered": True, "playing": "closed-1"},
        PromptDone("closed-1", AT),
        Announcing(2),
        (Play((*sounds("repeat"), *MESSAGE), "closed-2"),),
    ),
    (
        "the repeat ends: goodbye",
        Announcing(2),
        {"answered": True, "playing": "closed-2"},
        PromptDone("closed-2", AT),
        Announcing(3),
        (Play(sounds("goodbye"), "closed-3"),),
    ),
    (
        "goodbye ends: hung up",
        Announcing(3),
        {"answered": True, "playing": "closed-3"},
        PromptDone("closed-3", AT),
        Done(),
        (HangUp(),),
    ),
    (
        "an on-call digit stops the message and rings the service on the trunk",
        Announcing(1),
        {"answered": True, "playing": "closed-1"},
        Digit("1"),
        Ringing(Purpose.ON_CALL, frozenset({ON_CALL_LEG})),
        (StopPrompt(), Ring((SOCIAL,), Purpose.ON_CALL, 72), Play((RINGBACK,), "ringback")),
    ),
    (
        "the digit works during goodbye too",
        Announcing(3),
        {"answered": True, "playing": "closed-3"},
        Digit("1"),
        Ringing(Purpose.ON_CALL, frozenset({ON_CALL_LEG})),
        (StopPrompt(), Ring((SOCIAL,), Purpose.ON_CALL, 72), Play((RINGBACK,), "ringback")),
    ),
    (
        "a digit with no service changes nothing",
        Announcing(1),
        {"answered": True, "playing": "closed-1"},
        Digit("7"),
        Announcing(1),
        (),
    ),
    (
        "the service answers: connected, the ring tone stops",
        Ringing(Purpose.ON_CALL, frozenset({ON_CALL_LEG})),
        {"answered": True, "playing": "ringback", "bridged": True, "legs": 1},
        LegAnswered(ON_CALL_LEG, "012319190", AT),
        Connected(ON_CALL_LEG, "012319190"),
        (CancelTimer(Timer.OVERFLOW), StopPrompt()),
    ),
    (
        "the service does not answer: the dialplan fallback, never silence",
        Ringing(Purpose.ON_CALL, frozenset({ON_CALL_LEG})),
        {"answered": True, "playing": "ringback", "bridged": True, "legs": 1},
        LegGone(ON_CALL_LEG, AT),
        HandedOver(),
        (StopPrompt(), ToDialplan("vvk-fallback-inbound", "s", None)),
    ),
]


@rows(TABLE)
def test_answering_machine(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    assert step(call(state, route=AM, **fields), event, CLOSED)[:2] == (after, commands)


def test_closed_calls_are_answered_and_hear_the_message() -> None:
    result = arrive("c", Arrived(CallKind.INBOUND, "0701234567", "012319100", CLOSED), ctx(CLOSED))
    assert result.call.state == Announcing(1)
    assert result.commands == (Answer(), Play(MESSAGE, "closed-1"))
    assert result.call.record.trace[-1].startswith("[H5] central answering machine")


def test_the_on_call_service_answering_is_the_outcome_without_a_ring_count() -> None:
    ringing = call(
        Ringing(Purpose.ON_CALL, frozenset({ON_CALL_LEG})), route=AM, answered=True, legs=1
    )
    _, _, after = step(ringing, LegAnswered(ON_CALL_LEG, "012319190", AT), CLOSED)
    record = after.record
    assert (record.outcome, record.answered_by, record.rings) == (
        Outcome.ON_CALL_TRANSFER,
        "012319190",
        None,
    )


def test_hanging_up_on_the_message_is_its_normal_end() -> None:
    state, commands, after = step(call(Announcing(2), route=AM), CallerGone(AT), CLOSED)
    assert (state, commands) == (Done(), (Forget(AT),))
    assert after.record.outcome is Outcome.CLOSED
