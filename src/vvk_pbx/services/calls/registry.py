"""The calls in progress and their legs: what the controller keys events by.

A ``Line`` is one call: the flow's snapshot (``call``) and what the executor
keeps of its channels (bridge, playback, legs with their call-log records).
Leg channels are named ``<call id>:<purpose><n>``; playbacks
``<call id>:pb<n>`` with n from a ring of ``PLAYBACK_IDS``, so that a new
process can stop whatever an old one played (``playback_ids``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vvk_pbx.domain.callflow.call import Call
from vvk_pbx.domain.calls import Leg

# Ids of a call's playbacks cycle through this many: a playback id is reused
# only after 15 others, long after its events arrived; resync can stop every
# one a call may have running.
PLAYBACK_IDS = 16
# How long a call this process ended is never taken for an orphan: far longer
# than the call log's writer keeps a write pending.
FINISHED_KEEP = timedelta(hours=1)


def playback_ids(call_id: str) -> list[str]:
    """Every id a playback of the call can have."""
    return [f"{call_id}:pb{n}" for n in range(1, PLAYBACK_IDS + 1)]


@dataclass
class LiveLeg:
    """One leg: its call-log record, who it rings, and whether the controller ended it."""

    record: Leg
    who: str
    timeout_s: int
    hung_up: bool = False
    bridge: str | None = None  # the bridge it is in or joins: the call's or the consultation's


@dataclass
class Line:
    """One call in progress."""

    call: Call
    bridge: str | None = None
    consult_bridge: str | None = None  # the operator and the person asked, apart from the caller
    playback: str | None = None  # the id of the playback running now
    token: str | None = None  # the flow's name for it
    playbacks: int = 0
    legs: dict[str, LiveLeg] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.call.id

    def next_playback(self) -> str:
        self.playbacks += 1
        return f"{self.id}:pb{(self.playbacks - 1) % PLAYBACK_IDS + 1}"

    def live_legs(self) -> list[str]:
        """Legs whose channel has not ended, in creation order."""
        return [leg_id for leg_id, leg in self.legs.items() if leg.record.ended_at is None]


class Registry:
    """Calls in progress by id, legs by channel id, and the calls that ended lately."""

    def __init__(self) -> None:
        self.lines: dict[str, Line] = {}
        self.owner: dict[str, str] = {}  # leg id -> call id
        # Calls this process saw end (id -> real time), for the orphan check: their
        # last write may still be on its way to the database (a lock, an outage).
        self.finished: dict[str, datetime] = {}

    def key(self, channel_id: str) -> str:
        """The call a channel belongs to: a leg's events are ordered with its call's."""
        return self.owner.get(channel_id, channel_id)

    def add(self, call: Call) -> Line:
        line = self.lines[call.id] = Line(call)
        return line

    def line(self, call_id: str) -> Line | None:
        return self.lines.get(call_id)

    def line_of(self, channel_id: str) -> Line | None:
        """The call of a caller's or a leg's channel."""
        return self.lines.get(self.key(channel_id))

    def add_leg(self, line: Line, leg: LiveLeg) -> None:
        line.legs[leg.record.id] = leg
        self.owner[leg.record.id] = line.id

    def drop(self, line: Line, at: datetime) -> None:
        """The call is over: forget it and its legs; remember that it ended (``at``, real)."""
        self.lines.pop(line.id, None)
        for leg_id in line.legs:
            self.owner.pop(leg_id, None)
        self.finished[line.id] = at
        # Oldest first (insertion order): drop from the front what is old enough.
        cutoff = at - FINISHED_KEEP
        while self.finished:
            oldest = next(iter(self.finished))
            if self.finished[oldest] >= cutoff:
                break
            del self.finished[oldest]

    def __iter__(self) -> Iterator[Line]:
        return iter(list(self.lines.values()))

    def __len__(self) -> int:
        return len(self.lines)
