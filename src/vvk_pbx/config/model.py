"""Frozen, typed settings of the ops config file (``config/vvk-pbx.toml``), validated by pydantic.

Every table forbids unknown keys, so a misspelt key is an error, not a silent
default. Cross-references between tables (a person's unit, unique extensions)
are checked in ``vvk_pbx.config.loader`` so that they are reported even when
some other part of the file is broken.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import typing
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)

from vvk_pbx.domain.access import Role
from vvk_pbx.domain.calendar import (
    Calendar,
    ClosedDay,
    DateHours,
    HoursPolicy,
    ManualSwitch,
    PeriodHours,
    TimeRange,
    subtract,
)
from vvk_pbx.domain.callflow.call import OnCallNumber, Policy
from vvk_pbx.domain.routing import Numbering, digits, ring_timeout_s

_CLOCK = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")


def parse_clock(text: str) -> time:
    """``"08:00"`` -> ``time(8, 0)``. Raises ``ValueError`` for an impossible time."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time: write HH:MM, for example 08:00")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r} is an impossible time: hours go 00–23 and minutes 00–59")
    return time(hour, minute)


def _parse_range(value: Any) -> Any:
    """``"08:00-16:00"`` (hyphen or en dash) -> ``TimeRange``. Raises ``ValueError`` otherwise."""
    if isinstance(value, TimeRange):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f'{value!r} is not a time range: write it in quotes as "HH:MM-HH:MM", '
            'for example "08:00-16:00"'
        )
    parts = re.split(r"\s*[-–]\s*", value.strip())
    if len(parts) != 2:
        raise ValueError(
            f"{value!r} is not a time range: write HH:MM-HH:MM, for example 08:00-16:00"
        )
    start, end = parse_clock(parts[0]), parse_clock(parts[1])
    if start >= end:
        raise ValueError(f"{value!r}: the start must be before the end")
    return TimeRange(start, end)


def _sorted_disjoint(ranges: tuple[TimeRange, ...]) -> tuple[TimeRange, ...]:
    ordered = tuple(sorted(ranges))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise ValueError(f"{before} and {after} overlap")
    return ordered


Range = Annotated[TimeRange, BeforeValidator(_parse_range)]
Ranges = Annotated[tuple[Range, ...], AfterValidator(_sorted_disjoint)]
Extension = Annotated[str, Field(pattern=r"^[0-9]{2,6}$", description="2–6 digits")]
PhoneNumber = Annotated[
    str,
    Field(
        pattern=r"^\+?[0-9]+([ -][0-9]+)*$",
        description="digits, optionally with a leading + and spaces or hyphens",
    ),
]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", description="lower-case id")]
# Printable text: no control characters and no bidirectional overrides, which
# would make a name read differently on screen than in the file.
Text = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]+$",
        description="printable text",
    ),
]
# A person's or operator's name becomes a SIP caller id: no quotes, semicolons,
# angle brackets or backslashes, which end or escape it in pjsip.conf.
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r'^[^\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069";<>\\]+$',
        description='a name without " ; < > or \\',
    ),
]
Count = Annotated[int, Strict()]
Day = Annotated[date, Strict()]
Instant = Annotated[datetime, Strict()]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Site(Section):
    name: Text
    timezone: str = "Europe/Stockholm"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a zone directory name such as "Europe" is no zone.
            raise ValueError(f"unknown time zone {name!r}, for example Europe/Stockholm") from None
        return name

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Weekly(Section):
    monday: Ranges = ()
    tuesday: Ranges = ()
    wednesday: Ranges = ()
    thursday: Ranges = ()
    friday: Ranges = ()
    saturday: Ranges = ()
    sunday: Ranges = ()

    def as_tuple(self) -> tuple[tuple[TimeRange, ...], ...]:
        return (
            self.monday,
            self.tuesday,
            self.wednesday,
            self.thursday,
            self.friday,
            self.saturday,
            self.sunday,
        )


class Hours(Section):
    weekly: Weekly
    lunch: Range | None = None
    half_day: Ranges


class ClosedDate(Section):
    date: Day
    reason: Text


class DateOverride(Section):
    """Exact hours for one date; they beat the holiday rules. Empty hours close it."""

    date: Day
    hours: Ranges
    reason: Text


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAY_NAMES: tuple[Weekday, ...] = typing.get_args(Weekday)


class Period(Section):
    """Hours replacing the weekly hours on ``weekdays`` from ``start`` to ``end`` (inclusive)."""

    start: Day
    end: Day
    weekdays: tuple[Weekday, ...] = Field(default=WEEKDAY_NAMES[:5], min_length=1)
    hours: Ranges
    reason: Text

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if isinstance(start, date) and end < start:
            raise ValueError(f"end {end} is before start {start}")
        return end


class Switch(Section):
    """A manual open/closed switch. Naive times are in the site's zone; the loader checks order."""

    state: Literal["open", "closed"]
    start: Instant | None = None
    end: Instant
    reason: Text


class Overrides(Section):
    closed: tuple[ClosedDate, ...] = ()
    day: tuple[DateOverride, ...] = ()
    period: tuple[Period, ...] = ()
    switch: tuple[Switch, ...] = ()


class Ring(Section):
    """A1: the ring cadence and the answer goal."""

    tone_ms: Count = Field(default=1000, gt=0, le=10_000)
    pause_ms: Count = Field(default=5000, ge=0, le=60_000)
    goal_rings: Count = Field(default=4, ge=1, le=20)
    # R5: a person's phone rings this many times before the caller gets the menu.
    person_rings: Count = Field(default=4, ge=1, le=20)

    @property
    def cycle_ms(self) -> int:
        return self.tone_ms + self.pause_ms

    @property
    def timeout_s(self) -> int:
        """How long a phone rings before the call gives up on it (``domain.routing.ring_timeout_s``)."""
        return ring_timeout_s(self.cycle_ms, self.goal_rings)


class OnCall(Section):
    """H5: an on-call service (journummer) read out by the central answering machine."""

    name: Text
    number: PhoneNumber
    digit: Annotated[str, Field(pattern=r"^[0-9]$", description="one digit 0–9")]


class Operator(Section):
    name: Name
    extension: Extension


class Unit(Section):
    """A unit (enhet) within a sector (sektor). Its members are the staff whose ``unit`` names it."""

    id: Slug
    name: Text
    sector: Text
    # A7: the unit's own phone hours (telefontid), taken literally (no lunch is
    # subtracted). None: the unit keeps the switchboard's hours.
    phone_hours: Weekly | None = None


class Person(Section):
    """D1: one entry of the staff directory."""

    name: Name
    extension: Extension
    mobile: PhoneNumber | None = None
    unit: Slug
    title: Text


class Reason(Section):
    """R1: a referral reason code with the Swedish phrase callers hear ("är på möte")."""

    code: Count = Field(ge=0, le=99)
    name: Slug
    phrase: Text


def _ip_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or network, like 192.0.2.10 or 192.0.2.0/24"
        ) from None
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not one IP address, like 127.0.0.1 or 0.0.0.0") from None
    return value


class Trunk(Section):
    """The SIP trunk: calls from these source addresses are external (inbound) calls."""

    match: tuple[Annotated[str, AfterValidator(_ip_network)], ...] = Field(min_length=1)
    contact: str = Field(
        default="127.0.0.2:5060",
        pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$",
        description="host:port where outbound calls (to on-call numbers) are sent",
    )


class Phones(Section):
    """Where Asterisk finds the operators' and staff's phones.

    ``register``: each phone registers as its extension (desk phones,
    softphones). ``static``: the phone of extension N is always at
    ``sip:N@host:(N + port_offset)``, which is how the SIPp phones of the tests
    and the demo answer.
    """

    mode: Literal["register", "static"] = "register"
    host: str = "127.0.0.1"
    port_offset: Count = Field(default=4100, ge=0, le=60_000)

    @field_validator("host")
    @classmethod
    def _address(cls, host: str) -> str:
        return _ip_address(host)


class Asterisk(Section):
    """The Asterisk the controller drives (ARI) and the local instance ``vvk-pbx asterisk`` runs."""

    app: Slug = "vvk-pbx"
    ari_user: Slug = "vvk-pbx"
    ari_port: Count = Field(default=8088, ge=1, le=65_535)
    sip_port: Count = Field(default=5060, ge=1, le=65_535)
    sip_bind: str = Field(
        default="127.0.0.1",
        description="the address SIP listens on: 127.0.0.1 locally, 0.0.0.0 or the host's address in production",
    )
    trunk: Trunk

    @field_validator("sip_bind")
    @classmethod
    def _bind(cls, address: str) -> str:
        return _ip_address(address)

    phones: Phones = Phones()


class Switchboard(Section):
    """The public numbers: the switchboard's, and the prefix of the staff's direct numbers (A5)."""

    number: PhoneNumber
    direct_prefix: PhoneNumber
    operator_codes: tuple[Annotated[str, Field(pattern=r"^[0-9]{1,4}$")], ...] = ("0", "9")


class Queue(Section):
    """How the operator queue offers calls (A3, A4, A6).

    ``strategy``: ``ring-all`` rings every free operator for the first caller
    in line; ``longest-idle`` offers each caller in line to one free operator,
    the one idle longest, for ``offer_s`` seconds before the next is tried.
    ``internal_delay_s``: an internal call queues as if it had arrived that
    many seconds later (A4). ``overflow_after_s``: a call no person has
    answered that long after it arrived rings ``overflow`` instead (A6):
    extensions and unit ids, a unit meaning its members in order. With no
    overflow the call goes to the dialplan fallback, which tries the operators
    once more and then tells the caller. ``recall_s``: a caller an operator
    parked rings that operator again after so many seconds (the console's
    *parkera*).
    """

    strategy: Literal["ring-all", "longest-idle"] = "ring-all"
    offer_s: Count = Field(default=18, ge=5, le=300)
    internal_delay_s: Count = Field(default=60, ge=0, le=3600)
    overflow_after_s: Count = Field(default=60, ge=10, le=3600)
    overflow: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    recall_s: Count = Field(default=60, ge=5, le=3600)


class Voicemail(Section):
    """V1: a message's longest length and the silence that ends it, in seconds."""

    max_s: Count = Field(default=120, ge=10, le=600)
    silence_s: Count = Field(default=5, ge=1, le=60)


class Access(Section):
    """Who may do what over HTTP (S1). Every person in the directory is ``staff``; the
    ``[[operators]]`` are ``operator``. These lists add roles to extensions of the
    directory or the operators (checked at load). ``session_hours``: how long a
    browser stays logged in."""

    operators: tuple[Extension, ...] = ()
    admins: tuple[Extension, ...] = ()
    reports: tuple[Extension, ...] = ()
    session_hours: Count = Field(default=10, ge=1, le=24)


class Retention(Section):
    """How long data is kept (S1), in days; a daily job of the controller deletes what is
    older. ``calls``: call-log rows with their legs (13 months by default, so a month
    can be compared with the same month a year before); ``voicemail_audio``: the
    recordings (the ledger's row stays: the caller's callback is a record of its own);
    ``audit``: the export audit log."""

    calls_days: Count = Field(default=395, ge=31, le=3650)
    voicemail_audio_days: Count = Field(default=60, ge=7, le=3650)
    audit_days: Count = Field(default=730, ge=31, le=3650)


class Settings(Section):
    """The whole ops config. Build it with ``vvk_pbx.config.load``."""

    site: Site
    hours: Hours
    overrides: Overrides = Overrides()
    ring: Ring = Ring()
    queue: Queue = Queue()
    voicemail: Voicemail = Voicemail()
    on_call: tuple[OnCall, ...] = ()
    switchboard: Switchboard
    operators: tuple[Operator, ...] = Field(min_length=1)
    units: tuple[Unit, ...] = ()
    staff: tuple[Person, ...] = ()
    referral_reasons: tuple[Reason, ...] = ()
    access: Access = Access()
    retention: Retention = Retention()
    asterisk: Asterisk

    def hours_policy(self) -> HoursPolicy:
        """The calendar's view of this config; naive override datetimes are in the site's zone."""
        tz = self.site.tz

        def aware(at: datetime) -> datetime:
            return at if at.tzinfo is not None else at.replace(tzinfo=tz)

        return HoursPolicy(
            timezone=tz,
            weekly=self.hours.weekly.as_tuple(),
            lunch=self.hours.lunch,
            half_day=self.hours.half_day,
            closed_days=tuple(ClosedDay(c.date, c.reason) for c in self.overrides.closed),
            date_hours=tuple(DateHours(d.date, d.hours, d.reason) for d in self.overrides.day),
            periods=tuple(
                PeriodHours(
                    first=p.start,
                    last=p.end,
                    weekdays=frozenset(WEEKDAY_NAMES.index(w) for w in p.weekdays),
                    ranges=p.hours,
                    reason=p.reason,
                )
                for p in self.overrides.period
            ),
            switches=tuple(
                ManualSwitch(
                    is_open=s.state == "open",
                    start=None if s.start is None else aware(s.start),
                    end=aware(s.end),
                    reason=s.reason,
                )
                for s in self.overrides.switch
            ),
        )

    def unit_hours_policy(self, unit_id: str) -> HoursPolicy | None:
        """The calendar's view of a unit's phone hours (A7), or None when the unit has
        none of its own (or no such unit). Red days close it and the half-day rule
        (H2) shortens it, as for the switchboard; the switchboard's overrides do not
        apply (they are about the switchboard). Raises nothing."""
        unit = next((u for u in self.units if u.id == unit_id), None)
        if unit is None or unit.phone_hours is None:
            return None
        return HoursPolicy(
            timezone=self.site.tz,
            weekly=unit.phone_hours.as_tuple(),
            lunch=None,
            half_day=subtract(self.hours.half_day, self.hours.lunch),
        )

    def extensions(self) -> tuple[tuple[str, str], ...]:
        """Every phone's ``(extension, name)``: the operators, then the staff, in file order."""
        return tuple((o.extension, o.name) for o in self.operators) + tuple(
            (p.extension, p.name) for p in self.staff
        )

    def numbering(self) -> Numbering:
        """The routing view of the numbers: switchboard, direct prefix and extensions."""
        return Numbering(
            switchboard=digits(self.switchboard.number),
            direct_prefix=digits(self.switchboard.direct_prefix),
            extensions=dict(self.extensions()),
            operator_codes=self.switchboard.operator_codes,
        )

    def call_policy(self, calendar: Calendar) -> Policy:
        """What the call flows need of this config (``domain.callflow.call.Policy``), with the
        switchboard's ``calendar`` (built from ``hours_policy``)."""
        ring = self.ring
        return Policy(
            calendar=calendar,
            numbering=self.numbering(),
            on_call={
                s.digit: OnCallNumber(s.name, s.number, digits(s.number)) for s in self.on_call
            },
            staff=frozenset(p.extension for p in self.staff),
            cycle_ms=ring.cycle_ms,
            goal_rings=ring.goal_rings,
            ring_timeout_s=ring.timeout_s,
            # R5: a person's phone rings person_rings rings before the caller gets the menu.
            person_timeout_s=max(1, ring.person_rings * ring.cycle_ms // 1000),
            strategy=self.queue.strategy,
            offer_s=self.queue.offer_s,
            overflow_after_s=self.queue.overflow_after_s,
            overflow=self.overflow_extensions(),
            voicemail_max_s=self.voicemail.max_s,
            voicemail_silence_s=self.voicemail.silence_s,
            recall_s=self.queue.recall_s,
            operators=tuple(o.extension for o in self.operators),
        )

    def roles(self, extension: str) -> frozenset[Role]:
        """The roles a person holds on the web (S1): none for an unknown extension."""
        held: set[Role] = set()
        if any(p.extension == extension for p in self.staff):
            held.add(Role.STAFF)
        operators = {o.extension for o in self.operators} | set(self.access.operators)
        if extension in operators:
            held.add(Role.OPERATOR)
        if extension in self.access.admins:
            held.add(Role.ADMIN)
        if extension in self.access.reports:
            held.add(Role.REPORTS)
        return frozenset(held)

    def unit_members(self, unit_id: str) -> tuple[Person, ...]:
        """The unit's staff in directory order, which is the order colleagues are offered (A5)."""
        return tuple(p for p in self.staff if p.unit == unit_id)

    def overflow_extensions(self) -> tuple[str, ...]:
        """The queue's overflow group as extensions, units expanded to their members, no repeats (A6)."""
        units = {u.id for u in self.units}
        found: list[str] = []
        for entry in self.queue.overflow:
            members = [p.extension for p in self.unit_members(entry)] if entry in units else [entry]
            found += [ext for ext in members if ext not in found]
        return tuple(found)
