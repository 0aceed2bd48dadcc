"""A phone's line state as the console shows it (issue 11, R6): from Asterisk's device state.

Asterisk keeps a device state per endpoint (``PJSIP/1101``), the same one
BLF lamps show; ARI reports it with ``DeviceStateChanged`` to an app that
subscribed ``deviceState:PJSIP/1101`` (checked on Asterisk 22.10: RINGING
when the phone rings, INUSE once answered, NOT_INUSE again after).
"""

from __future__ import annotations

from enum import StrEnum


class LineState(StrEnum):
    IDLE = "idle"  # ledig
    RINGING = "ringing"  # ringer
    BUSY = "busy"  # upptagen: on a call, on hold, or a second call ringing in
    UNAVAILABLE = "unavailable"  # not registered or unreachable
    UNKNOWN = "unknown"  # Asterisk does not know (yet)


# Asterisk's device states (include/asterisk/devicestate.h, ast_devstate_str).
DEVICE_STATES = {
    "NOT_INUSE": LineState.IDLE,
    "INUSE": LineState.BUSY,
    "BUSY": LineState.BUSY,
    "ONHOLD": LineState.BUSY,
    "RINGINUSE": LineState.BUSY,  # on a call, and another rings: the person is busy
    "RINGING": LineState.RINGING,
    "UNAVAILABLE": LineState.UNAVAILABLE,
    "INVALID": LineState.UNAVAILABLE,
    "UNKNOWN": LineState.UNKNOWN,
}


def line_state(device_state: str) -> LineState:
    """The line state of an Asterisk device state; an unknown word is ``UNKNOWN``."""
    return DEVICE_STATES.get(device_state.upper(), LineState.UNKNOWN)


def device_of(extension: str) -> str:
    """The device of a phone of ours: ``PJSIP/<extension>`` (dialplan and pjsip.conf)."""
    return f"PJSIP/{extension}"


def extension_of(device: str) -> str | None:
    """The extension of ``PJSIP/<extension>``, None for another technology."""
    tech, _, resource = device.partition("/")
    return resource if tech.upper() == "PJSIP" and resource else None
