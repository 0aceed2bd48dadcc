"""Retention (S1): the daily sweep deletes old calls with their legs and old export records,
and cuts old voicemail audio while the ledger keeps the message; in SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from tests.component.conftest import _database
from tests.component.test_store_contracts import ROUTE, T0, message
from vvk_pbx.config.model import Retention
from vvk_pbx.domain.calls import CallRecord, Leg
from vvk_pbx.services.retention import RetentionJob
from vvk_pbx.storage.audit import AuditLog, Export
from vvk_pbx.storage.voicemail import MessageStore


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_sweep_keeps_what_is_young_and_deletes_what_is_old(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with _database(backend, request, tmp_path) as log:
        now = T0 + timedelta(days=400)
        old = CallRecord.arrive("old", "0701", "012319100", T0, ROUTE)
        young = CallRecord.arrive("young", "0701", "012319100", now - timedelta(days=10), ROUTE)
        leg = Leg("old:op1", "old", "PJSIP/1001", "op", T0)
        await log.save_batch([old, young], [leg, Leg("young:op1", "young", "PJSIP/1001", "op", T0)])
        messages, audit = MessageStore(log.engine), AuditLog(log.engine)
        await messages.add(replace(message("m-old"), left_at=now - timedelta(days=61)))
        await messages.add(replace(message("m-new"), left_at=now - timedelta(days=1)))
        await audit.record(Export(now - timedelta(days=800), "1203", "csv", {}, 5))
        await audit.record(Export(now - timedelta(days=1), "1203", "csv", {}, 5))
        deleted: list[str] = []

        async def delete_audio(name: str) -> None:
            deleted.append(name)

        job = RetentionJob(Retention(), log, messages, audit, delete_audio)
        swept = await job.sweep(now)
        assert (swept.calls, swept.recordings, swept.exports) == (1, 1, 1)
        assert [r.id for r in await log.list_calls()] == ["young"]
        assert await log.legs_of("old") == [] and len(await log.legs_of("young")) == 1
        assert deleted == ["vm-1101-m-old"]
        kept = {m.id: m for m in await messages.ledger()}
        assert kept["m-old"].recording == "" and kept["m-new"].recording == "vm-1101-m-new"
        assert len(await audit.exports()) == 1
        again = await job.sweep(now)
        assert (again.calls, again.recordings, again.exports) == (0, 0, 0)
