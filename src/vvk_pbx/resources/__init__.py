"""The files the package needs at run time, shipped as package data (``importlib.resources``):
Asterisk's config templates (``dialplan/``), the prompt catalogue (``sounds/``) and the
package lists (``packages/``). In the repository they are links to the top-level folders
of those names, where ops and the Docker files find them; an installed package holds
copies."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def resource_dir(name: str) -> Path:
    """The folder ``name`` (``dialplan``, ``sounds``, ``packages``) as a path on disk."""
    with as_file(files(__name__) / name) as path:
        return Path(path)
