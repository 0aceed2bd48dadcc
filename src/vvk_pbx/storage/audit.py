"""The export audit log (S1, F1): one row per export of the call log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vvk_pbx.storage.calllog import StorageError
from vvk_pbx.storage.tables import export_audit


@dataclass(frozen=True)
class Export:
    """An export as the audit log keeps it: ``at`` aware, ``filter`` as given."""

    at: datetime
    who: str
    format: str
    filter: dict[str, Any]
    rows: int


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, export: Export) -> None:
        """Keep one export. Raises ``StorageError``."""
        values = {"id": str(uuid.uuid4()), **export.__dict__}
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(export_audit).values(**values))
        except SQLAlchemyError as exc:
            raise StorageError(f"export audit: recording failed: {exc}") from exc

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete the exports recorded before ``cutoff``; how many. Raises ``StorageError``."""
        try:
            async with self.engine.begin() as connection:
                result = await connection.execute(
                    delete(export_audit).where(export_audit.c.at < cutoff)
                )
        except SQLAlchemyError as exc:
            raise StorageError(f"export audit: deleting old rows failed: {exc}") from exc
        return int(result.rowcount or 0)

    async def exports(self) -> list[Export]:
        """Every export, oldest first. Raises ``StorageError``."""
        query = select(export_audit).order_by(export_audit.c.at, export_audit.c.id)
        try:
            async with self.engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"export audit: reading failed: {exc}") from exc
        return [
            Export(r.at, r.who, r.format, dict(r.filter), r.rows)
            for r in (x._mapping for x in rows)
        ]
