"""Staff dial codes' table (R2, R4): (state, event) -> (state, commands)."""

from __future__ import annotations

from tests.unit.flowtable import AT, OPEN, Row, call, ctx, rows, sounds, step
from vvk_pbx.domain.callflow.commands import Answer, CarryOutCode, Command, HangUp, Play
from vvk_pbx.domain.callflow.decide import arrive
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallEvent,
    CodeDone,
    Digit,
    PromptDone,
    ServiceFailed,
)
from vvk_pbx.domain.callflow.states import Done, Farewell, PinEntry, ReadingCode, State
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.routing import Action, CallKind

CODE = "*23*2*1430#"
READ_BACK = ("code-referred", "name-1101", "reason-2", "and-back", "today", "at-clock", "num-14")
READ = Farewell(Outcome.FEATURE_CODE, "the code was read back")

TABLE: list[Row] = [
    (
        "carried out: read back, then goodbye",
        ReadingCode(CODE),
        {"answered": True},
        CodeDone(READ_BACK, "[R2] referral set: mote until ...", False),
        READ,
        (Play(sounds(*READ_BACK), "farewell"),),
    ),
    (
        "refused: the spoken error, nothing stored",
        ReadingCode("*23*99*2561#"),
        {"answered": True},
        CodeDone(("code-error-impossible-time",), "[R2] code refused", False),
        READ,
        (Play(sounds("code-error-impossible-time"), "farewell"),),
    ),
    (
        "*98#: the PIN prompt, and the mailbox takes over",
        ReadingCode("*98#"),
        {"answered": True},
        CodeDone(("voicemail-pin",), "[V1] voicemail: asked for the PIN", True),
        PinEntry(),
        (Play(sounds("voicemail-pin"), "pin"),),
    ),
    (
        "the referral store fails: said so, never the operators' fallback",
        ReadingCode(CODE),
        {"answered": True},
        ServiceFailed("database is locked"),
        Farewell(Outcome.FEATURE_CODE, "R2: the store failed"),
        (Play(sounds("fallback-feature-unavailable"), "farewell"),),
    ),
    (
        "keys while the code is carried out change nothing",
        ReadingCode(CODE),
        {"answered": True},
        Digit("1"),
        ReadingCode(CODE),
        (),
    ),
    (
        "the read-back ends: hung up",
        READ,
        {"answered": True, "playing": "farewell"},
        PromptDone("farewell", AT),
        Done(),
        (HangUp(),),
    ),
]


@rows(TABLE)
def test_dial_code(
    what: str,
    state: State,
    fields: dict[str, object],
    event: CallEvent,
    after: State,
    commands: tuple[Command, ...],
) -> None:
    staff = call(
        state,
        kind=CallKind.FEATURE,
        route=Action.FEATURE_CODE,
        caller="1101",
        dialed=CODE,
        **fields,
    )
    assert step(staff, event)[:2] == (after, commands)


def test_a_code_is_answered_then_carried_out() -> None:
    result = arrive("c", Arrived(CallKind.FEATURE, "1101", CODE, OPEN), ctx())
    assert (result.call.state, result.commands) == (
        ReadingCode(CODE),
        (Answer(), CarryOutCode("1101", CODE)),
    )


def test_the_read_back_ends_as_a_feature_code_call() -> None:
    staff = call(READ, kind=CallKind.FEATURE, route=Action.FEATURE_CODE, playing="farewell")
    _, _, after = step(staff, PromptDone("farewell", AT))
    assert (after.record.outcome, after.record.ended_at) == (Outcome.FEATURE_CODE, AT)
