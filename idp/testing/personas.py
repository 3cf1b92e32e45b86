"""Personas: test citizens defined in ``policies/personas/<name>.yaml``.

A persona file says who the test citizen is (username, password, Anrede, names, e-mail, trust
level, activated or not, locked by the login throttle or not) and, for trust levels 3 and 4,
what their eID card holds. A broken file raises :class:`PersonaError` listing every problem of
every file as "file: key: problem", in the manner of the portal files
(idp/portals/policy.py). The keys are described in docs/qa-workbench.md and at the top of
``policies/personas/erika.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from idp.accounts.identity import (
    InvalidInput,
    email_key,
    normalise_email,
    normalise_name,
    normalise_username,
    username_key,
)
from idp.accounts.models import Salutation
from idp.accounts.passwords import PasswordPolicy
from idp.config import PolicyError
from idp.portals.policy import NAME_PATTERN, TRUST_LEVELS
from idp.testing.cards import EidCard, PostalAddress
from idp.testing.citizens import CitizenSpec
from idp.testing.errors import Invalid, NotFound
from idp.testing.models import CardState, DocumentType

# eID data make a persona's identity "substantiell" or "hoch": only from level 3 on.
EID_LEVELS = (3, 4)
_KEYS = {"username", "password", "salutation", "given_name", "surname", "birth_name", "email",
         "trust_level", "activated", "locked", "description", "eid"}
_REQUIRED = ("username", "password", "given_name", "surname", "email", "trust_level")
_EID_KEYS = {"document_type", "date_of_birth", "place_of_birth", "address", "nationality",
             "pseudonym", "pin", "state", "doctoral_degree", "puk"}
# Keys of a card a persona may leave out.
_EID_OPTIONAL = {"state", "doctoral_degree", "puk"}
_ADDRESS_KEYS = {"street", "postal_code", "locality", "country"}
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_NATIONALITY = re.compile(r"^(D|[A-Z]{3})$")
_PSEUDONYM = re.compile(r"^[A-Za-z0-9+/=_-]{1,128}$")
_PIN = re.compile(r"^[0-9]{6}$")
_PUK = re.compile(r"^[0-9]{10}$")


class PersonaError(PolicyError):
    """One or more persona files are broken; the message lists each problem on a line."""


def persona_folder(policy_dir: Path) -> Path:
    """Where the persona files live (``IDP_POLICY_DIR/personas``)."""
    return policy_dir / "personas"


@dataclass(frozen=True)
class Persona:
    """A test citizen as its file defines it; ``spec`` is what the account is made from."""

    name: str
    description: str
    spec: CitizenSpec
    source: Path


class _Problems:
    """Collects "key: problem" lines for one file instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.lines.append(f"{self.path}: {key}: {message}")


def load_personas(policy_dir: Path, policy: PasswordPolicy,
                  names: Iterable[str] = ()) -> list[Persona]:
    """The personas of ``policy_dir/personas`` (only ``names``, if given), sorted by name.

    Every file is checked, and the set as a whole (no username, address or card twice); any
    problem raises :class:`PersonaError` naming all of them. An unknown name is one too.
    """
    folder = persona_folder(policy_dir)
    paths = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    problems: list[str] = [f"{stray}: persona files must end in .yaml"
                           for stray in (sorted(folder.glob("*.yml")) if folder.is_dir() else [])]
    personas = []
    for path in paths:
        persona, found = parse_persona_file(path, policy)
        problems += found
        if persona is not None:
            personas.append(persona)
    problems += _clashes(personas)
    wanted = list(names)
    known = {persona.name for persona in personas}
    if unknown := [name for name in wanted if name not in known and
                   not (folder / f"{name}.yaml").exists()]:
        problems.append(f"{folder}: no persona named {', '.join(unknown)}; known are "
                        f"{', '.join(sorted(known)) or 'none'}")
    if problems:
        raise PersonaError("\n".join(problems))
    return [persona for persona in personas if not wanted or persona.name in wanted]


def persona_spec(policy_dir: Path, policy: PasswordPolicy, name: str,
                 activated: bool | None = None) -> CitizenSpec:
    """What a citizen is made from for the persona ``name``, activated or not as ``activated``
    says (None: as its file says)."""
    spec = persona_named(policy_dir, policy, name).spec
    return spec if activated is None else replace(spec, activated=activated)


def persona_named(policy_dir: Path, policy: PasswordPolicy, name: str) -> Persona:
    """The persona ``name`` (its file only is read): :class:`NotFound` if there is none,
    :class:`Invalid` naming its file's problems if it is broken."""
    path = persona_folder(policy_dir) / f"{name}.yaml"
    if not NAME_PATTERN.match(name) or not path.is_file():
        raise NotFound(f"Es gibt keine Persona namens {name!r}.")
    persona, problems = parse_persona_file(path, policy)
    if persona is None:
        raise Invalid(f"Die Datei der Persona {name} ist fehlerhaft.", {"persona": problems})
    return persona


def parse_persona_file(path: Path, policy: PasswordPolicy) -> tuple[Persona | None, list[str]]:
    """One persona file: the persona, or None and its problems."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        return None, [f"{path}: cannot read: {error.strerror}"]
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        return None, [f"{path}: not valid YAML: {error}"]
    problems = _Problems(path)
    persona = _parse(raw, path, policy, problems)
    return (persona if not problems.lines else None), problems.lines


def _parse(raw: Any, path: Path, policy: PasswordPolicy, problems: _Problems) -> Persona | None:
    if not NAME_PATTERN.match(path.stem):
        problems.add("file name", f"{path.stem!r} is not a valid persona name (lower-case "
                                  "letters, digits, - and _, at most 40 characters)")
    if not isinstance(raw, dict):
        problems.add("(file)", "expected a mapping of keys")
        return None
    for key in _REQUIRED:
        if key not in raw:
            problems.add(key, "missing")
    for key in sorted(set(map(str, raw)) - _KEYS):
        problems.add(key, "unknown key")
    read = _Reader(raw, problems)
    username = read.text("username", normalise_username)
    password = read.text("password")
    if password and (rules := policy.problems(password, username)):
        problems.add("password", "refused by the password policy: " + " ".join(rules))
    salutation = read.choice("salutation", [s.value for s in Salutation], "keine_angabe")
    given_name = read.text("given_name", lambda v: normalise_name(v, "given_name"))
    surname = read.text("surname", lambda v: normalise_name(v, "surname"))
    birth_name = read.text("birth_name", lambda v: normalise_name(v, "birth_name"),
                           required=False)
    email = read.text("email", normalise_email)
    level_name = read.choice("trust_level", list(TRUST_LEVELS), None)
    level = TRUST_LEVELS.get(level_name or "", 1)
    activated = read.flag("activated", True)
    locked = read.flag("locked", False)
    if locked and not activated:
        problems.add("locked", "only an activated persona can be locked by the login throttle")
    description = read.text("description", required=False)
    card = None
    if "eid" in raw:
        if level_name and level not in EID_LEVELS:
            problems.add("eid", "only for STORK-QAA-Level-3 and STORK-QAA-Level-4")
        card = _card(raw["eid"], problems)
    elif level in EID_LEVELS:
        problems.add("eid", f"missing: {level_name} needs the data of an eID card")
    if problems.lines:
        return None
    spec = CitizenSpec(username=username, password=password, email=email,
                       given_name=given_name, surname=surname, birth_name=birth_name,
                       salutation=salutation or "keine_angabe", trust_level=level,
                       activated=activated, locked=locked, card=card, persona=path.stem)
    return Persona(path.stem, description, spec, path)


class _Reader:
    """Reads keys of one mapping, noting each problem under its (dotted) key."""

    def __init__(self, raw: Mapping[str, Any], problems: _Problems, prefix: str = "") -> None:
        self._raw = raw
        self._problems = problems
        self._prefix = prefix

    def fail(self, key: str, message: str) -> None:
        self._problems.add(self._prefix + key, message)

    def text(self, key: str, check: Callable[[str], str] | None = None,
             required: bool = True) -> str:
        value = self._raw.get(key)
        if value is None:
            return ""  # a missing required key is reported once, by the caller
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(key, "must be a non-empty text")
            return ""
        if check is None:
            return value.strip()
        try:
            return check(value)
        except InvalidInput as error:
            # The registration form's own message, as a citizen would see it.
            self.fail(key, f"refused by the registration form: {error}")
            return ""

    def choice(self, key: str, allowed: list[str], default: str | None) -> str | None:
        value = self._raw.get(key, default)
        if value is None:
            return None
        if value not in allowed:
            self.fail(key, f"must be one of {', '.join(allowed)}")
            return None
        return str(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return default
        return value

    def pattern(self, key: str, pattern: re.Pattern[str], what: str) -> str:
        value = self._raw.get(key)
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(key, f"must be {what}")
            return ""
        return value


def _card(raw: Any, problems: _Problems) -> EidCard | None:
    if not isinstance(raw, dict):
        problems.add("eid", "expected a mapping of the card's data")
        return None
    for key in sorted(_EID_KEYS - _EID_OPTIONAL - set(map(str, raw))):
        problems.add(f"eid.{key}", "missing")
    for key in sorted(set(map(str, raw)) - _EID_KEYS):
        problems.add(f"eid.{key}", "unknown key")
    read = _Reader(raw, problems, "eid.")
    document_type = read.choice("document_type", [t.value for t in DocumentType], None)
    born = raw.get("date_of_birth")
    if "date_of_birth" in raw and (not isinstance(born, date) or born >= date.today()):
        read.fail("date_of_birth", "must be a date in the past, written YYYY-MM-DD")
    place_of_birth = read.text("place_of_birth")
    address = _address(raw.get("address"), problems) if "address" in raw else None
    nationality = read.pattern("nationality", _NATIONALITY,
                               "an ICAO 9303 nationality code: D, or three capital letters")
    pseudonym = read.pattern("pseudonym", _PSEUDONYM,
                             "1 to 128 characters of A-Z a-z 0-9 + / = _ -")
    pin = read.pattern("pin", _PIN, 'six digits in quotes, e.g. "123456"')
    puk = read.pattern("puk", _PUK, 'ten digits in quotes, e.g. "1234567890"') \
        if "puk" in raw else None
    degree = read.text("doctoral_degree") if "doctoral_degree" in raw else None
    if degree is not None and len(degree) > 40:
        read.fail("doctoral_degree", "must have at most 40 characters")
    state = read.choice("state", [s.value for s in CardState], CardState.VALID.value)
    if document_type is None or address is None or not isinstance(born, date) or state is None:
        return None
    return EidCard(DocumentType(document_type), born, place_of_birth, address, nationality,
                   pseudonym, pin, CardState(state), degree or None, puk or None)


def _address(raw: Any, problems: _Problems) -> PostalAddress | None:
    if not isinstance(raw, dict):
        problems.add("eid.address", "expected a mapping: street, postal_code, locality, country")
        return None
    for key in sorted(_ADDRESS_KEYS - set(map(str, raw))):
        problems.add(f"eid.address.{key}", "missing")
    for key in sorted(set(map(str, raw)) - _ADDRESS_KEYS):
        problems.add(f"eid.address.{key}", "unknown key")
    read = _Reader(raw, problems, "eid.address.")
    street, locality = read.text("street"), read.text("locality")
    postal_code = read.text("postal_code")
    if len(postal_code) > 10:
        read.fail("postal_code", "must have at most 10 characters")
    country = read.pattern("country", _COUNTRY, "an ISO 3166-1 alpha-2 code such as DE")
    return PostalAddress(street, postal_code, locality, country)


def _clashes(personas: list[Persona]) -> list[str]:
    """Two personas with one username, address or card cannot both be loaded."""
    problems = []
    keys: list[tuple[str, Callable[[CitizenSpec], str | None]]] = [
        ("username", lambda spec: username_key(spec.username)),
        ("email", lambda spec: email_key(spec.email)),
        ("eid.pseudonym", lambda spec: spec.card.pseudonym if spec.card else None)]
    for key, value_of in keys:
        seen: dict[str, Persona] = {}
        for persona in personas:
            value = value_of(persona.spec)
            if value is None:
                continue
            if other := seen.get(value):
                problems.append(f"{persona.source}: {key}: also used by {other.source}")
            seen[value] = persona
    return problems
