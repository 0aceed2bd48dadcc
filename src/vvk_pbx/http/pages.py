"""The browser pages the controller serves (issue 11): console, wallboard, phone book.

The pages are static files in ``http/pages/`` (HTML, one CSS, plain JavaScript,
no CDN, nothing fetched at run time). They hold no data: everything a page
shows comes from the authenticated API and the live feed, so serving the files
themselves needs no login (``is_public``).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from vvk_pbx.http.openapi import Handler, Route, Who

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
    return method == "GET" and (path in PAGES or path.startswith(STATIC))


def _file_handler(name: str) -> Handler:
    async def handler(request: web.Request) -> web.FileResponse:
        response = web.FileResponse(PAGES_DIR / name)
        response.headers["Cache-Control"] = "no-cache"
        return response

    return handler


# The media type by suffix, said here rather than guessed: the guess depends on the
# machine's mime.types (application/ or text/javascript).
MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Only the files that ship, by name: a request names one of these or gets 404, so no
# path (``..``, a symlink, a folder) can reach anything else.
FILES = frozenset(p.name for p in PAGES_DIR.iterdir() if p.is_file() and p.suffix in MEDIA)


async def _static(request: web.Request) -> web.FileResponse:
    name = request.match_info["filename"]
    if name not in FILES:
        raise web.HTTPNotFound(reason=f"no file {name!r}")
    response = web.FileResponse(PAGES_DIR / name)
    response.headers["Cache-Control"] = "no-cache"
    response.content_type = MEDIA[Path(name).suffix]
    return response


ROUTES = (
    *(
        Route(
            "GET",
            path,
            _file_handler(name),
            f"The {name.removesuffix('.html')} page (no data: it calls the API)",
            "pages",
            Who.PUBLIC,
            media=("text/html",),
            database=False,
        )
        for path, name in PAGES.items()
    ),
    Route(
        "GET",
        STATIC + "{filename}",
        _static,
        "The pages' scripts and style",
        "pages",
        Who.PUBLIC,
        media=tuple(sorted(set(MEDIA.values()))),
        errors=(404,),
        database=False,
        path_values={"filename": tuple(sorted(FILES))},
    ),
)
