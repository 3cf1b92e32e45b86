"""How ``IDP_*`` environment variables become settings: the declaration of a setting on a field of
the configuration, the readers of its text, and the reading of a whole environment.

:class:`idp.config.Config` declares each setting on its field with :func:`setting` (its name,
reader, description, whether it is a secret and whether it is for development only) next to the
field's type and default; :func:`table` collects them into the one table that ``load_config``,
``servicekonto config show`` and the reference in docs/configuration.md are made from. Nothing
here knows a particular setting.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PREFIX = "IDP_"
# Secrets may come from a file named by NAME_FILE instead (Docker and systemd credentials).
FILE_SUFFIX = "_FILE"
MASK = "****"
_DECLARATION = "servicekonto.setting"


@dataclass(frozen=True)
class Setting:
    """One ``IDP_*`` variable and the field of the configuration it fills."""

    name: str
    # The field's path in the configuration: "mail_port", or "argon2.time_cost" in a part.
    field: str
    # Turns the variable's text into the field's value; a ValueError's text says what is wrong.
    parse: Callable[[str], Any]
    about: str
    default: Any
    # Read from NAME_FILE too, and never shown.
    secret: bool = False
    # Without effect in production, and refused there unless left at its default or off.
    development_only: bool = False
    # Why production refuses it, said after "is for development only".
    why_development_only: str = ""
    # The default in words, where the value alone does not say it (a derived or machine path).
    default_text: str = ""
    # How ``config show`` writes the value (after :func:`shown`); a secret without it: masked.
    show: Callable[[str], str] | None = None

    @property
    def file_name(self) -> str | None:
        return self.name + FILE_SUFFIX if self.secret else None


@dataclass(frozen=True)
class _Declaration:
    name: str
    parse: Callable[[str], Any]
    about: str
    secret: bool
    development_only: bool
    why_development_only: str
    default_text: str
    show: Callable[[str], str] | None


def setting(name: str, default: Any = dataclasses.MISSING, *, parse: Callable[[str], Any],
            about: str, factory: Any = dataclasses.MISSING, secret: bool = False,
            development_only: bool = False, why_development_only: str = "",
            default_text: str = "", show: Callable[[str], str] | None = None) -> Any:
    """A dataclass field that is also the setting ``name`` (see :func:`table`); ``factory``
    instead of ``default`` makes the default at each use."""
    declaration = _Declaration(name, parse, about, secret, development_only or
                               bool(why_development_only), why_development_only, default_text,
                               show)
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={_DECLARATION: declaration})


def _default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def table(cls: type, prefix: str = "") -> tuple[Setting, ...]:
    """Every setting declared on the fields of ``cls`` and of its parts (fields holding a
    dataclass), in the order of declaration."""
    found: list[Setting] = []
    for field in dataclasses.fields(cls):
        declaration = field.metadata.get(_DECLARATION)
        default = _default_of(field)
        if isinstance(declaration, _Declaration):
            found.append(Setting(
                declaration.name, prefix + field.name, declaration.parse, declaration.about,
                default, declaration.secret, declaration.development_only,
                declaration.why_development_only, declaration.default_text, declaration.show))
        elif dataclasses.is_dataclass(default) and not isinstance(default, type):
            found.extend(table(type(default), f"{prefix}{field.name}."))
    return tuple(found)


# --- readers of a variable's text -------------------------------------------------------------

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def text(raw: str) -> str:
    return raw


def word(raw: str) -> str:
    """A keyword, in any case: ``JSON`` is ``json``."""
    return raw.strip().lower()


def boolean(raw: str) -> bool:
    try:
        return _BOOL_WORDS[raw.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {raw!r}") from None


def whole_number(minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    """A reader of whole numbers from ``minimum`` to ``maximum``."""
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}, got {value}")
        return value
    return parse


def positive_number(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"must be positive, got {value}")
    return value


def path(raw: str) -> Path:
    return Path(raw)


def url(raw: str) -> str:
    """A URL without the trailing slash (its shape is checked with the other settings)."""
    return raw.rstrip("/")


def names(raw: str) -> tuple[str, ...]:
    """A comma-separated list: ``a.example, b.example``."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


# --- reading an environment -------------------------------------------------------------------

@dataclass
class Reading:
    """What an environment says: the values given (by field path), where each setting's value
    came from (by name), and every problem, one line each."""

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)


def read(settings: Collection[Setting], env: Mapping[str, str],
         others: Collection[str] = (), from_env_file: Collection[str] = ()) -> Reading:
    """Read every setting from ``env``; an empty variable counts as unset. ``others``: names
    other tools read (never a problem); ``from_env_file``: the names ``--env-file`` set."""
    reading = Reading()
    for item in settings:
        raw, source = _raw(item, env, from_env_file, reading.problems)
        if raw is None:
            reading.sources[item.name] = "default"
            continue
        reading.sources[item.name] = source
        try:
            reading.values[item.field] = item.parse(raw)
        except ValueError as error:
            reading.problems.append(f"{item.name}: {error}")
    reading.problems.extend(unknown_names(settings, env, others))
    return reading


def _raw(item: Setting, env: Mapping[str, str], from_env_file: Collection[str],
         problems: list[str]) -> tuple[str | None, str]:
    """The text of ``item`` in ``env`` (None: not given) and where it came from."""
    file_name = item.file_name
    if file_name and env.get(file_name):
        if env.get(item.name):
            problems.append(f"{item.name} and {file_name} are both set: keep one of them")
        file = env[file_name]
        try:
            return Path(file).read_text(encoding="utf-8").strip(), f"file {file}"
        except OSError as error:
            problems.append(f"{file_name}: cannot read {file}: {error.strerror}")
            return None, "default"
    raw = env.get(item.name)
    if not raw:
        return None, "default"
    return raw, "env-file" if item.name in from_env_file else "environment"


def known_names(settings: Collection[Setting]) -> list[str]:
    """Every variable a setting may be given by (with the ``_FILE`` variants of secrets)."""
    return [name for item in settings for name in (item.name, item.file_name) if name]


def unknown_names(settings: Collection[Setting], env: Mapping[str, str],
                  others: Collection[str] = ()) -> list[str]:
    """A problem for each ``IDP_*`` name in ``env`` that is no setting (nor in ``others``),
    with the nearest setting's name when one is near: a misspelt name is never ignored."""
    known = known_names(settings)
    problems = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name in known or name in others:
            continue
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        problems.append(f"{name}: no such setting" + (f" (did you mean {near[0]}?)" if near else
                                                      " (servicekonto config show lists them)"))
    return problems


# --- showing values ---------------------------------------------------------------------------

def shown(value: Any) -> str:
    """A value as the operator would write it in the variable (``true``, ``20/1000/3600``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "" or value == ():
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def without_password(value: str) -> str:
    """A URL with the password in it masked: ``postgresql://idp:****@db/idp``."""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def shown_safely(item: Setting, value: Any) -> str:
    """What ``config show`` prints: the value, a secret masked unless the setting says how to
    show it without the secret part (a URL without its password)."""
    written = shown(value)
    if item.show is not None:
        return item.show(written)
    return MASK if item.secret and value else written
