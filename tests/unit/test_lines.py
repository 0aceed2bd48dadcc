"""Line states from Asterisk's device states (issue 11), and what a failing ARI leaves."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from vvk_pbx.ari.client import AriUnavailableError
from vvk_pbx.ari.models import DeviceStateChanged
from vvk_pbx.domain.lines import LineState, extension_of, line_state
from vvk_pbx.services.lines import LineStates


def test_device_states_map_to_what_the_console_says() -> None:
    assert line_state("NOT_INUSE") is LineState.IDLE
    assert line_state("RINGING") is LineState.RINGING
    for busy in ("INUSE", "BUSY", "ONHOLD", "RINGINUSE"):
        assert line_state(busy) is LineState.BUSY
    assert line_state("UNAVAILABLE") is LineState.UNAVAILABLE
    assert line_state("INVALID") is LineState.UNAVAILABLE
    assert line_state("what") is LineState.UNKNOWN
    assert extension_of("PJSIP/1101") == "1101"
    assert extension_of("SIP/1101") is None and extension_of("PJSIP/") is None


class Port:
    def __init__(self, states: dict[str, str], fail: bool = False) -> None:
        self.states, self.fail = states, fail
        self.sources: list[str] = []

    async def subscribe(self, sources: Iterable[str]) -> None:
        if self.fail:
            raise AriUnavailableError("ARI is down")
        self.sources = list(sources)

    async def device_state(self, device: str) -> str:
        return self.states.get(device, "UNKNOWN")


def _changed(device: str, state: str) -> DeviceStateChanged:
    return DeviceStateChanged("DeviceStateChanged", "vvk-pbx", datetime.now(UTC), {}, device, state)


async def test_line_states_read_at_connect_then_follow_changes() -> None:
    port = Port({"PJSIP/1101": "INUSE"})
    lines = LineStates(port, ["1102", "1101"])
    told: list[dict[str, str]] = []
    lines.on_change = lambda: told.append(lines.as_json())
    await lines.resync()
    assert port.sources == ["deviceState:PJSIP/1101", "deviceState:PJSIP/1102"]
    assert told == [{"1101": "busy", "1102": "unknown"}]
    lines.changed(_changed("PJSIP/1102", "RINGING"))
    lines.changed(_changed("PJSIP/1102", "RINGING"))  # no change: nothing told
    lines.changed(_changed("PJSIP/9999", "INUSE"))  # not our phone
    lines.changed(_changed("Local/1102@x", "INUSE"))
    assert told[1:] == [{"1101": "busy", "1102": "ringing"}]


async def test_an_ari_that_fails_leaves_every_line_unknown_and_raises_nothing() -> None:
    lines = LineStates(Port({}, fail=True), ["1101"])
    lines.states["1101"] = LineState.BUSY
    await lines.resync()
    assert lines.as_json() == {"1101": "unknown"}
