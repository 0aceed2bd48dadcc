"""Voicemail messages and the callback ledger's rule (V1, V2): pure data, no I/O.

A message's deadline is its arrival plus 2 working days on the H2 calendar
(``Calendar.add_working_days``); it is overdue from then until it is called
back. Deleting a message removes it from the staff member's mailbox, not from
the ledger: the caller still waits for an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    HEARD = "heard"
    CALLED_BACK = "called_back"
    DELETED = "deleted"


@dataclass(frozen=True)
class Message:
    """A voicemail message and its place in the callback ledger. Times are aware."""

    id: str
    extension: str
    caller: str
    call_id: str | None
    left_at: datetime
    duration_s: float
    recording: str
    deadline_at: datetime
    status: Status = Status.NEW
    called_back_at: datetime | None = None
    called_back_by: str | None = None  # who marked it (S1): an extension or a token
    # A message an operator took on the console (issue 11): no recording (""), the
    # caller's name and the operator's note, and who took it.
    caller_name: str = ""
    note: str = ""
    taken_by: str | None = None

    @property
    def recorded(self) -> bool:
        """A voicemail recording to listen to, not an operator's written message."""
        return bool(self.recording)

    def overdue(self, now: datetime) -> bool:
        """Not called back by its deadline (V2). Deleting the recording does not answer
        the caller, so a deleted message not called back is overdue too."""
        return self.status is not Status.CALLED_BACK and now >= self.deadline_at

    @property
    def late(self) -> bool:
        """Called back, but after its deadline (V2: what the monthly follow-up counts)."""
        return self.called_back_at is not None and self.called_back_at > self.deadline_at
