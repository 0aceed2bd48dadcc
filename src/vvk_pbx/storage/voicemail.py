"""The voicemail callback ledger in the database (V1, V2).

One row per message: who it is for, who left it, when, how long, the
recording's name, the callback deadline (2 working days, from the domain's
calendar) and its status. Shares the call log's engine and migrations.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from vvk_pbx.domain.voicemail import Message, Status
from vvk_pbx.storage.calllog import StorageError
from vvk_pbx.storage.tables import messages


class MessageStore:
    """Async access to the ledger. Every method raises ``StorageError``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, message: Message) -> None:
        await self._execute(messages.insert().values(_row(message)), f"storing {message.id}")

    async def get(self, message_id: str) -> Message | None:
        found = await self._select(select(messages).where(messages.c.id == message_id))
        return found[0] if found else None

    async def known(self, message_ids: list[str]) -> set[str]:
        """The ids among ``message_ids`` that have a row, in one query."""
        if not message_ids:
            return set()
        query = select(messages.c.id).where(messages.c.id.in_(message_ids))
        try:
            async with self.engine.connect() as connection:
                return {str(r[0]) for r in (await connection.execute(query)).all()}
        except SQLAlchemyError as exc:
            raise StorageError(f"reading the callback ledger failed: {exc}") from exc

    async def mark(
        self, message_id: str, status: Status, at: datetime | None = None, by: str | None = None
    ) -> Message | None:
        """Set a message's status (``called_back`` records ``at`` and ``by``); None if there
        is no such message. A message already called back keeps its status and time."""
        message = await self.get(message_id)
        if message is None:
            return None
        if message.status is Status.CALLED_BACK:
            # Called back is final: the first time stands (V2), and the audio's
            # fate (heard again, deleted) no longer changes the ledger.
            return message
        values: dict[str, Any] = {"status": status.value}
        if status is Status.CALLED_BACK:
            values["called_back_at"] = at
            values["called_back_by"] = by
        await self._execute(
            update(messages).where(messages.c.id == message_id).values(values),
            f"updating {message_id}",
        )
        return replace(
            message,
            status=status,
            called_back_at=values.get("called_back_at"),
            called_back_by=values.get("called_back_by"),
        )

    async def forget_recordings(self, before: datetime) -> list[str]:
        """The recordings of messages left before ``before``, now cut from their rows (the
        row stays in the ledger, V2); their names, for the audio to be deleted."""
        query = select(messages.c.recording).where(
            messages.c.left_at < before, messages.c.recording != ""
        )
        try:
            async with self.engine.begin() as connection:
                names = [str(r[0]) for r in (await connection.execute(query)).all()]
                if names:
                    await connection.execute(
                        update(messages).where(messages.c.recording.in_(names)).values(recording="")
                    )
        except SQLAlchemyError as exc:
            raise StorageError(f"callback ledger: forgetting old recordings failed: {exc}") from exc
        return names

    async def ledger(self, extensions: list[str] | None = None) -> list[Message]:
        """Every message, deleted ones too (V2), oldest first; only these extensions' if given."""
        query = select(messages)
        if extensions is not None:
            query = query.where(messages.c.extension.in_(extensions))
        return await self._select(query.order_by(messages.c.left_at, messages.c.id))

    async def _select(self, query: Any) -> list[Message]:
        try:
            async with self.engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"reading the callback ledger failed: {exc}") from exc
        return [_message(r._mapping) for r in rows]

    async def _execute(self, statement: Any, what: str) -> None:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(statement)
        except SQLAlchemyError as exc:
            raise StorageError(f"callback ledger: {what} failed: {exc}") from exc


def _row(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "extension": message.extension,
        "caller": message.caller,
        "call_id": message.call_id,
        "left_at": message.left_at,
        "duration_s": message.duration_s,
        "recording": message.recording,
        "deadline_at": message.deadline_at,
        "status": message.status.value,
        "called_back_at": message.called_back_at,
        "called_back_by": message.called_back_by,
        "caller_name": message.caller_name,
        "note": message.note,
        "taken_by": message.taken_by,
    }


def _message(row: Any) -> Message:
    return Message(
        id=row["id"],
        extension=row["extension"],
        caller=row["caller"],
        call_id=row["call_id"],
        left_at=row["left_at"],
        duration_s=row["duration_s"],
        recording=row["recording"],
        deadline_at=row["deadline_at"],
        status=Status(row["status"]),
        called_back_at=row["called_back_at"],
        called_back_by=row["called_back_by"],
        caller_name=row["caller_name"],
        note=row["note"],
        taken_by=row["taken_by"],
    )
