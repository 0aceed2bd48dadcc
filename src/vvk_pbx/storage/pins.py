"""Staff PINs in the database (R2, V1). Shares the call log's engine and migrations."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vvk_pbx.domain.pins import PinRecord
from vvk_pbx.storage.calllog import StorageError
from vvk_pbx.storage.tables import pins


class PinStore:
    """Read and write PIN records. Every method raises ``StorageError``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, extension: str) -> PinRecord | None:
        try:
            async with self.engine.connect() as connection:
                row = (
                    await connection.execute(select(pins).where(pins.c.extension == extension))
                ).first()
        except SQLAlchemyError as exc:
            raise StorageError(f"reading the PIN of {extension} failed: {exc}") from exc
        return None if row is None else PinRecord(**dict(row._mapping))

    async def put(self, record: PinRecord) -> None:
        values: dict[str, Any] = asdict(record)
        try:
            async with self.engine.begin() as connection:
                await connection.execute(delete(pins).where(pins.c.extension == record.extension))
                await connection.execute(pins.insert().values(values))
        except SQLAlchemyError as exc:
            raise StorageError(f"storing the PIN of {record.extension} failed: {exc}") from exc
