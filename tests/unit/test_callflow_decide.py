"""What every state handles alike: the caller leaving, a prompt ending, a leg's first ring,
the arrival of an unknown number, and where the fallback takes a call."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.flowtable import AT, OPEN, call, ctx, step
from vvk_pbx.domain.callflow.commands import Forget, ToDialplan
from vvk_pbx.domain.callflow.decide import arrive
from vvk_pbx.domain.callflow.events import (
    Arrived,
    CallerGone,
    LegRinging,
    PromptDone,
    PromptFailed,
)
from vvk_pbx.domain.callflow.flows.common import fallback_target
from vvk_pbx.domain.callflow.states import (
    Announcing,
    Connected,
    Done,
    Farewell,
    HandedOver,
    Menu,
    PinEntry,
    Purpose,
    Queued,
    Ringing,
    State,
    VoicemailPrompt,
)
from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.routing import Action, CallKind

GONE = CallerGone(AT)


@pytest.mark.parametrize(
    ("state", "route", "outcome"),
    [
        (Queued(), Action.OPERATOR_QUEUE, Outcome.ABANDONED),
        (Ringing(Purpose.OPERATOR, frozenset({"c:op1"})), Action.OPERATOR_QUEUE, Outcome.ABANDONED),
        (Connected("c:op1", "1001"), Action.OPERATOR_QUEUE, Outcome.ANSWERED),
        (Announcing(2), Action.ANSWERING_MACHINE, Outcome.CLOSED),
        (
            Ringing(Purpose.ON_CALL, frozenset({"c:oncall1"})),
            Action.ANSWERING_MACHINE,
            Outcome.CLOSED,
        ),
        (Menu("1101"), Action.EXTENSION, Outcome.REFERRED),
        (VoicemailPrompt("1101"), Action.EXTENSION, Outcome.REFERRED),
        (
            Farewell(Outcome.REFERRED, "R5: no choice made; goodbye"),
            Action.EXTENSION,
            Outcome.REFERRED,
        ),
        (PinEntry(), Action.FEATURE_CODE, Outcome.FEATURE_CODE),
    ],
)
def test_a_caller_who_leaves_ends_as_what_the_call_was_doing(
    state: State, route: Action, outcome: Outcome
) -> None:
    before = call(state, route=route)
    if isinstance(state, Connected):
        answered = before.record.answered(OPEN + timedelta(seconds=3), "1001", 6000, 4)
        before = replace(before, record=answered)
    new_state, commands, after = step(before, GONE)
    assert (new_state, commands) == (Done(), (Forget(AT),))
    assert (after.record.outcome, after.record.ended_at) == (outcome, AT)
    assert after.record.trace[-1] == "[end] the caller hung up"


def test_a_call_handed_to_the_dialplan_keeps_its_outcome_when_it_leaves() -> None:
    handed = call(HandedOver())
    handed = replace(handed, record=replace(handed.record, outcome=Outcome.NO_ANSWER))
    _, _, after = step(handed, GONE)
    assert after.record.outcome is Outcome.NO_ANSWER
    assert after.record.trace[-1] == "[end] handed to the dialplan"


def test_a_prompt_that_was_stopped_changes_nothing() -> None:
    menu = call(Menu("1101"), route=Action.EXTENSION, answered=True, playing="menu")
    assert step(menu, PromptDone("welcome", AT))[:2] == (Menu("1101"), ())
    assert step(menu, PromptFailed("menu"))[2].playing is None


def test_the_call_rings_from_its_first_legs_first_ring() -> None:
    ringing = call(Ringing(Purpose.OPERATOR, frozenset({"c:op1", "c:op2"})), legs=2)
    _, _, after = step(ringing, LegRinging("c:op2", AT))
    assert after.record.ring_started_at == AT
    _, _, again = step(after, LegRinging("c:op1", AT + timedelta(seconds=1)))
    assert again.record.ring_started_at == AT


def test_an_unknown_internal_number_is_told_so_by_the_dialplan() -> None:
    result = arrive("c", Arrived(CallKind.INTERNAL, "1101", "4711", OPEN), ctx())
    assert result.call.state == HandedOver()
    assert result.commands == (ToDialplan("vvk-fallback-internal", "4711"),)
    assert result.call.record.outcome is Outcome.UNKNOWN_NUMBER


@pytest.mark.parametrize(
    ("kind", "route", "state", "target"),
    [
        (CallKind.FEATURE, Action.FEATURE_CODE, PinEntry(), ("vvk-fallback-feature", "s")),
        (CallKind.INTERNAL, Action.EXTENSION, Menu("1101"), ("vvk-fallback-internal", "1101")),
        # 0 in the menu took it to the switchboard: the switchboard's fallback, not 1101
        (CallKind.INTERNAL, Action.EXTENSION, Queued(), ("vvk-fallback-inbound", "s")),
        (CallKind.INBOUND, Action.EXTENSION, Menu("1101"), ("vvk-fallback-inbound", "s")),
        (CallKind.INTERNAL, Action.OPERATOR_QUEUE, Queued(), ("vvk-fallback-inbound", "s")),
    ],
)
def test_the_fallback_takes_a_call_where_it_belongs(
    kind: CallKind, route: Action, state: State, target: tuple[str, str]
) -> None:
    dialed = "1101" if route is Action.EXTENSION else "*98#"
    assert fallback_target(call(state, kind=kind, route=route, dialed=dialed)) == target
