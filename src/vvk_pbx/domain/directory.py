"""Searching the staff directory (D1, R6): as a person types, ignoring case and diacritics.

"asa" finds "Åsa", "ostlund" finds "Östlund", "ekonomi" finds the unit
Ekonomi: every word typed must begin a word of the person's name, unit,
title or extension, after folding both sides (``fold``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def fold(text: str) -> str:
    """Lower case without diacritics: "Åsa Öberg" -> "asa oberg" (NFKD, marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def matches(query: str, fields: Iterable[str]) -> bool:
    """Whether every word of ``query`` begins a word of ``fields`` (folded); an empty
    query matches everyone."""
    words = fold(" ".join(fields)).replace("-", " ").split()
    return all(any(word.startswith(typed) for word in words) for typed in fold(query).split())
