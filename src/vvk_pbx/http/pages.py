"""The browser pages the controller serves (issue 11): console, wallboard, phone book.

The pages are static files in ``http/pages/`` (HTML, one CSS, plain JavaScript,
no CDN, nothing fetched at run time). They hold no data: everything a page
shows comes from the authenticated API and the live feed, so serving the files
themselves needs no login (``is_public``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

PAGES_DIR = Path(__file__).parent / "pages"
# Page paths -> file; served to anyone, as a login page would be.
PAGES = {
    "/": "phonebook.html",
    "/console": "console.html",
    "/wallboard": "wallboard.html",
    "/phonebook": "phonebook.html",
}
STATIC = "/static/"


def is_public(method: str, path: str) -> bool:
    """Whether ``GET path`` is a page or one of its files (served without a login)."""
    return method in ("GET", "HEAD") and (path in PAGES or path.startswith(STATIC))


def add_pages(app: web.Application) -> None:
    """Register the pages and ``/static/<file>`` (no directory listing, no ``..``)."""
    for path, name in PAGES.items():
        app.router.add_get(path, _file_handler(name))
    app.router.add_static(STATIC, PAGES_DIR, show_index=False, follow_symlinks=False)


def _file_handler(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def handler(request: web.Request) -> web.FileResponse:
        response = web.FileResponse(PAGES_DIR / name)
        response.headers["Cache-Control"] = "no-cache"
        return response

    return handler
