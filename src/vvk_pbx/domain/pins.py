"""Staff PINs (R2, V1): what a valid PIN is, how it is kept, and when wrong ones lock.

A PIN is 4–8 digits. It is kept only as a salted scrypt hash (``hashlib``).
After ``MAX_FAILURES`` wrong PINs in a row an extension is locked for
``LOCK_S`` seconds; a right PIN resets the count.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

MAX_FAILURES = 5
LOCK_S = 15 * 60
_PIN = re.compile(r"[0-9]{4,8}")


def valid_pin(pin: str) -> bool:
    return bool(_PIN.fullmatch(pin))


def new_pin() -> str:
    """A random 6-digit PIN."""
    return f"{secrets.randbelow(10**6):06d}"


def hash_pin(pin: str, salt: bytes) -> str:
    """The hex scrypt hash of ``pin`` with ``salt`` (n=2**14, r=8, p=1)."""
    return hashlib.scrypt(pin.encode(), salt=salt, n=2**14, r=8, p=1).hex()


@dataclass(frozen=True)
class PinRecord:
    """One extension's PIN as stored, with its run of wrong attempts."""

    extension: str
    pin_hash: str
    salt: str  # hex
    failures: int = 0
    locked_until: datetime | None = None

    @classmethod
    def create(cls, extension: str, pin: str) -> PinRecord:
        """Raises ``ValueError`` for a PIN that is not 4–8 digits."""
        if not valid_pin(pin):
            raise ValueError("a PIN is 4 to 8 digits")
        salt = secrets.token_bytes(16)
        return cls(extension, hash_pin(pin, salt), salt.hex())

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def matches(self, pin: str) -> bool:
        return valid_pin(pin) and hmac.compare_digest(
            hash_pin(pin, bytes.fromhex(self.salt)), self.pin_hash
        )

    def after_attempt(self, right: bool, now: datetime) -> PinRecord:
        """The record after one attempt at ``now``: reset, or one more failure (and locked
        for ``LOCK_S`` at the ``MAX_FAILURES``-th)."""
        if right:
            return replace(self, failures=0, locked_until=None)
        failures = self.failures + 1
        if failures >= MAX_FAILURES:
            return replace(self, failures=0, locked_until=now + timedelta(seconds=LOCK_S))
        return replace(self, failures=failures)
