"""Referrals in the database (R1–R4): set, clear, and read what is in force.

Shares the call log's engine (``CallLog.engine``), so one URL serves both and
the same Alembic migrations create both. Referrals change a few times a day
per person: plain transactions, no batching.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vvk_pbx.domain.referral import Referral, Source, in_force
from vvk_pbx.storage.calllog import StorageError
from vvk_pbx.storage.tables import referrals


class ReferralStore:
    """Async access to the referrals table. Every method raises ``StorageError``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def set(
        self,
        extension: str,
        reason: int,
        start: datetime,
        end: datetime,
        set_by: str,
        source: Source,
        note: str | None = None,
    ) -> Referral:
        """Store a new referral. One that starts at once replaces the one in force
        (which is cleared at ``start``); a future one waits its turn (R3)."""
        if end <= start:
            raise ValueError(f"the return time {end.isoformat()} is not after {start.isoformat()}")
        referral = Referral(str(uuid.uuid4()), extension, reason, start, end, set_by, source, note)
        try:
            async with self.engine.begin() as connection:
                current = in_force(await self._rows(connection, extension), extension, start)
                if current is not None and current.start <= start:
                    await connection.execute(
                        update(referrals)
                        .where(referrals.c.id == current.id)
                        .values(cleared_at=start)
                    )
                await connection.execute(referrals.insert().values(_row(referral)))
        except SQLAlchemyError as exc:
            raise StorageError(f"storing a referral for {extension} failed: {exc}") from exc
        return referral

    async def clear(self, extension: str, at: datetime, by: str | None = None) -> Referral | None:
        """End the referral in force at ``at`` (R4), by ``by``; returns it, or None if there
        was none."""
        try:
            async with self.engine.begin() as connection:
                current = in_force(await self._rows(connection, extension), extension, at)
                if current is None:
                    return None
                await connection.execute(
                    update(referrals)
                    .where(referrals.c.id == current.id)
                    .values(cleared_at=at, cleared_by=by)
                )
        except SQLAlchemyError as exc:
            raise StorageError(f"clearing the referral of {extension} failed: {exc}") from exc
        return current.cleared(at, by)

    async def in_force(self, extension: str, now: datetime) -> Referral | None:
        """The person's referral in force at ``now``, or None."""
        async with self.engine.connect() as connection:
            return in_force(await self._rows(connection, extension), extension, now)

    async def all_in_force(self, now: datetime) -> dict[str, Referral]:
        """Every person's referral in force at ``now``, by extension (R6: what the operator sees)."""
        query = select(referrals).where(
            referrals.c.cleared_at.is_(None),
            referrals.c.starts_at <= now,
            referrals.c.ends_at > now,
        )
        try:
            async with self.engine.connect() as connection:
                found = [_referral(r._mapping) for r in (await connection.execute(query)).all()]
        except SQLAlchemyError as exc:
            raise StorageError(f"reading referrals failed: {exc}") from exc
        result: dict[str, Referral] = {}
        for referral in found:
            best = in_force([referral, *result.values()], referral.extension, now)
            if best is not None:
                result[referral.extension] = best
        return result

    async def history(self, extension: str) -> list[Referral]:
        """Every referral of the person, oldest start first (the history is kept)."""
        async with self.engine.connect() as connection:
            found = await self._rows(connection, extension, current_only=False)
        return sorted(found, key=lambda r: (r.start, r.id))

    async def _rows(
        self, connection: Any, extension: str, current_only: bool = True
    ) -> list[Referral]:
        query = select(referrals).where(referrals.c.extension == extension)
        if current_only:
            query = query.where(referrals.c.cleared_at.is_(None))
        return [_referral(r._mapping) for r in (await connection.execute(query)).all()]


def _row(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.id,
        "extension": referral.extension,
        "reason": referral.reason,
        "starts_at": referral.start,
        "ends_at": referral.end,
        "note": referral.note,
        "set_by": referral.set_by,
        "source": referral.source.value,
        "cleared_at": referral.cleared_at,
        "cleared_by": referral.cleared_by,
    }


def _referral(row: Any) -> Referral:
    return Referral(
        id=row["id"],
        extension=row["extension"],
        reason=row["reason"],
        start=row["starts_at"],
        end=row["ends_at"],
        set_by=row["set_by"],
        source=Source(row["source"]),
        note=row["note"],
        cleared_at=row["cleared_at"],
        cleared_by=row["cleared_by"],
    )
