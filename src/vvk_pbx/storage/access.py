"""API tokens and web sessions in the database (S1), kept as SHA-256s of their secrets.

Shares the call log's engine and migrations, so every node of a cluster sees
the same tokens and sessions, and a restart logs nobody out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vvk_pbx.domain.access import Role, Session, Token
from vvk_pbx.storage.calllog import StorageError
from vvk_pbx.storage.tables import api_tokens, web_sessions


class TokenExistsError(StorageError):
    """A token of that name exists already."""


class AccessStore:
    """Tokens and sessions. Every method raises ``StorageError``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # ----- tokens ---------------------------------------------------------------------

    async def add_token(self, name: str, role: Role, token_hash: str, at: datetime) -> Token:
        """Raises ``TokenExistsError`` when the name is taken."""
        token = Token(str(uuid.uuid4()), name, role, token_hash, at)
        row = {**token.__dict__, "role": role.value}
        try:
            await self._execute(api_tokens.insert().values(row), f"storing token {name}")
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise TokenExistsError(f"a token named {name!r} exists already") from None
            raise
        return token

    async def token(self, token_hash: str) -> Token | None:
        found = await self._tokens(select(api_tokens).where(api_tokens.c.token_hash == token_hash))
        return found[0] if found else None

    async def tokens(self) -> list[Token]:
        return await self._tokens(select(api_tokens).order_by(api_tokens.c.created_at))

    async def revoke(self, name: str, at: datetime) -> bool:
        """Revoke the token ``name`` from ``at``; False when there is none in force."""
        statement = (
            update(api_tokens)
            .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return await self._execute(statement, f"revoking token {name}") > 0

    async def _tokens(self, query: Any) -> list[Token]:
        rows = await self._select(query, "reading tokens")
        return [Token(**{**row, "role": Role(row["role"])}) for row in rows]

    # ----- sessions -------------------------------------------------------------------

    async def add_session(self, session: Session) -> None:
        await self._execute(web_sessions.insert().values(session.__dict__), "storing a session")

    async def session(self, token_hash: str) -> Session | None:
        query = select(web_sessions).where(web_sessions.c.token_hash == token_hash)
        rows = await self._select(query, "reading a session")
        return Session(**rows[0]) if rows else None

    async def end_session(self, token_hash: str) -> None:
        await self._execute(
            delete(web_sessions).where(web_sessions.c.token_hash == token_hash), "ending a session"
        )

    async def end_expired(self, now: datetime) -> int:
        """Remove the sessions that ended before ``now``; how many."""
        statement = delete(web_sessions).where(web_sessions.c.expires_at <= now)
        return await self._execute(statement, "removing old sessions")

    # ----- plumbing -------------------------------------------------------------------

    async def _select(self, query: Any, what: str) -> list[dict[str, Any]]:
        try:
            async with self.engine.connect() as connection:
                return [dict(r._mapping) for r in (await connection.execute(query)).all()]
        except SQLAlchemyError as exc:
            raise StorageError(f"{what} failed: {exc}") from exc

    async def _execute(self, statement: Any, what: str) -> int:
        try:
            async with self.engine.begin() as connection:
                result = await connection.execute(statement)
                return int(result.rowcount or 0)
        except SQLAlchemyError as exc:
            raise StorageError(f"{what} failed: {exc}") from exc
