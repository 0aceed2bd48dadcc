"""Typed ARI events and resources: the ones the controller uses, and a generic fallback.

Field names follow the ARI REST API description Asterisk ships
(``rest-api/events.json``, ``channels.json``). ``timestamp`` is Asterisk's own
time of the event (ISO 8601 with offset, millisecond precision); call timing
uses it, never the time an event arrived.

Parsing is hand-written on purpose: at 100 calls/s the controller parses
thousands of events a second, and these dataclasses cost a fraction of a
validating model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Channel:
    """An ARI channel (``channels.json`` ``Channel``)."""

    id: str
    name: str
    state: str
    caller_number: str
    caller_name: str
    exten: str
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, raw: Json) -> Channel:
        caller = raw.get("caller") or {}
        dialplan = raw.get("dialplan") or {}
        return cls(
            id=str(raw.get("id", "")),
            name=str(raw.get("name", "")),
            state=str(raw.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            exten=str(dialplan.get("exten", "")),
            raw=raw,
        )


@dataclass(frozen=True)
class Bridge:
    """An ARI bridge (``bridges.json`` ``Bridge``): its id and the channels in it."""

    id: str
    channels: tuple[str, ...]

    @classmethod
    def parse(cls, raw: Json) -> Bridge:
        channels = raw.get("channels") or []
        return cls(id=str(raw.get("id", "")), channels=tuple(str(c) for c in channels))


@dataclass(frozen=True)
class Playback:
    """An ARI playback (``playbacks.json`` ``Playback``)."""

    id: str
    media_uri: str
    target_uri: str
    state: str

    @classmethod
    def parse(cls, raw: Json) -> Playback:
        return cls(
            id=str(raw.get("id", "")),
            media_uri=str(raw.get("media_uri", "")),
            target_uri=str(raw.get("target_uri", "")),
            state=str(raw.get("state", "")),
        )


@dataclass(frozen=True)
class LiveRecording:
    """An ARI live recording (``recordings.json`` ``LiveRecording``); durations in seconds."""

    name: str
    target_uri: str
    state: str
    duration_s: int | None
    cause: str

    @classmethod
    def parse(cls, raw: Json) -> LiveRecording:
        duration = raw.get("duration")
        return cls(
            name=str(raw.get("name", "")),
            target_uri=str(raw.get("target_uri", "")),
            state=str(raw.get("state", "")),
            duration_s=int(duration) if isinstance(duration, int | float) else None,
            cause=str(raw.get("cause", "")),
        )


@dataclass(frozen=True)
class Event:
    """Any ARI event. Known types are subclasses; others stay this generic form."""

    type: str
    application: str
    timestamp: datetime | None
    raw: Json = field(repr=False, compare=False)

    @property
    def channel_id(self) -> str | None:
        """The channel the event is about, if any: the key for per-call ordering."""
        channel = self.raw.get("channel")
        return str(channel["id"]) if isinstance(channel, dict) and "id" in channel else None


@dataclass(frozen=True)
class StasisStart(Event):
    channel: Channel
    args: tuple[str, ...]
    replace_channel: Channel | None


@dataclass(frozen=True)
class StasisEnd(Event):
    channel: Channel


@dataclass(frozen=True)
class ChannelDtmfReceived(Event):
    channel: Channel
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class ChannelStateChange(Event):
    channel: Channel


@dataclass(frozen=True)
class ChannelHangupRequest(Event):
    channel: Channel
    cause: int


@dataclass(frozen=True)
class ChannelDestroyed(Event):
    channel: Channel
    cause: int
    cause_txt: str


@dataclass(frozen=True)
class Dial(Event):
    """Progress of a dial: ``dialstatus`` is "" (started), RINGING, ANSWER, BUSY, NOANSWER, CANCEL, ..."""

    peer: Channel
    caller: Channel | None
    dialstatus: str
    dialstring: str

    @property
    def channel_id(self) -> str | None:
        return self.peer.id


@dataclass(frozen=True)
class DeviceStateChanged(Event):
    """A device's state changed (``deviceState:<name>`` subscription): ``device`` is
    ``PJSIP/1101``, ``state`` one of Asterisk's NOT_INUSE, INUSE, BUSY, RINGING,
    RINGINUSE, ONHOLD, UNAVAILABLE, INVALID, UNKNOWN."""

    device: str
    state: str


@dataclass(frozen=True)
class PlaybackStarted(Event):
    playback: Playback

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.playback)


@dataclass(frozen=True)
class PlaybackFinished(Event):
    playback: Playback

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.playback)


@dataclass(frozen=True)
class ChannelTransfer(Event):
    """A phone asked for a transfer (SIP REFER) on a channel with ari-only transfer handling.

    ``events.json`` ``ChannelTransfer`` (Asterisk ≥ 22.3): ``source`` is the
    REFER-ing channel (``referred_by.source_channel``), ``destination`` the
    user part of the Refer-To URI. The first event has no ``state``; Asterisk
    repeats the event with a state for each progress the app reports.
    """

    source: Channel
    destination: str
    state: str

    @property
    def channel_id(self) -> str | None:
        return self.source.id


@dataclass(frozen=True)
class RecordingFinished(Event):
    """A recording ended (its maximum length, silence, the terminating digit or a hangup)."""

    recording: LiveRecording

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.recording)


@dataclass(frozen=True)
class RecordingFailed(Event):
    recording: LiveRecording

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.recording)


def _target_channel(media: Playback | LiveRecording) -> str | None:
    prefix = "channel:"
    return media.target_uri[len(prefix) :] if media.target_uri.startswith(prefix) else None


def parse_timestamp(value: Any) -> datetime | None:
    """ARI's ``2026-11-29T19:22:35.157+0000`` (or with ``+00:00``) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _channel(raw: Json, key: str) -> Channel | None:
    value = raw.get(key)
    return Channel.parse(value) if isinstance(value, dict) else None


def parse_event(raw: Json) -> Event:
    """A typed event for the types the controller uses; ``Event`` for any other.

    Never raises for a JSON object: a known type with missing or malformed
    fields falls back to the generic ``Event``.
    """
    kind = str(raw.get("type", ""))
    base = (kind, str(raw.get("application", "")), parse_timestamp(raw.get("timestamp")), raw)
    typed = _TYPED.get(kind)
    if typed is None:
        return Event(*base)
    cls, fields = typed
    try:
        return cls(*base, **fields(raw))
    except (KeyError, TypeError, ValueError, AttributeError):
        return Event(*base)


def _need_channel(raw: Json, key: str = "channel") -> Channel:
    channel = _channel(raw, key)
    if channel is None:
        raise KeyError(key)
    return channel


def _channel_only(raw: Json) -> dict[str, Any]:
    return {"channel": _need_channel(raw)}


def _playback_only(raw: Json) -> dict[str, Any]:
    return {"playback": Playback.parse(raw["playback"])}


# Each known type: its class, and how to read its own fields from the JSON.
_TYPED: dict[str, tuple[type[Event], Callable[[Json], dict[str, Any]]]] = {
    "StasisStart": (
        StasisStart,
        lambda r: {
            "channel": _need_channel(r),
            "args": tuple(str(a) for a in r.get("args", [])),
            "replace_channel": _channel(r, "replace_channel"),
        },
    ),
    "StasisEnd": (StasisEnd, _channel_only),
    "ChannelDtmfReceived": (
        ChannelDtmfReceived,
        lambda r: {
            "channel": _need_channel(r),
            "digit": str(r["digit"]),
            "duration_ms": int(r.get("duration_ms", 0)),
        },
    ),
    "ChannelStateChange": (ChannelStateChange, _channel_only),
    "ChannelHangupRequest": (
        ChannelHangupRequest,
        lambda r: {"channel": _need_channel(r), "cause": int(r.get("cause", 0))},
    ),
    "ChannelDestroyed": (
        ChannelDestroyed,
        lambda r: {
            "channel": _need_channel(r),
            "cause": int(r.get("cause", 0)),
            "cause_txt": str(r.get("cause_txt", "")),
        },
    ),
    "Dial": (
        Dial,
        lambda r: {
            "peer": _need_channel(r, "peer"),
            "caller": _channel(r, "caller"),
            "dialstatus": str(r.get("dialstatus", "")),
            "dialstring": str(r.get("dialstring", "")),
        },
    ),
    "ChannelTransfer": (
        ChannelTransfer,
        lambda r: {
            "source": _need_channel(r["referred_by"], "source_channel"),
            "destination": str(r["refer_to"]["requested_destination"].get("destination", "")),
            "state": str(r.get("state", "")),
        },
    ),
    "RecordingFinished": (
        RecordingFinished,
        lambda r: {"recording": LiveRecording.parse(r["recording"])},
    ),
    "RecordingFailed": (
        RecordingFailed,
        lambda r: {"recording": LiveRecording.parse(r["recording"])},
    ),
    "DeviceStateChanged": (
        DeviceStateChanged,
        lambda r: {
            "device": str(r["device_state"]["name"]),
            "state": str(r["device_state"]["state"]),
        },
    ),
    "PlaybackStarted": (PlaybackStarted, _playback_only),
    "PlaybackFinished": (PlaybackFinished, _playback_only),
}

# The event types the controller asks Asterisk for (PUT /applications/{app}/eventFilter):
# only those it acts on. One bridged call produces about 75 events, 48 of them
# ChannelVarset (../shared/design/asterisk-notes.md); with this filter it is
# about 9 (two StasisStart, two StasisEnd, two ChannelDestroyed, three Dial). A
# caller's end is its StasisEnd (it may live on in the dialplan); a leg's is its
# ChannelDestroyed, whose cause is the only word of a busy or unanswered phone:
# ARI's dial sends no Dial BUSY or NOANSWER (checked on Asterisk 22.10).
USED_EVENT_TYPES: tuple[str, ...] = (
    "StasisStart",
    "StasisEnd",
    "ChannelDestroyed",
    "Dial",
    "ChannelDtmfReceived",
    "PlaybackFinished",
    "ChannelTransfer",
    "RecordingFinished",
    "RecordingFailed",
    "ApplicationReplaced",
    "DeviceStateChanged",  # the staff phones' line state on the console (issue 11)
)
