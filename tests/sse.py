"""Reading server-sent events (``GET /events``) in tests, component and end-to-end alike."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse


async def next_event(response: ClientResponse, timeout: float = 15) -> tuple[str, Any]:
    """The next event of the stream: its name and its JSON data (the pings that keep it alive skipped).
    Raises ``TimeoutError`` when none comes within ``timeout`` s."""
    name, data = "", ""
    async with asyncio.timeout(timeout):
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and name:
                if name != "ping":
                    return name, json.loads(data)
                name, data = "", ""
