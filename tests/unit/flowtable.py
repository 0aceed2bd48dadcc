"""Helpers for the flows' tables: a call in a given state, the context, one decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.conftest import SAMPLE_CONFIG, STHLM
from vvk_pbx.config import load
from vvk_pbx.domain.announcements import sound
from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.callflow.call import Call, Context, Policy
from vvk_pbx.domain.callflow.commands import Command
from vvk_pbx.domain.callflow.decide import decide
from vvk_pbx.domain.callflow.events import CallEvent
from vvk_pbx.domain.callflow.states import State
from vvk_pbx.domain.calls import CallRecord
from vvk_pbx.domain.routing import Action, CallKind, Route, Step

OPEN = datetime(2026, 11, 30, 10, 0, tzinfo=STHLM)  # a Monday morning
CLOSED = datetime(2026, 12, 25, 10, 0, tzinfo=STHLM)  # Christmas Day
AT = OPEN + timedelta(seconds=5)  # an Asterisk timestamp during the call

_settings = load(SAMPLE_CONFIG)
POLICY: Policy = _settings.call_policy(Calendar(_settings.hours_policy()))


def ctx(now: datetime = OPEN) -> Context:
    return Context(now, POLICY)


def call(
    state: State,
    *,
    kind: CallKind = CallKind.INBOUND,
    route: Action = Action.OPERATOR_QUEUE,
    dialed: str = "012319100",
    caller: str = "0701234567",
    **fields: object,
) -> Call:
    """Call ``c`` from the trunk (or as ``kind`` says) in ``state``; ``fields`` replace the
    snapshot's (answered, playing, bridged, legs, record)."""
    external = kind is CallKind.INBOUND
    decision = Route(route, None, (Step("test", "a call of the table"),), external)
    record = CallRecord.arrive("c", caller, dialed, OPEN, decision)
    base = Call("c", record, state, kind, route, OPEN)
    return replace(base, **fields)  # type: ignore[arg-type]


def step(
    before: Call, event: CallEvent, now: datetime = OPEN
) -> tuple[State, tuple[Command, ...], Call]:
    """One decision: the new state, the commands, and the whole new call."""
    result = decide(before, event, ctx(now))
    return result.call.state, result.commands, result.call


def sounds(*names: str) -> tuple[str, ...]:
    return tuple(sound(name) for name in names)


# A table's row: what it shows, the state and the call's fields before, the event,
# the state after and the commands, in order.
Row = tuple[str, State, dict[str, object], CallEvent, State, tuple[Command, ...]]


def rows(table: list[Row]) -> pytest.MarkDecorator:
    """Parametrize a test over a flow's table, each row named by what it shows."""
    return pytest.mark.parametrize(
        ("what", "state", "fields", "event", "after", "commands"),
        table,
        ids=[row[0] for row in table],
    )
