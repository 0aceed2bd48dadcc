"""Retention (S1): what is older than ``[retention]`` says goes, once a day.

The controller runs ``sweep`` at start and every ``EVERY_S`` after. Call-log
rows (with their legs) and the export audit log are deleted; a voicemail
message loses its audio (deleted from Asterisk's spool through ARI), but its
row stays in the callback ledger, since the callback is a record of its own.
A failure is logged and retried the next day; it never touches a call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from vvk_pbx.config.model import Retention

log = logging.getLogger(__name__)

EVERY_S = 24 * 3600


class Deleting(Protocol):
    async def delete_before(self, cutoff: datetime) -> int: ...


class Recordings(Protocol):
    async def forget_recordings(self, before: datetime) -> list[str]: ...


@dataclass(frozen=True)
class Swept:
    """What one sweep deleted."""

    calls: int
    recordings: int
    exports: int


class RetentionJob:
    def __init__(
        self,
        rules: Retention,
        calls: Deleting,
        messages: Recordings,
        audit: Deleting,
        delete_audio: Callable[[str], Awaitable[None]],
    ) -> None:
        self.rules = rules
        self.calls = calls
        self.messages = messages
        self.audit = audit
        self.delete_audio = delete_audio

    async def sweep(self, now: datetime) -> Swept:
        """Delete what is past its time at ``now``; raises ``StorageError``. A recording
        Asterisk no longer has counts as deleted; another ARI failure is logged."""
        rules = self.rules
        calls = await self.calls.delete_before(now - timedelta(days=rules.calls_days))
        names = await self.messages.forget_recordings(
            now - timedelta(days=rules.voicemail_audio_days)
        )
        for name in names:
            try:
                await self.delete_audio(name)
            except Exception as exc:  # the row no longer points at it: logged, not retried
                log.warning("retention: the recording %s was not deleted: %s", name, exc)
        exports = await self.audit.delete_before(now - timedelta(days=rules.audit_days))
        swept = Swept(calls, len(names), exports)
        log.info(
            "retention: deleted %d call(s) older than %d days, %d recording(s) older than "
            "%d days, %d export record(s) older than %d days",
            calls,
            rules.calls_days,
            swept.recordings,
            rules.voicemail_audio_days,
            exports,
            rules.audit_days,
        )
        return swept

    async def run(self, now: Callable[[], datetime]) -> None:
        """Sweep at once and every ``EVERY_S`` until cancelled; failures are logged."""
        while True:
            try:
                await self.sweep(now())
            except Exception:
                log.exception("retention: the sweep failed; trying again in a day")
            await asyncio.sleep(EVERY_S)
