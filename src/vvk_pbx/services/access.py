"""Logging in, sessions and tokens (S1): who a request is, from a cookie or a bearer token.

People log in with their extension and PIN: the same PIN, the same count of
wrong attempts and the same lock as on the phone (``ReferralService.check_pin``).
Machines send ``Authorization: Bearer <token>``; ``vvk-pbx tokens create``
prints a token once and keeps only its digest. Rules of who may do what are
``domain/access.py``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from vvk_pbx.config.model import Settings
from vvk_pbx.domain.access import Principal, Role, Session, Token, digest, new_secret, token_role
from vvk_pbx.domain.dialcodes import CodeError, Problem
from vvk_pbx.services.referrals import ReferralService


class AccessPort(Protocol):
    """Where tokens and sessions are kept (``storage.access.AccessStore``)."""

    async def add_token(self, name: str, role: Role, token_hash: str, at: datetime) -> Token: ...
    async def token(self, token_hash: str) -> Token | None: ...
    async def tokens(self) -> list[Token]: ...
    async def revoke(self, name: str, at: datetime) -> bool: ...
    async def add_session(self, session: Session) -> None: ...
    async def session(self, token_hash: str) -> Session | None: ...
    async def end_session(self, token_hash: str) -> None: ...
    async def end_expired(self, now: datetime) -> int: ...


class LoginError(Exception):
    """A login refused: ``status`` 401 (wrong extension or PIN) or 423 (locked)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Login:
    """A new browser session: the secret for its cookie, and who logged in."""

    secret: str
    principal: Principal
    expires_at: datetime


class AccessService:
    """Who a request is; logging in and out; the tokens of machines."""

    def __init__(self, store: AccessPort, referrals: ReferralService, settings: Settings) -> None:
        self.store = store
        self.referrals = referrals
        self.settings = settings
        self.names = dict(settings.extensions())

    async def login(self, extension: str, pin: str, now: datetime) -> Login:
        """Log a person in for ``[access] session_hours``. Raises ``LoginError``: the same
        answer for an unknown extension and a wrong PIN (nothing tells which extensions
        have a PIN); every wrong PIN counts toward the phone's lock."""
        roles = self.settings.roles(extension)
        try:
            if not roles:
                raise CodeError(Problem.WRONG_PIN, "no such person")
            await self.referrals.check_pin(extension, pin, now, by="the web login")
        except CodeError as exc:
            if exc.problem is Problem.LOCKED:
                # The detail says until when ("1101 is locked until 2026-11-30T10:16:43").
                raise LoginError(f"{exc.detail} after too many wrong PINs", 423) from None
            raise LoginError("wrong extension or PIN", 401) from None
        secret = new_secret()
        expires = now + timedelta(hours=self.settings.access.session_hours)
        csrf = secrets.token_urlsafe(24)
        await self.store.add_session(Session(digest(secret), extension, csrf, now, expires))
        await self.store.end_expired(now)
        return Login(secret, Principal(extension, roles, extension, csrf), expires)

    async def logout(self, secret: str) -> None:
        await self.store.end_session(digest(secret))

    async def from_session(self, secret: str, now: datetime) -> Principal | None:
        """The person of a session cookie still in force, with the roles the config gives
        them now (a role taken away in the config is gone at once)."""
        session = await self.store.session(digest(secret))
        if session is None or session.expires_at <= now:
            return None
        roles = self.settings.roles(session.extension)
        if not roles:
            return None  # no longer in the directory
        return Principal(session.extension, roles, session.extension, session.csrf)

    async def from_token(self, secret: str) -> Principal | None:
        """The machine of a bearer token not revoked."""
        token = await self.store.token(digest(secret))
        if token is None or token.revoked_at is not None:
            return None
        return Principal(f"token:{token.name}", frozenset({token.role}))

    def who(self, principal: Principal) -> str:
        """A principal as people read it: "1001 Växeln 1", "token:intranet"."""
        if principal.extension is None:
            return principal.name
        return f"{principal.extension} {self.names.get(principal.extension, '')}".strip()

    async def create_token(self, name: str, role: Role, now: datetime) -> str:
        """A new token for a machine; the secret is returned once and never stored.
        Raises ``ValueError`` for a role no token may have or a bad name,
        ``TokenExistsError`` for a name taken, ``StorageError``."""
        token_role(role.value)  # raises for a role no token may have
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError("a token's name is 1–64 letters, digits, - or _")
        secret = new_secret()
        await self.store.add_token(name, role, digest(secret), now)
        return secret

    async def tokens(self) -> list[Token]:
        return await self.store.tokens()

    async def revoke(self, name: str, now: datetime) -> bool:
        return await self.store.revoke(name, now)
