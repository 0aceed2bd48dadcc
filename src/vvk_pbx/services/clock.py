"""The one clock every decision reads, and the real time the call log keeps.

``Clock.now()`` is the controller's time: opening hours, referrals in force,
busy pauses, deadlines and the queue's order all read it, and ``--clock``
shifts it for demos and tests (the CLI and the API follow the shift of a
running controller, ``stores.cli_clock``). ``Clock.real()`` is the
unshifted time: the timeline of Asterisk's event timestamps, which the call
log keeps (A1), used only where no Asterisk event gives a time. In production
the two are the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """The port: tests give a fake one that they move by hand."""

    def now(self) -> datetime:
        """The time every decision uses (aware, UTC)."""
        ...

    def real(self) -> datetime:
        """The real time (aware, UTC): the call log's timeline, never a decision's."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """The machine's clock, shifted by ``offset`` (zero unless ``--clock`` is given)."""

    offset: timedelta = timedelta(0)

    @classmethod
    def as_if(cls, at: datetime | None) -> SystemClock:
        """A clock whose now is ``at`` at this moment (aware), running on from there."""
        return cls() if at is None else cls(at - datetime.now(UTC))

    @property
    def shifted(self) -> bool:
        return self.offset != timedelta(0)

    def real(self) -> datetime:
        return datetime.now(UTC)

    def now(self) -> datetime:
        return self.real() + self.offset
