"""Opening hours of the switchboard: weekly hours, Swedish holidays, half days, overrides.

Rules (see ``docs/opening-hours.md`` for every judgement call):

- H1: the weekly hours, minus the daily lunch closure.
- H2: red days (Swedish public holidays) are closed. Holiday eves (helgaftnar)
  and every day before a red day have the half-day hours (08:00–12:00).
- H3: ops overrides: closed dates, special hours for a date or a range, and a
  manual open/closed switch that ends by itself.
- H4: every rule is in the site's local time (Europe/Stockholm); instants are
  timezone-aware and daylight saving days have 23 or 25 hours.

Every function takes the date or instant it answers for: nothing here reads a
clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS_SV = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")


class UnsupportedYearError(ValueError):
    """A date outside the years the Swedish holiday data covers (``SUPPORTED_YEARS``)."""

    def __init__(self, what: str) -> None:
        first, last = SUPPORTED_YEARS.start, SUPPORTED_YEARS.stop - 1
        super().__init__(f"{what}: the Swedish holiday calendar covers {first}–{last}")


# How far next_change looks ahead. A policy that never changes state within two
# years (for example every weekday closed) reports no next change at all.
_HORIZON_DAYS = 2 * 366


@dataclass(frozen=True, order=True)
class TimeRange:
    """A half-open range of local wall-clock time ``[start, end)`` within one day."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError(
                f"{self.start:%H:%M}–{self.end:%H:%M}: the start must be before the end"
            )

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class ClosedDay:
    """H3: an ops override that closes the switchboard for a whole local date."""

    day: date
    reason: str


@dataclass(frozen=True)
class DateHours:
    """H3: exact ops hours for one local date. They win over every holiday rule.

    ``ranges`` are taken literally (lunch is not subtracted); empty closes the day.
    """

    day: date
    ranges: tuple[TimeRange, ...]
    reason: str


@dataclass(frozen=True)
class PeriodHours:
    """H3: ops hours that replace the weekly hours on ``weekdays`` from ``first`` to ``last``.

    For summer hours, say. ``weekdays`` are 0 (Monday) to 6. Red days stay
    closed and the half-day rule still applies inside a period. ``ranges`` are
    taken literally (lunch is not subtracted); empty closes those days.
    """

    first: date
    last: date
    weekdays: frozenset[int]
    ranges: tuple[TimeRange, ...]
    reason: str

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last and day.weekday() in self.weekdays


@dataclass(frozen=True)
class ManualSwitch:
    """H3: the switchboard forced open or closed from ``start`` until ``end`` (aware, UTC-comparable).

    ``start`` None means "already in force". The switch ends by itself at ``end``.
    """

    is_open: bool
    end: datetime
    reason: str
    start: datetime | None = None

    def active(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and at < self.end


@dataclass(frozen=True)
class HoursPolicy:
    """Everything the calendar needs, already validated (see ``vvk_pbx.config``).

    ``weekly`` has seven entries, Monday first, each the open ranges before lunch
    is subtracted. ``lunch`` is subtracted from the weekly and the half-day hours.
    """

    timezone: ZoneInfo
    weekly: tuple[tuple[TimeRange, ...], ...]
    lunch: TimeRange | None
    half_day: tuple[TimeRange, ...]
    closed_days: tuple[ClosedDay, ...] = ()
    date_hours: tuple[DateHours, ...] = ()
    periods: tuple[PeriodHours, ...] = ()
    switches: tuple[ManualSwitch, ...] = ()

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError("weekly hours need seven days, Monday first")


class DayKind(StrEnum):
    """Why a day has the hours it has, in order of precedence."""

    CLOSED_OVERRIDE = "closed_override"
    DATE_OVERRIDE = "date_override"
    RED_DAY = "red_day"
    HALF_DAY = "half_day"
    PERIOD = "period"
    NORMAL = "normal"


@dataclass(frozen=True)
class DaySchedule:
    """One local date's open ranges, and the rule that gave them (Swedish text)."""

    day: date
    ranges: tuple[TimeRange, ...]
    kind: DayKind
    reason: str

    @property
    def is_open_day(self) -> bool:
        return bool(self.ranges)

    def describe(self) -> str:
        """``"Dag före Kristi himmelsfärdsdag: 08:00–12:00"`` or ``"Juldagen: stängt"``."""
        return f"{self.reason}: {format_ranges(self.ranges)}"


@dataclass(frozen=True)
class Status:
    """Open or closed at ``at``, why, and the instant it next flips (None: not within two years)."""

    at: datetime
    is_open: bool
    reason: str
    next_change: datetime | None


def format_ranges(ranges: Iterable[TimeRange]) -> str:
    """``"08:00–12:00, 13:00–16:00"``, or ``"stängt"`` when there are none."""
    text = ", ".join(str(r) for r in ranges)
    return text or "stängt"


def intersect(ranges: Iterable[TimeRange], limits: Iterable[TimeRange]) -> tuple[TimeRange, ...]:
    """The parts of ``ranges`` that lie inside ``limits`` (the half-day rule only shortens, H2)."""
    out: list[TimeRange] = []
    bounds = tuple(limits)
    for r in ranges:
        for limit in bounds:
            start, end = max(r.start, limit.start), min(r.end, limit.end)
            if start < end:
                out.append(TimeRange(start, end))
    return tuple(sorted(out))


def subtract(ranges: Iterable[TimeRange], cut: TimeRange | None) -> tuple[TimeRange, ...]:
    """``ranges`` with the part inside ``cut`` removed (the lunch closure, H1)."""
    if cut is None:
        return tuple(ranges)
    out: list[TimeRange] = []
    for r in ranges:
        if r.end <= cut.start or r.start >= cut.end:
            out.append(r)
            continue
        if r.start < cut.start:
            out.append(TimeRange(r.start, cut.start))
        if r.end > cut.end:
            out.append(TimeRange(cut.end, r.end))
    return tuple(out)


_SUFFIX = " (från kl. 14.00)"  # the bank-practice note the holidays package adds to some eves


_SE = holidays.country_holidays("SE")
SUPPORTED_YEARS = range(_SE.start_year, _SE.end_year + 1)


@dataclass
class _SwedishDays:
    """Red days and holiday eves from the ``holidays`` package's SE calendar, in Swedish."""

    red: holidays.HolidayBase = field(
        default_factory=lambda: holidays.country_holidays(
            "SE", categories=("public",), include_sundays=False, language="sv"
        )
    )
    # de_facto holds Midsommarafton, Julafton and Nyårsafton; optional holds the
    # other eves (Trettondagsafton, Påskafton, Valborgsmässoafton, Pingstafton,
    # Allahelgonsafton) next to non-eves such as Klämdag, which are filtered out.
    other: holidays.HolidayBase = field(
        default_factory=lambda: holidays.country_holidays(
            "SE", categories=("de_facto", "optional"), include_sundays=False, language="sv"
        )
    )

    def red_day(self, day: date) -> str | None:
        if day.year not in SUPPORTED_YEARS:
            raise UnsupportedYearError(day.isoformat())
        name = self.red.get(day)
        return None if name is None else str(name)

    def eve(self, day: date) -> str | None:
        names = self.other.get_list(day)
        for name in names:
            clean = str(name).removesuffix(_SUFFIX)
            if clean.endswith("afton"):
                return clean
        return None


class Calendar:
    """The switchboard's opening hours (H1–H4) and working days (V2).

    All instants given to and returned by this class are timezone-aware; a naive
    datetime raises ``ValueError``. Dates are local dates in ``policy.timezone``.
    A date outside ``SUPPORTED_YEARS`` (the years the holiday data covers,
    1953–2100) raises ``UnsupportedYearError``, a ``ValueError``.
    """

    def __init__(self, policy: HoursPolicy) -> None:
        self.policy = policy
        self.tz = policy.timezone
        self._days = _SwedishDays()
        self._cache: dict[date, DaySchedule] = {}

    # ----- days -----------------------------------------------------------------

    def weekday_ranges(self, weekday: int) -> tuple[TimeRange, ...]:
        """The weekly hours of ``weekday`` (0 = Monday), lunch subtracted (H1)."""
        return subtract(self.policy.weekly[weekday], self.policy.lunch)

    def normal_ranges(self, day: date) -> tuple[TimeRange, ...]:
        """The weekly hours of ``day``'s weekday, lunch subtracted (H1)."""
        return self.weekday_ranges(day.weekday())

    def schedule(self, day: date) -> DaySchedule:
        """The open ranges of a local date and the rule behind them.

        Precedence, first match wins: an ops closed date; ops hours for that
        exact date; a red day (closed); the half-day rule, on a day that would
        otherwise open; an ops period covering the day (the shortest period
        wins); the normal week (H1–H3).
        """
        cached = self._cache.get(day)
        if cached is None:
            cached = self._cache[day] = self._schedule(day)
        return cached

    def _schedule(self, day: date) -> DaySchedule:
        for closed in self.policy.closed_days:
            if closed.day == day:
                return DaySchedule(day, (), DayKind.CLOSED_OVERRIDE, closed.reason)
        for exact in self.policy.date_hours:
            if exact.day == day:
                return DaySchedule(day, exact.ranges, DayKind.DATE_OVERRIDE, exact.reason)
        red = self._days.red_day(day)
        if red is not None:
            return DaySchedule(day, (), DayKind.RED_DAY, red)
        periods = [p for p in self.policy.periods if p.covers(day)]
        if periods:
            period = min(periods, key=lambda p: p.last - p.first)
            base = DaySchedule(day, period.ranges, DayKind.PERIOD, period.reason)
        elif normal := self.normal_ranges(day):
            base = DaySchedule(day, normal, DayKind.NORMAL, "Vardag")
        else:
            return DaySchedule(day, (), DayKind.NORMAL, WEEKDAYS_SV[day.weekday()].capitalize())
        if not base.ranges:
            return base
        # H2, literally: a holiday eve, or any day before a red day. The rule
        # only shortens: the day keeps the part of its hours inside 08:00–12:00,
        # and a day that would be closed stays closed.
        next_red = self._red_day_or_none(day + timedelta(days=1))
        eve = self._days.eve(day)
        if eve is not None or next_red is not None:
            reason = eve if eve is not None else f"Dag före {next_red}"
            half = intersect(base.ranges, subtract(self.policy.half_day, self.policy.lunch))
            return DaySchedule(day, half, DayKind.HALF_DAY, reason)
        return base

    def _red_day_or_none(self, day: date) -> str | None:
        # The day after the last supported date has no data; treat it as no red day.
        return self._days.red_day(day) if day.year in SUPPORTED_YEARS else None

    def differing_days(self, year: int) -> list[DaySchedule]:
        """Every date of ``year`` whose hours differ from its weekday's normal hours."""
        out = []
        day = date(year, 1, 1)
        while day.year == year:
            sched = self.schedule(day)
            if sched.ranges != self.normal_ranges(day):
                out.append(sched)
            day += timedelta(days=1)
        return out

    # ----- instants --------------------------------------------------------------

    def local_instant(self, day: date, at: time) -> datetime:
        """The aware instant of local wall-clock ``at`` on ``day``.

        On the day clocks go forward, a wall time that does not exist (02:30)
        maps to the instant one hour later on the new offset; on the day they go
        back, an ambiguous wall time takes its first occurrence.
        """
        naive = datetime.combine(day, at)
        return naive.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)

    def _require_aware(self, at: datetime) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{at.isoformat()}: a timezone-aware instant is required")
        try:
            local = at.astimezone(self.tz)
        except OverflowError:
            local = None
        if local is None or local.year not in SUPPORTED_YEARS:
            raise UnsupportedYearError(at.isoformat())
        return local

    def _switch_at(self, at: datetime) -> ManualSwitch | None:
        # The switch that started last wins when ops leave two overlapping.
        active = [s for s in self.policy.switches if s.active(at)]
        if not active:
            return None
        return max(active, key=lambda s: s.start or datetime.min.replace(tzinfo=UTC))

    def _ranges_at(self, sched: DaySchedule) -> Iterator[tuple[datetime, datetime, TimeRange]]:
        for r in sched.ranges:
            yield self.local_instant(sched.day, r.start), self.local_instant(sched.day, r.end), r

    def is_open(self, at: datetime) -> bool:
        """Whether the switchboard is open at the aware instant ``at`` (H1–H4)."""
        local = self._require_aware(at)
        switch = self._switch_at(local)
        if switch is not None:
            return switch.is_open
        sched = self.schedule(local.date())
        return any(start <= local < end for start, end, _ in self._ranges_at(sched))

    def status(self, at: datetime) -> Status:
        """Open or closed at ``at``, why (Swedish), and the next instant it flips.

        Raises ``ValueError`` for a naive ``at``.
        """
        local = self._require_aware(at)
        is_open = self.is_open(local)
        return Status(local, is_open, self._reason(local, is_open), self.next_change(local))

    def _reason(self, local: datetime, is_open: bool) -> str:
        switch = self._switch_at(local)
        if switch is not None:
            state = "öppet" if switch.is_open else "stängt"
            until = switch.end.astimezone(self.tz)
            return f"Manuellt {state} till {until:%Y-%m-%d %H:%M}: {switch.reason}"
        sched = self.schedule(local.date())
        if is_open:
            return f"Öppet – {sched.describe()}"
        lunch = self.policy.lunch
        if (
            lunch is not None
            and sched.kind in (DayKind.NORMAL, DayKind.HALF_DAY)
            and any(r.end == lunch.start for r in sched.ranges)
            and any(r.start == lunch.end for r in sched.ranges)
            and lunch.start <= local.time() < lunch.end
        ):
            return f"Stängt – lunch {lunch}"
        return f"Stängt – {sched.describe()}"

    def next_change(self, at: datetime) -> datetime | None:
        """The first instant after ``at`` where open/closed flips, or None within two years."""
        local = self._require_aware(at)
        current = self.is_open(local)
        switch_points = sorted(
            p.astimezone(self.tz)
            for s in self.policy.switches
            for p in (s.start, s.end)
            if p is not None and p > local
        )
        for offset in range(_HORIZON_DAYS):
            day = local.date() + timedelta(days=offset)
            if day.year not in SUPPORTED_YEARS:
                break
            points = [
                p for start, end, _ in self._ranges_at(self.schedule(day)) for p in (start, end)
            ]
            points += [p for p in switch_points if p.date() == day]
            for point in sorted(p for p in points if p > local):
                if self.is_open(point) != current:
                    return point
        return None

    # ----- working days (V2) ---------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """A weekday with weekly hours that is not a red day (V2 on the H2 calendar).

        Half days (eves) are working days. Ops overrides are not consulted: they
        open or close the switchboard, not the staff's working week, so an
        election Sunday is no working day and a closed switchboard day still is.
        """
        return bool(self.policy.weekly[day.weekday()]) and self._days.red_day(day) is None

    def add_working_days(self, at: datetime, n: int) -> datetime:
        """``at`` plus ``n`` working days: the callback deadline of V2.

        Time counts only on working days. An instant on a working day keeps its
        local time of day on the n-th working day after it (Monday 10:00 + 2 is
        Wednesday 10:00). An instant on a non-working day starts counting at the
        start (00:00) of the next working day, so Saturday + 2 is the start of
        the third working day: the end of the second. Raises ``ValueError`` for
        a naive ``at`` or a negative ``n``.
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more, not {n}")
        local = self._require_aware(at)
        day, clock = local.date(), local.time().replace(tzinfo=None)
        if not self.is_working_day(day):
            day, clock = self._next_working_day(day), time(0)
        for _ in range(n):
            day = self._next_working_day(day)
        return self.local_instant(day, clock)

    def _next_working_day(self, day: date) -> date:
        for offset in range(1, _HORIZON_DAYS):
            candidate = day + timedelta(days=offset)
            if candidate.year not in SUPPORTED_YEARS:
                break
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(f"no working day within two years after {day.isoformat()}")
