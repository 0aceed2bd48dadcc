"""The monthly follow-up (F1, A1, V2): "did we keep the policy?", as numbers. Pure: records
and messages in, figures out; ``services/report.py`` renders them.

Definitions, each recomputable from the export (``calls export``):

- **counted**: calls the four-ring goal applies to: rings were counted (the
  switchboard, a person's own phone: ``within_goal`` is set) or the caller
  hung up waiting (``abandoned``). **within**: those answered within the goal.
- **utan besked**: callers who got neither an answer nor a referral nor a
  message: outcomes ``abandoned`` and ``no_answer``.
- **not reached later**: external callers who hung up waiting and made no
  answered call later in the month (by their number).
- **callbacks** (V2): messages left in the month; called back by their
  deadline, late, or still open past it at ``now`` (overdue).
- **average answer time / talk time**: over the answered calls, from arrival
  to the answer and from the answer to the end, in seconds between aware
  instants, so a call across a DST change counts its real length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from vvk_pbx.domain.calls import CallRecord, Outcome, seconds_between
from vvk_pbx.domain.voicemail import Message, Status

NO_BESKED = (Outcome.ABANDONED, Outcome.NO_ANSWER)
RING_BINS = 8  # the distribution's bars: 1, 2, … 7 rings, and 8 or more


@dataclass
class Share:
    """Calls the goal applies to and those within it."""

    counted: int = 0
    within: int = 0

    @property
    def ratio(self) -> float | None:
        return self.within / self.counted if self.counted else None

    def add(self, record: CallRecord) -> None:
        if record.within_goal is not None:
            self.counted += 1
            self.within += record.within_goal
        elif record.outcome is Outcome.ABANDONED:
            self.counted += 1


@dataclass
class Callbacks:
    """Messages of the month (V2)."""

    left: int = 0
    in_time: int = 0
    late: int = 0
    overdue: int = 0

    @property
    def ratio(self) -> float | None:
        return self.in_time / self.left if self.left else None


@dataclass
class MonthReport:
    """The figures of one month (local dates in the site's zone)."""

    month: str  # "2026-11"
    goal_rings: int
    calls: int = 0
    total: Share = field(default_factory=Share)
    by_day: dict[date, Share] = field(default_factory=dict)
    by_hour: dict[int, Share] = field(default_factory=dict)
    by_operator: dict[str, Share] = field(default_factory=dict)
    by_unit: dict[str, Share] = field(default_factory=dict)
    rings: dict[int, int] = field(default_factory=dict)  # rings (RING_BINS = that or more) -> calls
    outcomes: dict[str, int] = field(default_factory=dict)
    abandoned: int = 0
    not_reached: list[CallRecord] = field(default_factory=list)
    no_besked: int = 0
    fallback: int = 0
    callbacks: Callbacks = field(default_factory=Callbacks)
    answer_s: list[float] = field(default_factory=list, repr=False)
    talk_s: list[float] = field(default_factory=list, repr=False)
    overdue_by_person: dict[str, int] = field(default_factory=dict)
    overdue_by_unit: dict[str, int] = field(default_factory=dict)


def month_report(
    month: str,
    records: Iterable[CallRecord],
    messages: Iterable[Message],
    tz: tzinfo,
    now: datetime,
    goal_rings: int,
    operators: Iterable[str],
    unit_of_number: Mapping[str, str],
    unit_of_extension: Mapping[str, str],
) -> MonthReport:
    """The month's report. ``records`` are the calls that arrived in the month, oldest
    first; ``messages`` those left in it. ``unit_of_number`` maps a dialled number or an
    extension to its unit, ``unit_of_extension`` an extension (who answered, whose
    message) to its unit."""
    report = MonthReport(month, goal_rings)
    switchboard = set(operators)
    waiting_gave_up: dict[str, CallRecord] = {}
    outcomes: Counter[str] = Counter()
    rings: Counter[int] = Counter()
    for record in records:
        report.calls += 1
        outcomes[record.outcome.value] += 1
        local = record.arrived_at.astimezone(tz)
        report.total.add(record)
        report.by_day.setdefault(local.date(), Share()).add(record)
        report.by_hour.setdefault(local.hour, Share()).add(record)
        if record.answered_by in switchboard:
            report.by_operator.setdefault(record.answered_by, Share()).add(record)
        unit = unit_of_number.get(record.called) or unit_of_extension.get(record.answered_by or "")
        if unit is not None:
            report.by_unit.setdefault(unit, Share()).add(record)
        if record.rings is not None and record.within_goal is not None:
            rings[min(record.rings, RING_BINS)] += 1
        if record.answered_at is not None:
            report.answer_s.append(seconds_between(record.arrived_at, record.answered_at))
            if record.ended_at is not None:
                report.talk_s.append(seconds_between(record.answered_at, record.ended_at))
        if record.outcome is Outcome.ABANDONED:
            report.abandoned += 1
            if record.direction == "external":
                waiting_gave_up[record.caller] = record
        elif record.answered_at is not None:
            waiting_gave_up.pop(record.caller, None)  # reached later in the month
        if record.outcome in NO_BESKED:
            report.no_besked += 1
        if record.outcome is Outcome.FALLBACK:
            report.fallback += 1
    report.not_reached = sorted(waiting_gave_up.values(), key=lambda r: r.arrived_at)
    report.outcomes = dict(sorted(outcomes.items()))
    report.rings = {n: rings.get(n, 0) for n in range(1, RING_BINS + 1)}
    _callbacks(report, messages, now, unit_of_extension)
    return report


def average(seconds: list[float]) -> float | None:
    """The mean of durations in seconds, None for none."""
    return sum(seconds) / len(seconds) if seconds else None


def mmss(seconds: float | None) -> str:
    """``m:ss`` (``75.4`` -> ``1:15``), ``–`` for none; rounded to the second."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _callbacks(
    report: MonthReport, messages: Iterable[Message], now: datetime, units: Mapping[str, str]
) -> None:
    by_person: Counter[str] = Counter()
    by_unit: Counter[str] = Counter()
    for message in messages:
        report.callbacks.left += 1
        if message.status is Status.CALLED_BACK and message.called_back_at is not None:
            if message.late:
                report.callbacks.late += 1
            else:
                report.callbacks.in_time += 1
        elif message.overdue(now):
            report.callbacks.overdue += 1
            by_person[message.extension] += 1
            by_unit[units.get(message.extension, "–")] += 1
    report.overdue_by_person = dict(by_person.most_common())
    report.overdue_by_unit = dict(by_unit.most_common())
