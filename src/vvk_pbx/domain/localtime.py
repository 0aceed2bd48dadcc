"""UTC times as the call log keeps them, as text, turned into local ISO 8601 text, fast.

An export turns four times a row into the site's local time. ``astimezone``
and ``isoformat`` per value cost about a microsecond each; a zone changes
its offset at most a few times a year, so ``LocalIso`` asks the zone once
per UTC hour and splices the rest of the text. The result is what
``datetime.astimezone(tz).isoformat()`` writes, character for character,
across daylight saving changes too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

# The form the call log's reads give times in (``storage.calllog.UTC_TEXT``):
# ``2026-03-29 00:59:59.250000``, always UTC, always six digits of microseconds.
_LENGTH = len("2026-03-29 00:59:59.250000")
_HOUR = timedelta(hours=1)
_LAST_INSTANT = timedelta(hours=1, microseconds=-1)


def utc_instant(text: str) -> datetime:
    """An aware UTC datetime from the call log's UTC text (``2026-03-29 00:59:59.250000``;
    also without the fraction, or with a ``T``). A text with an offset is taken as it
    says. Raises ``ValueError`` for a text that is no time."""
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class LocalIso:
    """``LocalIso(tz).iso("2026-10-25 00:30:00.000000")`` → ``"2026-10-25T02:30:00+02:00"``:
    the call log's UTC text as ISO 8601 in ``tz``, equal to
    ``utc_instant(text).astimezone(tz).isoformat()``.

    Fast for the call log's own form (26 characters) in an hour whose offset is
    whole hours and the same from its first to its last microsecond: then
    only the date and hour change, and the minutes, seconds and fraction are
    copied. Any other hour (a zone at +05:30, an hour with a change inside
    it) or any other text takes the exact way. ``iso`` raises ``ValueError``
    for a text that is no time. Callers bind ``iso`` once (``iso =
    local.iso``): it runs four times per exported row."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        # "2026-10-25 00" -> ("2026-10-25T02", "+02:00"): the hours the fast way takes.
        self._hours: dict[str, tuple[str, str]] = {}
        self._exact: set[str] = set()  # the hours it does not

    def iso(self, text: str) -> str:
        splice = self._hours.get(text[:13])
        if splice is not None and len(text) == _LENGTH:
            # isoformat() leaves out a fraction of zero microseconds.
            rest = text[13:19] if text.endswith("000000") else text[13:]
            return f"{splice[0]}{rest}{splice[1]}"
        return self._first_or_exact(text)

    def _first_or_exact(self, text: str) -> str:
        hour = text[:13]
        if len(text) == _LENGTH and hour not in self._hours and hour not in self._exact:
            splice = self._splice(text)
            if splice is not None:
                self._hours[hour] = splice
                return self.iso(text)
            self._exact.add(hour)
        return utc_instant(text).astimezone(self.tz).isoformat()

    def _splice(self, text: str) -> tuple[str, str] | None:
        """The local date and hour and the offset of ``text``'s UTC hour, or None where
        that hour takes the exact way."""
        if text[10] != " " or text[19] != ".":
            return None
        try:
            start = utc_instant(text).replace(minute=0, second=0, microsecond=0)
        except ValueError:
            return None  # the exact way then says what is wrong with it
        if text[:13] != f"{start:%Y-%m-%d %H}":
            return None
        first = start.astimezone(self.tz)
        offset = first.utcoffset()
        last = (start + _LAST_INSTANT).astimezone(self.tz).utcoffset()
        if offset is None or offset % _HOUR or last != offset:
            return None
        iso = first.isoformat()  # "2026-10-25T02:00:00+02:00"
        return iso[:13], iso[19:]
