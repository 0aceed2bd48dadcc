"""The JSON and CSV views of calls, legs, referrals, messages and hours: one for the CLI and the API.

Times are ISO 8601 in the site's zone, as everywhere ops look; the database
keeps UTC. A view holds the raw strings: escaping is the job of what shows it
(a table, a page, a spreadsheet cell).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, tzinfo
from enum import Enum
from typing import Any

from vvk_pbx.config import Settings
from vvk_pbx.domain.access import Token
from vvk_pbx.domain.calendar import DaySchedule, Status
from vvk_pbx.domain.calls import CallRecord, Leg
from vvk_pbx.domain.directory import matches
from vvk_pbx.domain.referral import Referral
from vvk_pbx.domain.voicemail import Message
from vvk_pbx.services.referrals import ReferralService

CALL_FIELDS = tuple(f.name for f in dataclasses.fields(CallRecord))
LEG_FIELDS = tuple(f.name for f in dataclasses.fields(Leg) if f.name != "call_id")


def local(at: datetime | None, tz: tzinfo) -> str | None:
    """An aware instant as ISO 8601 in ``tz``; None stays None."""
    return None if at is None else at.astimezone(tz).isoformat()


def _plain(value: Any, tz: tzinfo) -> Any:
    if isinstance(value, datetime):
        return local(value, tz)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Enum):
        return value.value
    return value


def call_json(record: CallRecord, tz: tzinfo, legs: Iterable[Leg] | None = None) -> dict[str, Any]:
    """One call as JSON: the fields of the log (A1, O1: the trace) and, given them, its
    legs with their ring and answer times."""
    out: dict[str, Any] = {name: _plain(getattr(record, name), tz) for name in CALL_FIELDS}
    if legs is not None:
        out["legs"] = [
            {name: _plain(getattr(leg, name), tz) for name in LEG_FIELDS} for leg in legs
        ]
    return out


def call_csv_row(record: CallRecord, tz: tzinfo) -> dict[str, Any]:
    """One call as a flat CSV row (``CALL_FIELDS``), the trace joined with `` | ``."""
    row = call_json(record, tz)
    return {**row, "trace": " | ".join(row["trace"])}


def referral_json(service: ReferralService, referral: Referral) -> dict[str, Any]:
    """A referral as JSON. ``announced_end`` is the return callers hear: ``end`` moved to
    when the switchboard and the person's unit are next open (R5, A7)."""
    tz = service.calendar.tz
    reason = service.reasons.get(referral.reason)
    return {
        "id": referral.id,
        "extension": referral.extension,
        "reason": referral.reason,
        "reason_name": reason.name if reason else None,
        "phrase": reason.phrase if reason else None,
        "start": local(referral.start, tz),
        "end": local(referral.end, tz),
        "announced_end": local(service.announced_end(referral), tz),
        "note": referral.note,
        "set_by": referral.set_by,
        "source": referral.source.value,
        "cleared_at": local(referral.cleared_at, tz),
        "cleared_by": referral.cleared_by,
    }


def message_json(message: Message, now: datetime, tz: tzinfo) -> dict[str, Any]:
    """A ledger entry as JSON, with whether it is overdue at ``now`` (V2)."""
    return {
        "id": message.id,
        "extension": message.extension,
        "caller": message.caller,
        "left_at": local(message.left_at, tz),
        "duration_s": message.duration_s,
        "deadline": local(message.deadline_at, tz),
        "status": message.status.value,
        "overdue": message.overdue(now),
        "late": message.late,
        "called_back_at": local(message.called_back_at, tz),
        "called_back_by": message.called_back_by,
        "recording": message.recording,
        "name": message.caller_name,
        "note": message.note,
        "taken_by": message.taken_by,
    }


def directory(settings: Settings, query: str = "") -> list[dict[str, Any]]:
    """The staff directory in file order (D1), those matching ``query`` (``domain.directory``)."""
    units = {u.id: u.name for u in settings.units}
    found = []
    for person in settings.staff:
        unit_name = units.get(person.unit, person.unit)
        if matches(query, (person.name, person.unit, unit_name, person.title, person.extension)):
            found.append(
                {
                    "extension": person.extension,
                    "name": person.name,
                    "unit": person.unit,
                    "unit_name": unit_name,
                    "title": person.title,
                    "mobile": person.mobile,
                }
            )
    return found


def status_json(status: Status) -> dict[str, Any]:
    """Open or closed, why, and the next change (H1–H4)."""
    return {
        "open": status.is_open,
        "reason": status.reason,
        "next_change": None if status.next_change is None else status.next_change.isoformat(),
    }


def schedule_json(day: DaySchedule) -> dict[str, Any]:
    """A day whose hours differ from the normal week."""
    return {
        "date": day.day.isoformat(),
        "intervals": [[f"{r.start:%H:%M}", f"{r.end:%H:%M}"] for r in day.ranges],
        "reason": day.reason,
    }


def token_json(token: Token, tz: tzinfo) -> dict[str, Any]:
    """A machine's token as ops see it: never its secret nor its hash (S1)."""
    return {
        "name": token.name,
        "role": token.role.value,
        "created_at": local(token.created_at, tz),
        "revoked_at": local(token.revoked_at, tz),
    }
