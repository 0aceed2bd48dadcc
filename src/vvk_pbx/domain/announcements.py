"""What callers hear, as lists of prompt names (``vvk/<name>``): composed here, spoken by Asterisk.

Prompts are the catalogue of ``vvk_pbx.asterisk.prompts.catalogue``; this
module only chooses and orders them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def sound(name: str) -> str:
    """The ARI media URI of one of our prompts."""
    return f"sound:vvk/{name}"


def clock(hour: int, minute: int) -> list[str]:
    """``klockan 8``, ``klockan 14 30`` or ``klockan 14 noll 5`` as prompt names: as
    the clock is read aloud in Swedish, a minute under ten has its "noll"."""
    words = ["at-clock", f"num-{hour}"]
    if minute:
        words += ["num-0", f"num-{minute}"] if minute < 10 else [f"num-{minute}"]
    return words


def next_opening(now: datetime, opens: datetime) -> list[str]:
    """``Växeln öppnar igen måndag klockan 8`` (H5), both instants in local time.

    The day is "i dag", "i morgon", or the weekday for later days.
    """
    days = (opens.date() - now.date()).days
    if days == 0:
        day = "today"
    elif days == 1:
        day = "tomorrow"
    else:
        day = f"day-{opens.weekday()}"
    return ["opens-again", day, *clock(opens.hour, opens.minute)]


def answering_machine(
    now: datetime, opens: datetime | None, on_call_digits: Iterable[str]
) -> list[str]:
    """The central answering machine's message (H5): welcome, closed, the hours, when it
    opens next, and each on-call service with its number and digit."""
    names = ["welcome", "closed", "hours"]
    if opens is not None:
        names += next_opening(now, opens)
    names += [f"on-call-{digit}" for digit in on_call_digits]
    return [sound(name) for name in names]
