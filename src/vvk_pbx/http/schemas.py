"""The API's request and answer shapes as pydantic models: the same models validate the
bodies and query strings (``http/api.py``) and describe them in ``/openapi.json``
(``http/openapi.py``).

Bodies are strict (``"reason": "2"`` is not a reason code) and refuse unknown fields,
so a typo such as ``"untill"`` is a 422 naming the field, never a silent default.
Times are ISO 8601 strings; without an offset they are the site's local time, and
the service decides what a time may be (``services/referrals.py``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from vvk_pbx.domain.queue import Presence

ErrorId = Literal[
    "bad_request",
    "invalid_json",
    "invalid_body",
    "invalid_query",
    "invalid_value",
    "unauthenticated",
    "login_failed",
    "forbidden",
    "csrf_missing",
    "not_found",
    "method_not_allowed",
    "conflict",
    "too_large",
    "locked",
    "database_unavailable",
    "internal",
]
"""The stable ``error`` ids: a client branches on these, never on ``message``."""

ERROR_IDS: dict[str, str] = {
    "bad_request": "the HTTP request itself is malformed",
    "invalid_json": "the body is not JSON",
    "invalid_body": "the body is not an object, or a field of it is missing, of the wrong "
    "type or unknown (see fields)",
    "invalid_query": "a query parameter is malformed or unknown (see fields)",
    "invalid_value": "a well-formed value the rules refuse: an unknown reason code, an end "
    "in the past, an unknown extension in a body (see fields)",
    "unauthenticated": "no session cookie and no bearer token, or one that is not valid",
    "login_failed": "wrong extension or PIN",
    "forbidden": "the role may not do this",
    "csrf_missing": "a change from the browser without the session's X-CSRF-Token",
    "not_found": "no such route, call, extension, message or token",
    "method_not_allowed": "the route exists, but not with this method",
    "conflict": "not now: the call is not in a state that allows it, or the name is taken",
    "too_large": "the body is over 64 KiB",
    "locked": "too many wrong PINs: the login is locked, as the phone's mailbox is",
    "database_unavailable": "the database does not answer; nothing was changed",
    "internal": "a fault of the controller; its log has the details",
}
"""Each error id and what it means, for the document."""


class Strict(BaseModel):
    """A request shape: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    expected: ClassVar[str] = "the body must be a JSON object"


class Query(BaseModel):
    """A query string: every value is text; unknown parameters refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    expected: ClassVar[str] = "the query string"


# Bodies -------------------------------------------------------------------------------


class LoginBody(Strict):
    """A person logs in with their extension and the phone's PIN (S1)."""

    expected: ClassVar[str] = 'the body must be {"extension": "...", "pin": "..."}'
    extension: str = Field(examples=["1101"])
    pin: str = Field(examples=["4711"])


class TransferBody(Strict):
    """Transfer a connected call to an extension: blind, or with consultation first (A5)."""

    expected: ClassVar[str] = 'the body must be {"to": "<extension>", "consult": false}'
    to: str = Field(min_length=1, examples=["1201"])
    consult: bool = Field(
        default=False, description="true: the operator talks to them first (förfrågan)"
    )


class AnswerBody(Strict):
    """Whose phone answers a waiting call; by default the logged-in operator's."""

    expected: ClassVar[str] = 'the body must be {"operator": "<extension>"} or empty'
    operator: str | None = Field(default=None, min_length=1, examples=["1001"])


class PresenceBody(Strict):
    """An operator's state: in (offered calls), paused (keeps the line, offered none), out."""

    expected: ClassVar[str] = 'the body must be {"presence": "in" | "paused" | "out"}'
    presence: Presence


class ReferralBody(Strict):
    """A referral (R2, R3): a reason code, until when, optionally from when and a note."""

    expected: ClassVar[str] = (
        'the body must be {"reason": 2, "until": "2026-12-01T14:30", "from"?: ..., "note"?: ...}'
    )
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    reason: int = Field(description="a reason code (GET /reasons)", examples=[2])
    until: str = Field(description="the return time, ISO 8601", examples=["2026-12-01T14:30"])
    start: str | None = Field(default=None, alias="from", description="when it starts; default now")
    note: str | None = Field(default=None, examples=["Budgetberedning"])


class MessageBody(Strict):
    """A message taken for a person (V2): into their ledger with a deadline."""

    expected: ClassVar[str] = (
        'the body must be {"extension": "1101", "caller": "0701234567", "name"?, "note"?, "call"?}'
    )
    extension: str = Field(examples=["1101"])
    caller: str = Field(description="the number to call back", examples=["0701234567"])
    name: str = ""
    note: str = ""
    call: str | None = Field(default=None, description="the call it was taken on")


class TokenBody(Strict):
    """A machine's token (S1): a name and one role."""

    expected: ClassVar[str] = 'the body must be {"name": "intranet", "role": "reports"}'
    name: str = Field(examples=["intranet"])
    role: Literal["operator", "reports", "admin"]


# Query strings ------------------------------------------------------------------------


class HoursQuery(Query):
    at: str | None = Field(default=None, description="an instant or date; default now")


class DirectoryQuery(Query):
    q: str = Field(default="", description="name, unit, title or extension; no case, no accents")


class MessagesQuery(Query):
    unit: str | None = Field(default=None, description="a unit id from the config")
    overdue: Literal["true", "false"] = "false"


class CallsQuery(Query):
    since: str | None = Field(default=None, description="default today's start, local")
    until: str | None = None


class ExportQuery(Query):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    format: Literal["csv", "csv-sv", "jsonl", "xlsx"] = "csv"
    start: str | None = Field(default=None, alias="from", description="arrived at or after")
    to: str | None = Field(default=None, description="arrived before")
    direction: str | None = Field(default=None, description="external or internal")
    unit: str | None = None
    operator: str | None = Field(default=None, description="answered by this extension")
    outcome: str | None = None


class ReportQuery(Query):
    month: str = Field(description="YYYY-MM", examples=["2026-11"])


# Answers ------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="the body field or query parameter at fault")
    message: str


class ErrorAnswer(BaseModel):
    """Every error: a stable id, a sentence for a person, and the fields at fault."""

    error: ErrorId
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class MeAnswer(BaseModel):
    name: str
    who: str
    extension: str | None
    roles: list[str]
    csrf: str | None


class ReferralAnswer(BaseModel):
    id: str
    extension: str
    reason: int
    reason_name: str | None
    phrase: str | None
    start: str
    end: str
    announced_end: str
    note: str | None
    set_by: str
    source: str
    cleared_at: str | None
    cleared_by: str | None


class MessageAnswer(BaseModel):
    id: str
    extension: str
    caller: str
    left_at: str
    duration_s: float
    deadline: str
    status: str
    overdue: bool
    late: bool
    called_back_at: str | None
    called_back_by: str | None
    recording: str
    name: str
    note: str
    taken_by: str | None


class PersonAnswer(BaseModel):
    extension: str
    name: str
    unit: str
    unit_name: str
    title: str
    mobile: str | None


class ReasonAnswer(BaseModel):
    code: int
    name: str
    phrase: str


class TokenAnswer(BaseModel):
    name: str
    role: str
    created_at: str
    revoked_at: str | None


class TokenCreated(BaseModel):
    name: str
    role: str
    token: str = Field(description="the secret, shown this once")


class CallAction(BaseModel):
    """A request the controller has queued; the live feed shows what became of it."""

    call: str
    status: str
    to: str | None = None
    operator: str | None = None


class PresenceAnswer(BaseModel):
    extension: str
    presence: Presence


class Cleared(BaseModel):
    cleared: bool


class Revoked(BaseModel):
    revoked: str


class LoggedOut(BaseModel):
    logged_out: bool


class HoursDay(BaseModel):
    date: str
    weekday: str
    hours: list[list[str]] = Field(description='[["08:00", "12:00"], ...], local')
    reason: str
    special: bool


class HoursAnswer(BaseModel):
    at: str
    open: bool
    reason: str
    next_change: str | None
    week: list[HoursDay]


class Health(BaseModel):
    """The controller's state (more fields may come; ``ari_connected`` decides 200 or 503)."""

    model_config = ConfigDict(extra="allow")
    status: str
    ari_connected: bool
