"""Where a call goes, and why: the pure routing decision with its trace (O1), and ring maths (A1).

``route(call, at, ...)`` answers "what happens to this call at this instant?"
for the controller and for ``vvk-pbx simulate`` alike. Every step of the
decision is kept in the trace with the rule behind it, so each logged call
says why it was routed as it was.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vvk_pbx.domain.calendar import Calendar


class CallKind(StrEnum):
    """The kind the dialplan gives a call as its first Stasis argument."""

    INBOUND = "inbound"
    INTERNAL = "internal"
    FEATURE = "feature"


class Action(StrEnum):
    """What the controller does with the call."""

    OPERATOR_QUEUE = "operator_queue"
    ANSWERING_MACHINE = "answering_machine"
    EXTENSION = "extension"
    FEATURE_CODE = "feature_code"
    UNKNOWN_NUMBER = "unknown_number"


@dataclass(frozen=True)
class Step:
    """One decision and the rule behind it (a requirement id or a config key)."""

    rule: str
    decision: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.decision}"


@dataclass(frozen=True)
class Route:
    """The decision for one call: the action, its target (an extension), and the trace."""

    action: Action
    target: str | None
    trace: tuple[Step, ...]
    external: bool


@dataclass(frozen=True)
class Numbering:
    """How dialed numbers map to the switchboard and to extensions.

    ``switchboard``: the digits of the switchboard's public number.
    ``direct_prefix``: a public number is ``direct_prefix + extension`` (A5).
    ``extensions``: every extension with its holder's name.
    ``operator_codes``: what staff dial internally to reach the switchboard.
    """

    switchboard: str
    direct_prefix: str
    extensions: dict[str, str]
    operator_codes: tuple[str, ...] = ("0", "9")


def digits(number: str) -> str:
    """The digits of a dialed number: ``"0123-191 00"`` -> ``"012319100"``; ``+46`` -> ``0``."""
    clean = re.sub(r"[^0-9+]", "", number)
    if clean.startswith("+46"):
        clean = "0" + clean[3:]
    return clean.lstrip("+")


def route(
    kind: CallKind,
    caller: str,
    dialed: str,
    at: datetime,
    calendar: Calendar,
    numbering: Numbering,
) -> Route:
    """Route one call arriving at the aware instant ``at``.

    Inbound (from the trunk): a direct number of a known extension rings it
    (A5); anything else is for the switchboard, which is open or closed by the
    calendar at ``at`` (H1–H4): open goes to the operator queue (A3), closed
    to the central answering machine (H5). Internal: an extension rings; an
    operator code goes to the queue, as a lower-priority internal call (A4).
    Feature codes go to the referral service (R2).
    """
    steps: list[Step] = []
    number = digits(dialed)
    if kind is CallKind.FEATURE:
        steps.append(Step("R2", f"feature code {dialed} from {caller}"))
        return Route(Action.FEATURE_CODE, caller, tuple(steps), external=False)
    if kind is CallKind.INTERNAL:
        steps.append(Step("dialplan", f"internal call from {caller} to {dialed}"))
        if number in numbering.extensions:
            steps.append(Step("D1", f"{number} is {numbering.extensions[number]}: to the person"))
            return Route(Action.EXTENSION, number, tuple(steps), external=False)
        if number in numbering.operator_codes or number == numbering.switchboard:
            return _switchboard(steps, at, calendar, external=False)
        steps.append(Step("D1", f"{dialed} is no extension"))
        return Route(Action.UNKNOWN_NUMBER, None, tuple(steps), external=False)
    steps.append(Step("dialplan", f"external call from {caller} to {dialed}"))
    if number != numbering.switchboard and number.startswith(numbering.direct_prefix):
        extension = number[len(numbering.direct_prefix) :]
        if extension in numbering.extensions:
            who = numbering.extensions[extension]
            steps.append(Step("A5", f"direct number of {extension} ({who}): to the person"))
            return Route(Action.EXTENSION, extension, tuple(steps), external=True)
    if number != numbering.switchboard:
        steps.append(Step("A5", f"{dialed} is no direct number: the switchboard takes it"))
    return _switchboard(steps, at, calendar, external=True)


def _switchboard(steps: list[Step], at: datetime, calendar: Calendar, external: bool) -> Route:
    status = calendar.status(at)
    if status.is_open:
        steps.append(Step("H1-H4", status.reason))
        who = "external" if external else "internal"
        steps.append(
            Step("A3/A4", f"operator queue as an {who} call; a free operator rings at once")
        )
        return Route(Action.OPERATOR_QUEUE, None, tuple(steps), external=external)
    steps.append(Step("H1-H4", status.reason))
    nxt = "never within two years" if status.next_change is None else status.next_change.isoformat()
    steps.append(Step("H5", f"central answering machine; opens again {nxt}"))
    return Route(Action.ANSWERING_MACHINE, None, tuple(steps), external=external)


# ----- A1: rings and the goal ------------------------------------------------------------


def rings(seconds: float, cycle_ms: int) -> int:
    """The ring during which a call was answered: ``floor(seconds / cycle) + 1`` (A1).

    With the Swedish 6 s cycle, an answer after 7 s is ring 2 and after 26 s ring 5.
    """
    if seconds < 0:
        raise ValueError(f"seconds must be 0 or more, not {seconds}")
    return math.floor(seconds * 1000 / cycle_ms) + 1


def within_goal(seconds: float, cycle_ms: int, goal_rings: int) -> bool:
    """Answered by a person less than ``goal_rings`` cycles after arrival (A1, A2)."""
    return seconds * 1000 < goal_rings * cycle_ms


def ring_timeout_s(cycle_ms: int, goal_rings: int) -> int:
    """How long a phone rings before the call gives up on it, in seconds.

    Three times the goal, and at least a minute: a late answer beats none (A1).
    """
    return max(60, 3 * goal_rings * cycle_ms // 1000)


def spoken_digits(number: str) -> str:
    """A number as separate digits for a prompt: ``"0123-191 90"`` -> ``"0 1 2 3 1 9 1 9 0"`` (H5)."""
    return " ".join(digits(number))
