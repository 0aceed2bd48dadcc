"""Referrals as staff set them (R2, R4) and as callers meet them (R5).

The switchboard hands this service a dialed staff code and plays back what
it returns; it asks it what a caller to an extension should hear. The rules
are in ``domain/dialcodes.py`` and ``domain/referral.py``; this module checks
codes against the directory, stores through the ``ReferralPort`` and composes
the prompts.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vvk_pbx.config.model import Settings
from vvk_pbx.domain.calendar import SUPPORTED_YEARS, Calendar
from vvk_pbx.domain.dialcodes import (
    ClearReferral,
    CodeError,
    ListenVoicemail,
    Problem,
    SetReferral,
    parse,
    return_time,
)
from vvk_pbx.domain.pins import MAX_FAILURES, PinRecord
from vvk_pbx.domain.referral import (
    Referral,
    Source,
    announced_return,
    announcement,
    when_back,
)
from vvk_pbx.domain.voicemail import Message, Status

log = logging.getLogger(__name__)

# A number an operator writes down to call back: "070-123 45 67", "+46 70 1234567", "1101".
CALLBACK_NUMBER = re.compile(r"\+?[0-9][0-9 ()-]*")


class ReferralPort(Protocol):
    """What the service needs from storage (``vvk_pbx.storage.referrals.ReferralStore``)."""

    async def set(
        self,
        extension: str,
        reason: int,
        start: datetime,
        end: datetime,
        set_by: str,
        source: Source,
        note: str | None = None,
    ) -> Referral: ...
    async def clear(
        self, extension: str, at: datetime, by: str | None = None
    ) -> Referral | None: ...
    async def in_force(self, extension: str, now: datetime) -> Referral | None: ...
    async def all_in_force(self, now: datetime) -> dict[str, Referral]: ...


class PinPort(Protocol):
    """Where PINs are kept (``vvk_pbx.storage.pins.PinStore``)."""

    async def get(self, extension: str) -> PinRecord | None: ...
    async def put(self, record: PinRecord) -> None: ...


class MessagePort(Protocol):
    """Where voicemail messages go (``vvk_pbx.storage.voicemail.MessageStore``)."""

    async def add(self, message: Message) -> None: ...
    async def get(self, message_id: str) -> Message | None: ...
    async def known(self, message_ids: list[str]) -> set[str]: ...
    async def ledger(self, extensions: list[str] | None = None) -> list[Message]: ...
    async def mark(
        self, message_id: str, status: Status, at: datetime | None = None, by: str | None = None
    ) -> Message | None: ...


@dataclass(frozen=True)
class CodeReply:
    """What the phone hears after a dial code (prompt names), and one line for the call log."""

    prompts: list[str]
    note: str
    accepted: bool
    then_pin: bool = False  # the phone goes on to enter a PIN (voicemail)


class ReferralService:
    """Dial codes from staff phones and what callers to referred people hear."""

    def __init__(
        self,
        store: ReferralPort,
        messages: MessagePort,
        pins: PinPort,
        settings: Settings,
        calendar: Calendar,
    ) -> None:
        self.store = store
        self.messages = messages
        self.pins = pins
        self.settings = settings
        self.calendar = calendar
        self.reasons = {r.code: r for r in settings.referral_reasons}
        self.staff = {p.extension: p for p in settings.staff}
        self.operators = {o.extension for o in settings.operators}
        # Told after every referral this service sets or clears (the live feed, issue 11).
        self.on_change: Callable[[], None] = lambda: None
        # A7: units with phone hours of their own; the others follow the switchboard.
        self.unit_calendars = {
            u.id: Calendar(policy)
            for u in settings.units
            if (policy := settings.unit_hours_policy(u.id)) is not None
        }

    def _unit_calendar(self, extension: str) -> Calendar | None:
        person = self.staff.get(extension)
        return None if person is None else self.unit_calendars.get(person.unit)

    async def dial_code(
        self, extension: str, dialed: str, now: datetime, dry_run: bool = False
    ) -> CodeReply:
        """Carry out a code dialed on ``extension``'s phone at ``now`` (aware).

        A refused code stores nothing and replies with its spoken error. With
        ``dry_run`` (``vvk-pbx simulate``) nothing is stored and no PIN is tried:
        the reply says what the code would do. Raises ``StorageError`` when the
        database cannot be read or written.
        """
        try:
            code = parse(dialed)
            target = extension
            if isinstance(code, SetReferral | ClearReferral) and code.extension is not None:
                # Another person's phone, from any phone, with that person's PIN.
                target = code.extension
                if target not in self.staff:
                    raise CodeError(Problem.UNKNOWN_EXTENSION, f"{target} is not in the directory")
                if not dry_run:
                    await self.check_pin(target, code.pin or "", now, by=extension)
            elif extension not in self.staff:
                raise CodeError(Problem.UNKNOWN_EXTENSION, f"{extension} is not in the directory")
            if isinstance(code, SetReferral):
                return await self._set(target, code, now, extension, dry_run)
            if isinstance(code, ClearReferral):
                return await self._clear(target, now, extension, dry_run)
            assert isinstance(code, ListenVoicemail)
            return CodeReply(["voicemail-pin"], "[V1] voicemail: asked for the PIN", True, True)
        except CodeError as exc:
            log.info("dial code %r from %s refused: %s", dialed, extension, exc)
            return CodeReply(
                [f"code-error-{exc.problem.value}"], f"[R2] code {dialed!r} refused: {exc}", False
            )

    async def check_pin(self, extension: str, pin: str, now: datetime, by: str) -> None:
        """Raises ``CodeError`` (WRONG_PIN, LOCKED) unless ``pin`` is the extension's PIN,
        tried from phone ``by``.

        Every wrong attempt counts; the ``MAX_FAILURES``-th locks the extension
        for a while, logged as a warning with the phone it came from (R2). The
        hash is computed off the event loop (scrypt takes tens of ms).
        """
        record = await self.pins.get(extension)
        if record is None:
            raise CodeError(Problem.WRONG_PIN, f"no PIN is set for {extension}")
        if record.locked(now):
            until = self._local(record.locked_until)
            raise CodeError(Problem.LOCKED, f"{extension} is locked until {until}")
        right = await asyncio.to_thread(record.matches, pin)
        updated = record.after_attempt(right, now)
        if updated != record:
            await self.pins.put(updated)
        if updated.locked_until is not None:
            log.warning(
                "extension %s locked until %s after %d wrong PINs, the last from phone %s",
                extension,
                self._local(updated.locked_until),
                MAX_FAILURES,
                by,
            )
            until = self._local(updated.locked_until)
            raise CodeError(Problem.LOCKED, f"{extension} is locked until {until}")
        if not right:
            raise CodeError(Problem.WRONG_PIN, f"wrong PIN for {extension}")

    async def _set(
        self, extension: str, code: SetReferral, now: datetime, set_by: str, dry_run: bool
    ) -> CodeReply:
        if code.reason not in self.reasons:
            known = ", ".join(str(c) for c in sorted(self.reasons))
            raise CodeError(Problem.UNKNOWN_REASON, f"no reason {code.reason} (known: {known})")
        back = return_time(code, now, self.calendar)
        if not dry_run:
            await self.store.set(extension, code.reason, now, back, set_by, Source.PHONE)
            self._changed()
        local_now = now.astimezone(self.calendar.tz)
        prompts = [
            "code-referred",
            f"name-{extension}",
            f"reason-{code.reason}",
            "and-back",
            *when_back(local_now, back),
        ]
        reason = self.reasons[code.reason].name
        return CodeReply(prompts, f"[R2] referral set: {reason} until {back.isoformat()}", True)

    async def _clear(self, extension: str, now: datetime, by: str, dry_run: bool) -> CodeReply:
        """Open ``extension``'s phone; ``by`` is the phone that dialled (S1: who cleared)."""
        if dry_run:
            cleared = await self.store.in_force(extension, now)
        else:
            cleared = await self.store.clear(extension, now, by=by)
            self._changed()
        if cleared is None:
            return CodeReply(["code-nothing-to-clear"], "[R4] no referral to clear", True)
        return CodeReply(["code-cleared"], "[R4] referral cleared: the phone is open", True)

    async def greeting(self, extension: str, now: datetime) -> tuple[Referral | None, list[str]]:
        """The referral in force for ``extension`` and what its callers hear first (R5):
        the return is the next time the switchboard and the person's unit are open."""
        referral = await self.store.in_force(extension, now)
        unit = self._unit_calendar(referral.extension) if referral else None
        return referral, announcement(extension, referral, now, self.calendar, unit)

    async def colleague(self, extension: str, now: datetime) -> str | None:
        """The first colleague in the person's unit, in directory order, with no referral
        in force (A5, R5); None if there is none."""
        person = self.staff.get(extension)
        if person is None:
            return None
        for member in self.settings.unit_members(person.unit):
            if (
                member.extension != extension
                and await self.store.in_force(member.extension, now) is None
            ):
                return member.extension
        return None

    async def message_left(
        self,
        extension: str,
        caller: str,
        call_id: str,
        left_at: datetime,
        duration_s: float,
        recording: str,
    ) -> Message:
        """Put a new message in the callback ledger; its deadline is ``left_at`` plus 2
        working days on the H2 calendar (V2). Raises ``StorageError``."""
        message = Message(
            id=call_id,
            extension=extension,
            caller=caller,
            call_id=call_id,
            left_at=left_at,
            duration_s=round(duration_s, 1),
            recording=recording,
            deadline_at=self.calendar.add_working_days(left_at, 2),
        )
        await self.messages.add(message)
        log.info("message %s for %s, call back by %s", message.id, extension, message.deadline_at)
        return message

    async def message_taken(
        self,
        extension: str,
        caller: str,
        caller_name: str,
        note: str,
        taken_by: str,
        at: datetime,
        call_id: str | None = None,
    ) -> Message:
        """*Ta meddelande*: an operator writes down a caller's message for ``extension``,
        into the callback ledger with the same 2-working-day deadline (V2). Raises
        ``ReferralError`` (extension: not in the directory; caller: no number; note:
        too long) and ``StorageError``."""
        if not extension:
            raise ReferralError("extension", "say whom the message is for: extension")
        if extension not in self.staff:
            raise ReferralError("extension", f"{extension} is not in the directory")
        caller = caller.strip()
        if not caller:
            raise ReferralError("caller", "the caller's number is needed to call back")
        if not CALLBACK_NUMBER.fullmatch(caller) or sum(c.isdigit() for c in caller) < 3:
            raise ReferralError(
                "caller", f"{caller!r} is no number to call back: digits, +, -, spaces"
            )
        if len(caller) > 64 or len(caller_name) > 128 or len(note) > 2000:
            raise ReferralError("note", "too long: number 64, name 128, note 2000 characters")
        message = Message(
            id=f"msg-{secrets.token_hex(8)}",
            extension=extension,
            caller=caller,
            call_id=call_id,
            left_at=at,
            duration_s=0.0,
            recording="",
            deadline_at=self.calendar.add_working_days(at, 2),
            caller_name=caller_name.strip(),
            note=note.strip(),
            taken_by=taken_by,
        )
        await self.messages.add(message)
        log.info("message %s for %s taken by %s", message.id, extension, taken_by)
        self.on_change()
        return message

    # ----- the operators' and staff's other ways in: API and CLI (R2, R6, V2) -------------

    async def set_referral(
        self,
        extension: str,
        reason: int,
        start: datetime,
        end: datetime,
        set_by: str,
        source: Source,
        note: str | None = None,
    ) -> Referral:
        """Refer a person's phone from the API or the command line (R2, R3).

        Raises ``ReferralError`` (with the field at fault) for an unknown
        extension or reason, a time outside the calendar's years (1953–2100), a
        return not after the start, or a note over 200 characters or with
        control characters; ``StorageError`` when the database fails.
        """
        if extension not in self.staff:
            raise ReferralError("extension", f"{extension} is not a staff extension")
        if reason not in self.reasons:
            known = ", ".join(str(c) for c in sorted(self.reasons))
            raise ReferralError("reason", f"no reason code {reason} (known: {known})")
        if start.tzinfo is None or end.tzinfo is None:
            raise ReferralError("until", "times need a date, a time and a time zone")
        for field, at in (("from", start), ("until", end)):
            try:
                year = at.astimezone(self.calendar.tz).year
            except OverflowError:
                year = 0
            if year not in SUPPORTED_YEARS:
                first, last = SUPPORTED_YEARS[0], SUPPORTED_YEARS[-1]
                raise ReferralError(field, f"{at.isoformat()} is not within {first}–{last}")
        if end <= start:
            raise ReferralError("until", "the return time must be after the start")
        if note is not None and len(note) > 200:
            raise ReferralError("note", "at most 200 characters")
        if note is not None and not note.isprintable():
            raise ReferralError("note", "only printable text, on one line")
        referral = await self.store.set(extension, reason, start, end, set_by, source, note)
        self._changed()
        return referral

    async def clear_referral(
        self, extension: str, at: datetime, by: str | None = None
    ) -> Referral | None:
        """Open a person's phone (R4), recording who did (``by``, S1); None when no
        referral was in force."""
        if extension not in self.staff:
            raise ReferralError("extension", f"{extension} is not a staff extension")
        cleared = await self.store.clear(extension, at, by)
        self._changed()
        return cleared

    def _changed(self) -> None:
        try:
            self.on_change()
        except Exception:  # a listener must never undo a stored change
            log.exception("a listener of referral changes failed")

    async def set_pin(self, extension: str, pin: str) -> None:
        """Set a person's PIN (kept as a salted hash), which also ends a lock (R2, V1).

        Operators have one too: it is their web login (S1). Raises ``ReferralError``
        for an extension of neither the directory nor the operators (field
        "extension") or a PIN that is not 4–8 digits (field "pin"); ``StorageError``
        when the database fails.
        """
        if extension not in self.staff and extension not in self.operators:
            raise ReferralError("extension", f"{extension} is not a staff or operator extension")
        try:
            record = PinRecord.create(extension, pin)
        except ValueError as exc:
            raise ReferralError("pin", str(exc)) from None
        await self.pins.put(record)

    async def in_force_now(self, now: datetime) -> dict[str, Referral]:
        """Every referral in force, by extension (R6)."""
        return await self.store.all_in_force(now)

    async def ledger(
        self, now: datetime, unit: str | None = None, overdue_only: bool = False
    ) -> list[Message]:
        """The callback ledger, oldest first: one unit's staff only, or only the overdue (V2).

        Raises ``ReferralError`` for an unknown unit.
        """
        extensions = None
        if unit is not None:
            if unit not in {u.id for u in self.settings.units}:
                units = ", ".join(sorted(u.id for u in self.settings.units))
                raise ReferralError("unit", f"no unit {unit!r} (units: {units})")
            extensions = [p.extension for p in self.settings.unit_members(unit)]
        messages = await self.messages.ledger(extensions)
        return [m for m in messages if not overdue_only or m.overdue(now)]

    async def open_mailbox(self, extension: str, pin: str, now: datetime) -> list[Message]:
        """The person's messages not yet called back or deleted, oldest first, behind the PIN (V1).

        Raises ``CodeError`` (WRONG_PIN, LOCKED, UNKNOWN_EXTENSION).
        """
        if extension not in self.staff:
            raise CodeError(Problem.UNKNOWN_EXTENSION, f"{extension} has no mailbox")
        await self.check_pin(extension, pin, now, by=extension)
        # An operator's written message has nothing to play: the ledger and the
        # phone book show it.
        return [
            m
            for m in await self.messages.ledger([extension])
            if m.status in (Status.NEW, Status.HEARD) and m.recorded
        ]

    async def known_messages(self, message_ids: list[str]) -> set[str]:
        """Which of these messages the ledger holds, whatever their status (one query).
        Raises ``StorageError``."""
        return await self.messages.known(message_ids)

    async def mark(self, message_id: str, status: Status, at: datetime) -> Message | None:
        """Set a message's status from the phone: heard, deleted or called back (V1, V2)."""
        return await self.messages.mark(message_id, status, at)

    async def called_back(
        self, message_id: str, at: datetime, by: str | None = None
    ) -> Message | None:
        """Mark a message called back (V2), recording who did (``by``, S1); None if there is
        no such message."""
        return await self.messages.mark(message_id, Status.CALLED_BACK, at, by)

    async def message(self, message_id: str) -> Message | None:
        """One message of the ledger, or None."""
        return await self.messages.get(message_id)

    def _local(self, at: datetime | None) -> str | None:
        return None if at is None else at.astimezone(self.calendar.tz).isoformat()

    def announced_end(self, referral: Referral) -> datetime:
        """The return callers are told: ``end`` moved to when the switchboard and the
        person's unit are next open (R5, A7)."""
        return announced_return(
            referral.end, self.calendar, self._unit_calendar(referral.extension)
        )


def require_time_of_day(text: str, field: str) -> None:
    """Refuse a return written as a date alone ("2026-12-01"), which ISO 8601 reads as
    midnight: nobody is back at 00:00. Raises ``ReferralError`` naming ``field``."""
    if "T" not in text.upper() and " " not in text.strip():
        raise ReferralError(field, f"{text!r} has no time of day: write 2026-12-01T14:30")


class ReferralError(ValueError):
    """A referral or ledger request that cannot be carried out; ``field`` is the one at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
