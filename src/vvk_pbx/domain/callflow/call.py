"""One call as the flows see it, what they may know of the site, and what a decision returns.

``Call`` is a frozen snapshot: a flow returns a new one (``Step``), never
changes one. Besides its ``state`` it holds the facts about the caller's
channel that every flow shares (answered, the prompt it hears, in the bridge
or not) and the call-log record, which the controller saves when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo

from vvk_pbx.domain.calendar import Calendar
from vvk_pbx.domain.callflow.commands import Command
from vvk_pbx.domain.callflow.states import State
from vvk_pbx.domain.calls import CallRecord
from vvk_pbx.domain.routing import Action, CallKind, Numbering

# The dialplan's fallback contexts (dialplan/extensions.conf.j2).
FALLBACK_INBOUND = "vvk-fallback-inbound"
FALLBACK_INTERNAL = "vvk-fallback-internal"
FALLBACK_FEATURE = "vvk-fallback-feature"


@dataclass(frozen=True)
class OnCallNumber:
    """An on-call service of the answering machine (H5): its name and dialable digits."""

    name: str
    number: str  # as written in the config
    digits: str  # as dialled on the trunk


@dataclass(frozen=True)
class Policy:
    """What the flows need of the ops config, built once (``Settings.call_policy``).

    Times in seconds. ``staff``: the extensions with a referral menu (R5);
    ``overflow``: the overflow group as extensions (A6); ``operators``: the
    switchboard's extensions; ``recall_s``: a parked caller's recall.
    """

    calendar: Calendar
    numbering: Numbering
    on_call: Mapping[str, OnCallNumber]
    staff: frozenset[str]
    cycle_ms: int
    goal_rings: int
    ring_timeout_s: int
    person_timeout_s: int
    strategy: str
    offer_s: int
    overflow_after_s: int
    overflow: tuple[str, ...]
    voicemail_max_s: int
    voicemail_silence_s: int
    pin_wait_s: int = 10
    recall_s: int = 60
    operators: tuple[str, ...] = ()

    @property
    def tz(self) -> tzinfo:
        return self.calendar.tz


@dataclass(frozen=True)
class Context:
    """Everything a decision may read besides the call and the event: the controller's
    clock (``now``, aware; shifted by ``--clock``) and the policy."""

    now: datetime
    policy: Policy


@dataclass(frozen=True)
class Call:
    """One call, keyed by the caller's channel id.

    ``kind`` and ``route`` are what the dialplan said and the route decided at
    arrival; ``arrived`` is the arrival on the controller's clock (the queue's
    order, A4), ``record.arrived_at`` the same on Asterisk's (the call log, A1).
    ``answered``: the caller's channel is answered, by us or a person.
    ``playing``: the token of the prompt the caller hears (None: nothing of
    ours). ``bridged``: the caller is in the call's bridge. ``legs``: how many
    legs were made, which numbers the next one.
    """

    id: str
    record: CallRecord
    state: State
    kind: CallKind
    route: Action
    arrived: datetime
    answered: bool = False
    playing: str | None = None
    bridged: bool = False
    legs: int = 0


@dataclass(frozen=True)
class Step:
    """What one decision returns: the call as it becomes, and the commands, in order."""

    call: Call
    commands: tuple[Command, ...] = field(default=())

    def do(self, *commands: Command) -> Step:
        return Step(self.call, (*self.commands, *commands))

    def set(self, **changes: object) -> Step:
        """The call with these fields replaced (``state=...``)."""
        return Step(replace(self.call, **changes), self.commands)  # type: ignore[arg-type]

    def note(self, line: str) -> Step:
        """One more line in the record's trace (O1: why the call went as it did)."""
        return Step(replace(self.call, record=self.call.record.note(line)), self.commands)

    def record(self, record: CallRecord) -> Step:
        return Step(replace(self.call, record=record), self.commands)

    def then(self, next_step: Callable[[Call], Step]) -> Step:
        """Chain a decision that takes the call as it is now; its commands follow these."""
        step = next_step(self.call)
        return Step(step.call, (*self.commands, *step.commands))
