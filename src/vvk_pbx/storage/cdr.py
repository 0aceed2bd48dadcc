"""Asterisk's call detail records as ``cdr_custom`` writes them (``dialplan/cdr_custom.conf``):
the account of the calls that the dialplan fallback handled while no controller ran
(issue 13, A1: every call in the call log).

The file is appended to by Asterisk, one CSV line per caller and party, when a
call ends. ``CdrFile.read_new`` returns the lines added since the last read it
was told were used (``commit``): a database that fails meanwhile costs
nothing, the lines are read again next time.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

CDR_FILE = "vvk-calls.csv"  # in <astlogdir>/cdr-custom/, as cdr_custom.conf names it
# The fields of a line, in cdr_custom.conf's order.
COLUMNS = (
    "uniqueid",
    "fallback",
    "src",
    "dst",
    "dstchannel",
    "start",
    "answer",
    "end",
    "disposition",
    "name",
)


@dataclass(frozen=True)
class CdrLine:
    """One CDR: the caller's channel id (our call id), the fallback's kind of call
    (``inbound``/``internal``; empty for a call a controller had), the caller and what
    was dialled, the party (the channel dialled, if any) and the times, aware UTC."""

    call_id: str
    fallback: str
    caller: str
    dialed: str
    party: str
    start: datetime
    answer: datetime | None
    end: datetime
    disposition: str
    name: str


def _instant(text: str) -> datetime | None:
    """CDR(...,u): epoch seconds with a fraction; empty or 0 for none."""
    try:
        value = float(text)
    except ValueError:
        return None
    return datetime.fromtimestamp(value, UTC) if value > 0 else None


def parse(text: str) -> list[CdrLine]:
    """The well-formed lines of ``text``; a line that is not (a half-written last line,
    a stray edit) is skipped and logged."""
    found = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) != len(COLUMNS):
            log.warning("CDR: a line of %d fields, not %d, skipped", len(row), len(COLUMNS))
            continue
        fields = dict(zip(COLUMNS, row, strict=True))
        start, end = _instant(fields["start"]), _instant(fields["end"])
        if not fields["uniqueid"] or start is None or end is None:
            log.warning("CDR: a line without a call id or times, skipped")
            continue
        found.append(
            CdrLine(
                fields["uniqueid"],
                fields["fallback"],
                fields["src"],
                fields["dst"],
                fields["dstchannel"],
                start,
                _instant(fields["answer"]),
                end,
                fields["disposition"],
                fields["name"],
            )
        )
    return found


class CdrFile:
    """The CDR file at ``path``, read from where the last used read ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self) -> tuple[list[CdrLine], int]:
        """The complete lines added since the committed offset, and the offset after
        them. A missing file is no lines; a file shorter than the offset (rotated,
        or Asterisk's log folder emptied) is read from its start."""
        try:
            with self.path.open("rb") as source:
                size = source.seek(0, io.SEEK_END)
                start = self.offset if self.offset <= size else 0
                source.seek(start)
                data = source.read()
        except FileNotFoundError:
            return [], 0
        whole = data[: data.rfind(b"\n") + 1]  # a line Asterisk is still writing waits
        return parse(whole.decode("utf-8", errors="replace")), start + len(whole)

    def commit(self, offset: int) -> None:
        """The lines up to ``offset`` are in the call log: not read again."""
        self.offset = offset
