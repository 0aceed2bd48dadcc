"""Call events: what happened to one call, as plain data.

``services/calls`` translates ARI events into these (and posts its own:
offers, timers, the API's transfers, the answers of the services the flows
asked). Times named ``at`` are Asterisk's own timestamps: the call log's
timeline (A1), never the controller's clock, which decisions read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vvk_pbx.domain.callflow.states import Timer
from vvk_pbx.domain.dialcodes import Problem
from vvk_pbx.domain.routing import CallKind
from vvk_pbx.domain.voicemail import Message


@dataclass(frozen=True)
class Arrived:
    """The caller's channel entered our app (its StasisStart)."""

    kind: CallKind
    caller: str
    dialed: str
    at: datetime
    name: str = ""  # the caller's display name, as the trunk or phone sent it


@dataclass(frozen=True)
class Digit:
    """The caller pressed a key (RFC 4733 DTMF)."""

    digit: str


@dataclass(frozen=True)
class PromptDone:
    """The prompt the flow started as ``token`` played to its end."""

    token: str
    at: datetime


@dataclass(frozen=True)
class PromptFailed:
    """The prompt ``token`` ended without playing (the caller hung up during it)."""

    token: str


@dataclass(frozen=True)
class LegRinging:
    """A leg's phone rings (Dial RINGING)."""

    leg: str
    at: datetime


@dataclass(frozen=True)
class LegAnswered:
    """A person answered on a leg (Dial ANSWER); ``who`` is the extension or number rung."""

    leg: str
    who: str
    at: datetime


@dataclass(frozen=True)
class LegFailed:
    """A leg will not be answered: ``status`` is the Dial status (BUSY, NOANSWER,
    CHANUNAVAIL, CONGESTION, CANCEL, ...), CHANUNAVAIL too when Asterisk could not
    make the channel at all (a phone that is not registered)."""

    leg: str
    status: str


@dataclass(frozen=True)
class LegGone:
    """A leg's channel left our app (hung up)."""

    leg: str
    at: datetime


@dataclass(frozen=True)
class CallerGone:
    """The caller's channel left our app: hung up, or handed to the dialplan."""

    at: datetime


@dataclass(frozen=True)
class RecordingDone:
    """A recording ended (its maximum, silence, ``#``); ``duration_s`` from Asterisk if known."""

    name: str
    duration_s: float | None
    at: datetime


@dataclass(frozen=True)
class TransferRequested:
    """Transfer the caller to ``to`` (A5): a phone's REFER on leg ``by``, or the API
    (``by`` None). ``via`` says which, for the trace; ``asked_by`` who asked the API (S1)."""

    to: str
    by: str | None
    via: str
    asked_by: str | None = None


@dataclass(frozen=True)
class ParkRequested:
    """The operator's console parks the caller (``asked_by``: who, S1)."""

    asked_by: str


@dataclass(frozen=True)
class Unpark:
    """Operator ``extension`` takes the parked caller back (*svara* on a parked call)."""

    extension: str


@dataclass(frozen=True)
class ConsultRequested:
    """*Koppla med förfrågan* to ``to``: the operator talks to them first (A5)."""

    to: str
    asked_by: str


@dataclass(frozen=True)
class ConsultCompleted:
    """The operator hands the caller to the person consulted."""

    asked_by: str


@dataclass(frozen=True)
class ConsultCancelled:
    """The operator takes the caller back (*återta*); the person consulted is hung up."""

    asked_by: str


@dataclass(frozen=True)
class InQueue:
    """The queue took the call: ``waiting`` when no operator was free for it at once."""

    waiting: bool


@dataclass(frozen=True)
class Offered:
    """The queue reserved these operators for the call: ring them (A3, A4). ``picked``:
    an operator chose the call on the console, so their phone is asked to answer itself."""

    extensions: tuple[str, ...]
    picked: bool = False


@dataclass(frozen=True)
class TimerFired:
    """A timer of the call ran out."""

    kind: Timer


# ----- the answers of the services a flow asked (commands.Query) ----------------------


@dataclass(frozen=True)
class ReferralLooked:
    """Whether the person is referred (R5): the referral in force's reason (its name)
    and return (``until`` None: the phone is open), and the prompts a caller hears."""

    reason: str | None
    until: datetime | None
    greeting: tuple[str, ...]


@dataclass(frozen=True)
class ColleagueFound:
    """The first free colleague in the person's unit, or None (A5, R5)."""

    colleague: str | None


@dataclass(frozen=True)
class CodeDone:
    """A dial code was carried out or refused (R2): what the phone hears, the trace's line,
    and whether a PIN entry follows (the mailbox)."""

    prompts: tuple[str, ...]
    note: str
    then_pin: bool


@dataclass(frozen=True)
class MailboxOpened:
    """The PIN was right: the person's messages still to hear, oldest first (V1)."""

    messages: tuple[Message, ...]


@dataclass(frozen=True)
class MailboxRefused:
    """The mailbox stays shut: a wrong PIN, a lock, an unknown extension (V1)."""

    problem: Problem
    detail: str


@dataclass(frozen=True)
class MessageSaved:
    """The message is in the callback ledger, with its deadline (V2)."""

    message: Message


@dataclass(frozen=True)
class ServiceFailed:
    """A service the flow asked failed (the database is down): ``detail`` says how."""

    detail: str


CallEvent = (
    Arrived
    | Digit
    | PromptDone
    | PromptFailed
    | LegRinging
    | LegAnswered
    | LegFailed
    | LegGone
    | CallerGone
    | RecordingDone
    | TransferRequested
    | ParkRequested
    | Unpark
    | ConsultRequested
    | ConsultCompleted
    | ConsultCancelled
    | InQueue
    | Offered
    | TimerFired
    | ReferralLooked
    | ColleagueFound
    | CodeDone
    | MailboxOpened
    | MailboxRefused
    | MessageSaved
    | ServiceFailed
)


def describe(event: CallEvent) -> str:
    """A short name for the transition log: ``Digit(1)``, ``LegAnswered(c3:op2 by 1002)``."""
    match event:
        case Digit(digit=d):
            return f"Digit({d})"
        case PromptDone(token=t) | PromptFailed(token=t):
            return f"{type(event).__name__}({t})"
        case LegAnswered(leg=leg, who=who):
            return f"LegAnswered({leg} by {who})"
        case LegFailed(leg=leg, status=status):
            return f"LegFailed({leg} {status})"
        case LegRinging(leg=leg) | LegGone(leg=leg):
            return f"{type(event).__name__}({leg})"
        case TransferRequested(to=to, via=via):
            return f"TransferRequested({to} via {via})"
        case Offered(extensions=exts):
            return f"Offered({', '.join(exts)})"
        case TimerFired(kind=kind):
            return f"TimerFired({kind.value})"
        case InQueue(waiting=waiting):
            return f"InQueue(waiting={waiting})"
    return type(event).__name__
