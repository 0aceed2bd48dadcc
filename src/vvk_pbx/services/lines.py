"""The phones' line states for the live feed (issue 11): subscribed to at every ARI
connect, followed by ``DeviceStateChanged``.

At each connect (``resync``) the app subscribes ``deviceState:PJSIP/<ext>`` for
every phone of the directory and the switchboard, then reads each state once
(``GET /deviceStates/PJSIP%2F<ext>``), because a subscription tells changes
only. A failure is logged and leaves the states unknown: the line state is
for the eye, and must never keep the controller from calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from vvk_pbx.ari.client import AriError
from vvk_pbx.ari.models import DeviceStateChanged
from vvk_pbx.domain.lines import LineState, device_of, extension_of, line_state

log = logging.getLogger(__name__)


class DevicePort(Protocol):
    """What line states need of ARI (``AriClient``)."""

    async def subscribe(self, sources: Iterable[str]) -> None: ...
    async def device_state(self, device: str) -> str: ...


class LineStates:
    """The line state of each phone, by extension; ``on_change()`` after any change
    (it must not raise)."""

    def __init__(self, ari: DevicePort, extensions: Iterable[str]) -> None:
        self.ari = ari
        self.states: dict[str, LineState] = dict.fromkeys(extensions, LineState.UNKNOWN)
        self.on_change: Callable[[], None] = lambda: None

    async def resync(self) -> None:
        """Subscribe to every phone's device state and read each once (at every connect)."""
        extensions = sorted(self.states)
        try:
            await self.ari.subscribe(f"deviceState:{device_of(ext)}" for ext in extensions)
            found = await asyncio.gather(
                *(self.ari.device_state(device_of(ext)) for ext in extensions)
            )
        except AriError as exc:
            log.warning("line states not followed (the console shows them unknown): %s", exc)
            self.states = dict.fromkeys(extensions, LineState.UNKNOWN)
        else:
            self.states = {
                ext: line_state(state) for ext, state in zip(extensions, found, strict=True)
            }
        self.on_change()

    def changed(self, event: DeviceStateChanged) -> None:
        """A phone's device state changed; other devices (not ours) are ignored."""
        extension = extension_of(event.device)
        if extension is None or extension not in self.states:
            return
        state = line_state(event.state)
        if self.states[extension] is not state:
            self.states[extension] = state
            self.on_change()

    def as_json(self) -> dict[str, str]:
        """``{"1101": "idle", ...}``, by extension."""
        return {ext: state.value for ext, state in sorted(self.states.items())}
