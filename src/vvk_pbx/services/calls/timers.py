"""Timers as a port: start and cancel by key; tests replace them with a fake the test advances.

A key is ``(owner, kind)``: a call id and its timer's kind, or ``("queue",
extension)`` for an operator's busy pause. Starting a key that runs replaces it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

Key = tuple[str, str]


class Timers(Protocol):
    def start(self, key: Key, delay_s: float, fire: Callable[[], None]) -> None:
        """Call ``fire()`` after ``delay_s`` seconds unless cancelled or restarted first."""
        ...

    def cancel(self, key: Key) -> None: ...

    def cancel_owner(self, owner: str) -> None:
        """Cancel every timer of ``owner`` (a call that is over)."""
        ...


class LoopTimers:
    """Timers on the running event loop (``loop.call_later``), indexed by owner so that a
    call's end cancels its timers without a scan."""

    def __init__(self) -> None:
        self._handles: dict[str, dict[str, asyncio.TimerHandle]] = {}

    def start(self, key: Key, delay_s: float, fire: Callable[[], None]) -> None:
        self.cancel(key)
        handle = asyncio.get_running_loop().call_later(delay_s, self._fire, key, fire)
        self._handles.setdefault(key[0], {})[key[1]] = handle

    def _fire(self, key: Key, fire: Callable[[], None]) -> None:
        self._forget(key)
        fire()

    def _forget(self, key: Key) -> asyncio.TimerHandle | None:
        owned = self._handles.get(key[0])
        if owned is None:
            return None
        handle = owned.pop(key[1], None)
        if not owned:
            del self._handles[key[0]]
        return handle

    def cancel(self, key: Key) -> None:
        handle = self._forget(key)
        if handle is not None:
            handle.cancel()

    def cancel_owner(self, owner: str) -> None:
        for handle in self._handles.pop(owner, {}).values():
            handle.cancel()

    def __len__(self) -> int:
        return sum(len(owned) for owned in self._handles.values())
