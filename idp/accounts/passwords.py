"""The password policy (``policies/password.yaml``) and argon2id hashing.

The policy returns every unmet rule as a German message instead of raising, so the form can name
each one (after Flask-Security-Too's ``password_util``).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

from idp.config import Argon2Parameters, Config, PolicyError

T = TypeVar("T")

@dataclass(frozen=True)
class PasswordPolicy:
    """The rules a new password must meet."""

    min_length: int
    max_length: int
    min_letters: int
    min_uppercase: int
    min_lowercase: int
    min_digits: int
    min_special: int
    special_characters: str
    reject_common: bool
    reject_username: bool

    @classmethod
    def load(cls, path: Path) -> PasswordPolicy:
        """Read and check a policy file; a broken file raises :class:`PolicyError`."""
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise PolicyError(f"{path}: cannot read: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise PolicyError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(raw, dict):
            raise PolicyError(f"{path}: expected a mapping of rules")
        expected = set(cls.__dataclass_fields__)
        if missing := expected - set(raw):
            raise PolicyError(f"{path}: missing rules: {', '.join(sorted(missing))}")
        if unknown := set(raw) - expected:
            raise PolicyError(f"{path}: unknown rules: {', '.join(sorted(unknown))}")
        for name in expected - {"special_characters", "reject_common", "reject_username"}:
            if not isinstance(raw[name], int) or isinstance(raw[name], bool) or raw[name] < 0:
                raise PolicyError(f"{path}: {name} must be a whole number ≥ 0")
        for name in ("reject_common", "reject_username"):
            if not isinstance(raw[name], bool):
                raise PolicyError(f"{path}: {name} must be true or false")
        if not isinstance(raw["special_characters"], str) or not raw["special_characters"]:
            raise PolicyError(f"{path}: special_characters must be a non-empty string")
        if raw["max_length"] < max(raw["min_length"], 128):
            raise PolicyError(f"{path}: max_length must allow at least 128 characters")
        return cls(**raw)

    def rules(self) -> list[str]:
        """The rules as the registration form lists them (the original's wording, plus ours)."""
        shown = " ".join(self.special_characters.replace(" ", ""))
        rules = [f"mindestens {self.min_length} Zeichen"]
        if self.min_letters:
            rules.append(f"davon mindestens {self.min_letters} Buchstabe(n)")
        if self.min_uppercase:
            rules.append(f"davon mindestens {self.min_uppercase} Großbuchstabe(n)")
        if self.min_lowercase:
            rules.append(f"davon mindestens {self.min_lowercase} Kleinbuchstabe(n)")
        if self.min_digits:
            rules.append(f"davon mindestens {self.min_digits} Ziffer(n)")
        if self.min_special:
            space = " und Leerzeichen" if " " in self.special_characters else ""
            rules.append(f"davon mindestens {self.min_special} Sonderzeichen "
                         f"(erlaubt sind: {shown}{space})")
        if self.reject_username:
            rules.append("darf den Benutzernamen nicht enthalten")
        if self.reject_common:
            rules.append("darf kein bekanntes, leicht zu erratendes Passwort sein "
                         "(wie „Passwort1!“)")
        return rules

    def problems(self, password: str, username: str = "") -> list[str]:
        """Every rule ``password`` breaks, as German messages; empty when it is acceptable.

        An empty password gets one message asking for it, not one per rule.
        """
        password = normalise_password(password)
        if not password:
            return [EMPTY_PASSWORD]
        if len(password) > self.max_length:
            return [f"Das Passwort darf höchstens {self.max_length} Zeichen lang sein."]
        other = {ch for ch in password
                 if not (ch.isalnum() or ch in self.special_characters)}
        problems = []
        if len(password) < self.min_length:
            problems.append(f"Das Passwort muss mindestens {_how_many(self.min_length, 'Zeichen')}"
                            " lang sein.")
        counted = (
            (self.min_letters, sum(ch.isalpha() for ch in password), "Buchstabe"),
            (self.min_uppercase, sum(ch.isupper() for ch in password), "Großbuchstabe"),
            (self.min_lowercase, sum(ch.islower() for ch in password), "Kleinbuchstabe"),
            (self.min_digits, sum(ch.isdigit() for ch in password), "Ziffer"),
            (self.min_special, sum(ch in self.special_characters for ch in password),
             "Sonderzeichen"),
        )
        for minimum, found, noun in counted:
            if found < minimum:
                problems.append(f"Das Passwort muss mindestens {_how_many(minimum, noun)} "
                                "enthalten.")
        if other:
            problems.append("Das Passwort enthält nicht erlaubte Zeichen. Erlaubt sind Buchstaben, "
                            "Ziffern und die genannten Sonderzeichen.")
        if self.reject_username and len(username) >= 3 and \
                username.casefold() in password.casefold():
            problems.append("Das Passwort darf den Benutzernamen nicht enthalten.")
        if self.reject_common and is_common_password(password):
            problems.append("Dieses Passwort ist zu bekannt und leicht zu erraten. Bitte wählen "
                            "Sie ein anderes.")
        return problems


EMPTY_PASSWORD = "Bitte geben Sie ein Passwort an."

# What the password must contain, in the accusative ("mindestens einen Großbuchstaben"): one
# in words with its article, more as digits with the plural.
_ACCUSATIVE: dict[str, tuple[str, str]] = {
    "Zeichen": ("ein Zeichen", "Zeichen"),
    "Buchstabe": ("einen Buchstaben", "Buchstaben"),
    "Großbuchstabe": ("einen Großbuchstaben", "Großbuchstaben"),
    "Kleinbuchstabe": ("einen Kleinbuchstaben", "Kleinbuchstaben"),
    "Ziffer": ("eine Ziffer", "Ziffern"),
    "Sonderzeichen": ("ein Sonderzeichen", "Sonderzeichen"),
}


def _how_many(count: int, noun: str) -> str:
    """A count of ``noun`` as the error sentences say it: "eine Ziffer", "2 Ziffern"."""
    one, several = _ACCUSATIVE[noun]
    return one if count == 1 else f"{count} {several}"


def normalise_password(password: str) -> str:
    """NFKC, so that the same password typed on another keyboard or system still matches."""
    return unicodedata.normalize("NFKC", password)


@functools.cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30 000 most frequent passwords of public leaks, lower-cased.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    """True for a listed password, also when only dressed up with case, digits or symbols.

    "Passwort1!" is refused because its core "passwort" is listed; a passphrase is not.
    """
    common = _common_passwords()
    lowered = password.casefold()
    core = lowered.strip("0123456789" + "".join(ch for ch in lowered if not ch.isalnum()))
    return lowered in common or (len(core) >= 4 and core in common)


class HashingBusy(Exception):
    """Every hashing slot of this process stayed taken for the whole wait: the IdP is
    overloaded. Raised before any work was done, so the caller has changed nothing yet."""


class HashingSlots:
    """At most ``size`` argon2 computations of this process at once; the rest wait their turn.

    Each computation holds the argon2 memory cost (64 MiB by default) while it runs, so a flood
    of logins or registrations would otherwise take memory without bound. A caller that waits
    longer than ``wait_seconds`` gets :class:`HashingBusy` instead of a slot.

    With ``nice`` > 0 the computations run in ``size`` threads of their own whose CPU priority
    is that much lower (Linux: per thread): a cheap request (an SSO round trip, a page) of the
    same worker then gets the CPU as soon as it wants it instead of sharing it with every hash
    running, while the hashes still use every cycle nobody else wants. The request thread waits
    for its hash without holding the GIL. ``nice=0`` hashes in the request's own thread.
    """

    def __init__(self, size: int, wait_seconds: float, nice: int = 0) -> None:
        if size < 1:
            raise ValueError("at least one hashing slot is needed")
        if not 0 <= nice <= 19:
            raise ValueError("nice must be between 0 and 19")
        self._slots = threading.BoundedSemaphore(size)
        self._wait_seconds = wait_seconds
        # One thread per slot: a caller holding a slot never waits for a thread.
        self._pool = ThreadPoolExecutor(size, "argon2", _lower_priority, (nice,)) \
            if nice else None

    def run(self, work: Callable[[], T]) -> T:
        """``work()`` once a slot is free; :class:`HashingBusy` if none frees up in time."""
        if not self._slots.acquire(timeout=self._wait_seconds):
            raise HashingBusy
        try:
            if self._pool is None:
                return work()
            return self._pool.submit(work).result()
        finally:
            self._slots.release()


def _lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority by ``nice`` (Linux; elsewhere nice() would
    lower the whole process, so nothing happens there)."""
    if sys.platform == "linux":
        os.nice(nice)


class PasswordHasher:
    """argon2id with the configured cost; knows when a stored hash needs a rehash.

    Every hash and verification takes one of ``slots`` (without them, a pool of the configured
    defaults' size), so that memory stays bounded under a flood.
    """

    def __init__(self, parameters: Argon2Parameters, slots: HashingSlots | None = None) -> None:
        self._argon2 = Argon2Hasher(time_cost=parameters.time_cost,
                                    memory_cost=parameters.memory_cost_kib,
                                    parallelism=parameters.parallelism,
                                    type=Type.ID)
        self._slots = slots or HashingSlots(Config.argon2_concurrency, Config.argon2_wait_seconds)
        # Verified against when the username is unknown, so that an unknown user costs the
        # same time as a wrong password (no enumeration by timing).
        self._dummy_hash = self._argon2.hash("no account has this password")

    @property
    def slots(self) -> HashingSlots:
        """The slots every hash and verification of this hasher takes."""
        return self._slots

    def hash(self, password: str) -> str:
        """The argon2id hash of ``password``; :class:`HashingBusy` when overloaded."""
        normalised = normalise_password(password)
        return self._slots.run(lambda: self._argon2.hash(normalised))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password``; with ``stored_hash=None`` spend the same time and fail.

        :class:`HashingBusy` when overloaded (neither success nor failure: nothing is known).
        """
        normalised = normalise_password(password)
        try:
            ok = self._slots.run(
                lambda: self._argon2.verify(stored_hash or self._dummy_hash, normalised))
        except (VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._argon2.check_needs_rehash(stored_hash)
