"""The states of one call: each a type with the data it needs, nothing else.

Which feature owns a state (``flows/``)::

    Routing                         arrival; the route decides (domain.routing)
    Announcing(round)               the answering machine (H5)
    Queued, Ringing(OPERATOR|OVERFLOW)   the operator queue (A3, A4, A6)
    Reaching, Ringing(PERSON|COLLEAGUE), Menu   a person's phone (A5, R5)
    VoicemailPrompt, Recording      voicemail (V1, V2)
    ReadingCode                     a staff dial code (R2, R4)
    PinEntry, Mailbox               the mailbox (V1)
    Connected, Ringing(TRANSFER)    transfer (A5)
    Parked, Consulting              the operator's console (park, koppla med förfrågan)
    Ringing(ON_CALL)                the answering machine's on-call numbers (H5)
    Farewell, Done, HandedOver      the end of every flow

Pure data: no asyncio, no ARI, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vvk_pbx.domain.calls import Outcome
from vvk_pbx.domain.voicemail import Message


class Purpose(StrEnum):
    """Why a leg rings; its value names the leg (``<call id>:<purpose><n>``)."""

    OPERATOR = "op"  # the operator queue offers the call (A3)
    OVERFLOW = "ovf"  # nobody answered in time: the overflow group (A6)
    PERSON = "ext"  # a direct or internal call to a person (A5)
    COLLEAGUE = "col"  # 1 in the referral menu: a colleague in the unit (A5, R5)
    ON_CALL = "oncall"  # a digit in the answering machine: an on-call number (H5)
    TRANSFER = "xfer"  # an operator's blind transfer (A5)
    CONSULT = "cons"  # an operator asks a person first (koppla med förfrågan, A5)


class Timer(StrEnum):
    """A call's timers; a timer of a kind replaces the running one of that kind."""

    OVERFLOW = "overflow"  # queue.overflow_after_s without a person answering (A6)
    PIN_WAIT = "pin-wait"  # the PIN prompt ended and no key came (V1)
    RECALL = "recall"  # a parked caller rings the operator who parked them again


@dataclass(frozen=True)
class Routing:
    """Arrived; the route has not been carried out yet."""


@dataclass(frozen=True)
class Announcing:
    """The central answering machine: ``round`` 1 the message, 2 its repeat, 3 goodbye (H5).
    An on-call digit connects in every round."""

    round: int


@dataclass(frozen=True)
class Queued:
    """In line for an operator (A4), until the queue offers one or the call overflows (A6)."""


@dataclass(frozen=True)
class Ringing:
    """Phones ring for the caller; ``legs`` are those still ringing. ``person`` is the one
    sought (a person's phone, a colleague's or a transfer's target), whose menu the
    caller gets when nobody answers (R5)."""

    purpose: Purpose
    legs: frozenset[str]
    person: str | None = None


@dataclass(frozen=True)
class Connected:
    """A person talks with the caller on ``leg``; ``who`` is their extension or number."""

    leg: str
    who: str


@dataclass(frozen=True)
class Parked:
    """An operator (``by``) parked the caller, who hears the ring tone until the recall
    (``Timer.RECALL``) or an operator's pick puts them back to the switchboard."""

    by: str


@dataclass(frozen=True)
class Consulting:
    """*Koppla med förfrågan*: the operator on ``leg`` (``who``) talks to ``to`` apart
    from the caller, who holds hearing the ring tone. ``legs``: ``to``'s phones still
    ringing; ``talking``: ``to``'s answered leg. Then complete (the caller to ``to``)
    or take back (the caller to the operator again)."""

    leg: str
    who: str
    to: str
    legs: frozenset[str] = frozenset()
    talking: str | None = None


@dataclass(frozen=True)
class Reaching:
    """Looking up whether ``person`` is referred before the phone rings (R5); ``purpose``
    is PERSON for a call to them, TRANSFER for an operator's transfer."""

    person: str
    purpose: Purpose


@dataclass(frozen=True)
class Menu:
    """The referral menu for ``person`` (R5): 1 a colleague, 2 voicemail, 0 the
    switchboard. ``plays`` counts the replays: after two the call moves on."""

    person: str
    plays: int = 0


@dataclass(frozen=True)
class VoicemailPrompt:
    """ "Lämna ett meddelande efter tonen" plays; the recording starts after it (V1)."""

    person: str


@dataclass(frozen=True)
class Recording:
    """The caller's message is being recorded as ``name`` (V1). ``started_at`` is
    Asterisk's time of the prompt's end: the length of a message ended by hanging up."""

    person: str
    name: str
    started_at: datetime


@dataclass(frozen=True)
class ReadingCode:
    """A staff dial code is being carried out by the referral service (R2, R4)."""

    dialed: str


@dataclass(frozen=True)
class PinEntry:
    """The mailbox asks for the PIN (V1): ``digits`` so far, ``tries`` wrong ones."""

    digits: str = ""
    tries: int = 0


@dataclass(frozen=True)
class Mailbox:
    """A message of the person's mailbox plays (V1): 1 next, 3 delete, 5 called back."""

    current: Message
    rest: tuple[Message, ...]


@dataclass(frozen=True)
class Farewell:
    """A last prompt plays; then the call is hung up, ending as ``outcome`` (``why``
    goes into the trace)."""

    outcome: Outcome
    why: str


@dataclass(frozen=True)
class Done:
    """Over for the controller: ended or hung up; the caller's channel is leaving."""


@dataclass(frozen=True)
class HandedOver:
    """Given to the dialplan (the fallback); the caller's channel leaves our app."""


State = (
    Routing
    | Announcing
    | Queued
    | Ringing
    | Connected
    | Parked
    | Consulting
    | Reaching
    | Menu
    | VoicemailPrompt
    | Recording
    | ReadingCode
    | PinEntry
    | Mailbox
    | Farewell
    | Done
    | HandedOver
)


def label(state: State) -> str:
    """A short name for the transition log: ``Ringing(op: c3:op1, c3:op2)``."""
    match state:
        case Announcing(round=n):
            return f"Announcing({n})"
        case Ringing(purpose=purpose, legs=legs):
            return f"Ringing({purpose.value}: {', '.join(sorted(legs)) or '-'})"
        case Connected(leg=leg, who=who):
            return f"Connected({who} on {leg})"
        case Parked(by=by):
            return f"Parked(by {by})"
        case Consulting(who=who, to=to, talking=talking):
            return f"Consulting({who} asks {to}{', talking' if talking else ''})"
        case Reaching(person=p) | Menu(person=p) | VoicemailPrompt(person=p) | Recording(person=p):
            return f"{type(state).__name__}({p})"
        case PinEntry(tries=tries):
            return f"PinEntry(tries={tries})"
        case Mailbox(current=message, rest=rest):
            return f"Mailbox({message.id}, {len(rest)} more)"
        case Farewell(outcome=outcome):
            return f"Farewell({outcome.value})"
    return type(state).__name__
