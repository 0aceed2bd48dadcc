"""Who may do what over HTTP (S1): roles, the principal behind a request, and the rules.

Roles (``[access]`` in the ops config says who holds which)::

    staff     every person in the directory: their own referral, their own messages
    operator  the console: referrals for anyone, transfers, the whole ledger
    admin     everything an operator may, and the machines' tokens
    reports   read only: referrals, the ledger, the call log and its reports

People log in with their extension and PIN (the PINs and their lock are the
phone's, R2); machines send a bearer token. A secret (a token, a session) is
kept only as its SHA-256: it is high-entropy and random, so a slow hash buys
nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    STAFF = "staff"
    OPERATOR = "operator"
    ADMIN = "admin"
    REPORTS = "reports"


# A machine's token has one of these; a person's roles come from the config.
TOKEN_ROLES = (Role.OPERATOR, Role.REPORTS, Role.ADMIN)


def token_role(value: str) -> Role:
    """The role a machine's token is made with, from its name; raises ``ValueError``
    saying which may be (a token is never *staff*: a person logs in instead)."""
    chosen = next((role for role in TOKEN_ROLES if role.value == value), None)
    if chosen is None:
        allowed = ", ".join(r.value for r in TOKEN_ROLES)
        raise ValueError(f"a token's role is one of {allowed}, not {value}")
    return chosen


TOKEN_PREFIX = "vvk_"


@dataclass(frozen=True)
class Principal:
    """Who makes a request. ``name`` is what a change records as its author (S1): a
    person's extension ("1001") or a token's name ("token:intranet"). ``extension`` is
    a person's own, None for a token; ``csrf`` the browser session's token, which a
    change from that browser must send back."""

    name: str
    roles: frozenset[Role]
    extension: str | None = None
    csrf: str | None = None

    @property
    def operates(self) -> bool:
        """May act for anyone: an operator or an admin."""
        return bool(self.roles & {Role.OPERATOR, Role.ADMIN})

    @property
    def administers(self) -> bool:
        """May manage the machines' tokens: an admin."""
        return Role.ADMIN in self.roles

    @property
    def reads_everything(self) -> bool:
        """May read the whole ledger: an operator, an admin, or reports."""
        return self.operates or Role.REPORTS in self.roles

    def may_change_referral(self, extension: str) -> bool:
        """Set or clear ``extension``'s referral: their own, or anyone's for an operator."""
        return self.operates or self.extension == extension

    def may_mark(self, message_extension: str) -> bool:
        """Mark a message called back: the person's own, or any for an operator."""
        return self.operates or self.extension == message_extension


@dataclass(frozen=True)
class Token:
    """A machine's token as stored: never the secret, only its digest."""

    id: str
    name: str
    role: Role
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Session:
    """A browser's login: the person, the CSRF token its changes must send, its end."""

    token_hash: str
    extension: str
    csrf: str
    created_at: datetime
    expires_at: datetime


def new_secret() -> str:
    """A fresh token or session secret: 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()
