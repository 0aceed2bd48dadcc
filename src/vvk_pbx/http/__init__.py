"""The controller's HTTP API (aiohttp): health and call control."""
