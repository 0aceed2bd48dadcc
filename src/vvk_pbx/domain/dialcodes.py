"""Staff dial codes (R2, R4): what a dialed string means, and when a return time falls.

The family, in the style of the PBX codes staff already know (code, reason,
return time, then ``#``):

- ``*23*<reason>*<HHMM>#``: referred, back at HH:MM today, or on the next
  working day if that time has passed. Four digits are always a time.
- ``*23*<reason>*<MMDD>*<HHMM>#``: back on that date at that time, the next
  such date (a January date set in December means next year).
- ``#23#``: clear the referral ("open the phone").
- ``*98#``: listen to your voicemail.
- ``*24*<extension>*<PIN>*<reason>*<HHMM>#`` and
  ``*24*<extension>*<PIN>*<reason>*<MMDD>*<HHMM>#``: the same for another
  person's extension, with that person's PIN; ``#24*<extension>*<PIN>#``
  clears it.

Parsing is pure and knows nothing of the directory: whether the reason, the
extension and the PIN exist is the service's to check. Every refusal is a
``CodeError`` with a ``problem`` the caller hears as a spoken error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from vvk_pbx.domain.calendar import Calendar

REFER = "23"
REFER_OTHER = "24"
VOICEMAIL = "*98#"


class Problem(StrEnum):
    """Why a code was refused; each has a spoken error prompt (``code-error-<value>``)."""

    MALFORMED = "malformed"
    UNKNOWN_REASON = "unknown-reason"
    IMPOSSIBLE_TIME = "impossible-time"
    IMPOSSIBLE_DATE = "impossible-date"
    UNKNOWN_EXTENSION = "unknown-extension"
    WRONG_PIN = "wrong-pin"
    LOCKED = "locked"


class CodeError(ValueError):
    """A dial code that cannot be carried out. ``problem`` says why; nothing was stored."""

    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class SetReferral:
    """Refer a phone: reason code, return at ``hour:minute`` on ``month_day`` (or the next time)."""

    reason: int
    hour: int
    minute: int
    month_day: tuple[int, int] | None = None
    extension: str | None = None  # another person's; None means the caller's own
    pin: str | None = None


@dataclass(frozen=True)
class ClearReferral:
    """Open the phone again (R4)."""

    extension: str | None = None
    pin: str | None = None


@dataclass(frozen=True)
class ListenVoicemail:
    """Listen to the caller's own messages (V1)."""


DialCode = SetReferral | ClearReferral | ListenVoicemail

_DIGITS = re.compile(r"[0-9]+")


def is_feature_code(dialed: str) -> bool:
    """Whether a dialed string is a staff code (it starts with ``*`` or ``#``)."""
    return dialed[:1] in ("*", "#")


def parse(dialed: str) -> DialCode:
    """The meaning of a dialed code; the final ``#`` may be left out (phones that use it
    as the send key). Raises ``CodeError`` (MALFORMED, IMPOSSIBLE_TIME,
    IMPOSSIBLE_DATE) for a code that is not in the family or names no real time."""
    code = dialed.strip().replace("%23", "#")
    if code[:1] in ("*", "#") and not code.endswith("#"):
        # Many desk phones take # as "send" and do not pass it on: the code is
        # whole without it, so it means the same.
        code += "#"
    if code == VOICEMAIL:
        return ListenVoicemail()
    if code == f"#{REFER}#":
        return ClearReferral()
    if code.startswith(f"#{REFER_OTHER}*") and code.endswith("#"):
        fields = code[len(REFER_OTHER) + 2 : -1].split("*")
        if len(fields) == 2 and all(_DIGITS.fullmatch(f) for f in fields):
            return ClearReferral(extension=fields[0], pin=fields[1])
        raise _malformed(dialed)
    if not code.startswith("*") or not code.endswith("#"):
        raise _malformed(dialed)
    fields = code[1:-1].split("*")
    if not all(_DIGITS.fullmatch(f) for f in fields):
        raise _malformed(dialed)
    head, rest = fields[0], fields[1:]
    if head == REFER and len(rest) in (2, 3):
        return _referral(rest, None, None, dialed)
    if head == REFER_OTHER and len(rest) in (4, 5):
        return _referral(rest[2:], rest[0], rest[1], dialed)
    raise _malformed(dialed)


def _malformed(dialed: str) -> CodeError:
    return CodeError(Problem.MALFORMED, f"{dialed!r} is not a known code")


def _referral(
    fields: list[str], extension: str | None, pin: str | None, dialed: str
) -> SetReferral:
    reason, *when = fields
    if len(reason) > 2 or any(len(f) != 4 for f in when):
        raise _malformed(dialed)
    hour, minute = int(when[-1][:2]), int(when[-1][2:])
    if hour > 23 or minute > 59:
        raise CodeError(Problem.IMPOSSIBLE_TIME, f"{when[-1]} is not a time of day (HHMM)")
    month_day = None
    if len(when) == 2:
        month, day = int(when[0][:2]), int(when[0][2:])
        if not _date_exists(month, day):
            raise CodeError(Problem.IMPOSSIBLE_DATE, f"{when[0]} is not a date (MMDD)")
        month_day = (month, day)
    return SetReferral(int(reason), hour, minute, month_day, extension, pin)


def _date_exists(month: int, day: int) -> bool:
    try:
        date(2028, month, day)  # a leap year: 29 February exists
    except ValueError:
        return False
    return True


def return_time(code: SetReferral, now: datetime, calendar: Calendar) -> datetime:
    """When the person is back (aware, local), from a code dialed at ``now`` (R2).

    HHMM alone: today at that time if it is still ahead, else that time on the
    next working day. MMDD and HHMM: the next such date at that time that is
    still ahead (29 February: the next leap year's). Raises ``ValueError`` for
    a naive ``now``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    local = now.astimezone(calendar.tz)
    at = time(code.hour, code.minute)
    if code.month_day is None:
        today = _at(local.date(), at, calendar)
        if today > local:
            return today
        day = local.date() + timedelta(days=1)
        while not calendar.is_working_day(day):
            day += timedelta(days=1)
        return _at(day, at, calendar)
    month, day_of_month = code.month_day
    for year in range(local.year, local.year + 9):
        try:
            candidate = _at(date(year, month, day_of_month), at, calendar)
        except ValueError:
            continue  # 29 February in a common year
        if candidate > local:
            return candidate
    raise ValueError(f"no {month:02d}-{day_of_month:02d} ahead")  # unreachable for real dates


def _at(day: date, at: time, calendar: Calendar) -> datetime:
    return datetime.combine(day, at, tzinfo=calendar.tz)
