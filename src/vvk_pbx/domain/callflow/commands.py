"""Commands: what a flow asks the executor (``services/calls/executor.py``) to do for a call.

Most act on the call's channels through ARI. A ``Query`` asks a service
(the referral store, the ledger) and its answer comes back as an event
(``events.ReferralLooked`` ...), decided before the call's next event; a query
that fails ends the batch with ``events.ServiceFailed``. Commands run in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vvk_pbx.domain.callflow.states import Purpose, Timer
from vvk_pbx.domain.voicemail import Status


@dataclass(frozen=True)
class Answer:
    """Answer the caller's channel (a machine answering: A2, it is no person's answer)."""


@dataclass(frozen=True)
class Play:
    """Play ``media`` (ARI media URIs) to the caller as one prompt, known as ``token``."""

    media: tuple[str, ...]
    token: str


@dataclass(frozen=True)
class StopPrompt:
    """Stop the caller's prompt (a playing channel neither hears keys' effect nor joins a bridge)."""


@dataclass(frozen=True)
class LegSpec:
    """One phone to ring: the leg's channel id, its endpoint (``PJSIP/1001``) and who it is."""

    id: str
    endpoint: str
    who: str


@dataclass(frozen=True)
class Ring:
    """Ring these phones for the caller for ``timeout_s``; the first answer is the flow's to take.

    The caller joins the call's bridge (made with the first ring); each leg joins
    it on its own StasisStart and then dials. A leg Asterisk cannot make (a phone
    that is not registered) comes back as ``LegFailed(CHANUNAVAIL)``.
    """

    legs: tuple[LegSpec, ...]
    purpose: Purpose
    timeout_s: int
    consult: bool = False  # the legs join the consultation's bridge, apart from the caller
    auto_answer: bool = False  # ask the phones to answer by themselves (the console's pick)


@dataclass(frozen=True)
class HangUpLegs:
    """Hang up these legs. ``reason`` is ARI's hangup reason: ``answered_elsewhere`` tells
    the phones that lost to another that they missed nothing. ``status`` overrides the
    legs' status in the call log."""

    legs: tuple[str, ...]
    reason: str = "normal"
    status: str | None = None


@dataclass(frozen=True)
class MoveLegs:
    """Move legs between the caller's bridge and the consultation's (made when first
    needed): ``consult`` True takes them apart from the caller, False back to them."""

    legs: tuple[str, ...]
    consult: bool


@dataclass(frozen=True)
class CloseConsult:
    """The consultation is over: its bridge goes."""


@dataclass(frozen=True)
class HangUp:
    """Hang up the caller."""


@dataclass(frozen=True)
class Record:
    """Record the caller into ``name`` (WAV, a beep first), at most ``max_s``, ending after
    ``silence_s`` of silence or on ``#`` (V1)."""

    name: str
    max_s: int
    silence_s: int


@dataclass(frozen=True)
class StartTimer:
    """Start the call's timer ``kind`` (replacing one that runs); ``TimerFired`` after ``delay_s``."""

    kind: Timer
    delay_s: float


@dataclass(frozen=True)
class CancelTimer:
    kind: Timer


@dataclass(frozen=True)
class Enqueue:
    """Put the call in line for an operator, as arriving at ``since`` on the controller's
    clock (A4); answered by ``InQueue``, and later ``Offered``."""

    external: bool
    since: datetime
    prefer: str | None = None  # the operator it goes to when free (recall, pick)


@dataclass(frozen=True)
class LeaveQueue:
    """Out of the line; every operator reserved for, ringing for or talking on the call is free."""


@dataclass(frozen=True)
class GiveBack:
    """Operators the queue reserved for the call that it will not ring."""

    extensions: tuple[str, ...]


@dataclass(frozen=True)
class ReportTransfer:
    """Tell the phone on ``leg`` that sent REFER how its transfer goes
    (``channel_answered`` or ``channel_declined``)."""

    leg: str
    state: str


@dataclass(frozen=True)
class ToDialplan:
    """Give the caller to the dialplan at ``context``/``extension`` (the fallback): every leg
    but ``keep`` is hung up, and the call leaves the queue."""

    context: str
    extension: str = "s"
    keep: str | None = None


@dataclass(frozen=True)
class Forget:
    """The caller is gone: end and hang up the legs still up (at ``at``), remove the bridge,
    the timers and the call."""

    at: datetime


# ----- queries: a service is asked, its answer is the next event ------------------------


@dataclass(frozen=True)
class LookUpReferral:
    """Is ``person`` referred now? → ``ReferralLooked`` (R5)."""

    person: str


@dataclass(frozen=True)
class FindColleague:
    """The first colleague of ``person``'s unit with no referral → ``ColleagueFound``."""

    person: str


@dataclass(frozen=True)
class CarryOutCode:
    """Carry out the dial code ``dialed`` from ``extension``'s phone → ``CodeDone`` (R2)."""

    extension: str
    dialed: str


@dataclass(frozen=True)
class OpenMailbox:
    """Open ``extension``'s mailbox with ``pin`` → ``MailboxOpened`` or ``MailboxRefused``."""

    extension: str
    pin: str


@dataclass(frozen=True)
class MarkMessage:
    """Set a message's status in the ledger (V1, V2); nothing comes back unless it fails."""

    message_id: str
    status: Status


@dataclass(frozen=True)
class SaveMessage:
    """Put the recorded message into the callback ledger → ``MessageSaved`` (V2).
    ``left_at`` is the controller's clock: the deadline counts from it."""

    person: str
    caller: str
    recording: str
    left_at: datetime
    duration_s: float


Query = LookUpReferral | FindColleague | CarryOutCode | OpenMailbox | MarkMessage | SaveMessage

Command = (
    Answer
    | Play
    | StopPrompt
    | Ring
    | HangUpLegs
    | MoveLegs
    | CloseConsult
    | HangUp
    | Record
    | StartTimer
    | CancelTimer
    | Enqueue
    | LeaveQueue
    | GiveBack
    | ReportTransfer
    | ToDialplan
    | Forget
    | Query
)
