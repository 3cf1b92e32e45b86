"""Schema migrations (Alembic) and the start-up check that the schema is current."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from idp.config import ConfigError


class SchemaOutdated(ConfigError):
    """The database is behind the code; ``servicekonto db upgrade`` fixes it."""


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", "idp:migrations")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def migrations() -> list[tuple[str, str]]:
    """(revision, first line of its docstring) of every migration, the newest first."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return [(revision.revision, (revision.doc or "").strip().splitlines()[0]
             if revision.doc else "") for revision in script.walk_revisions()]


def current_revision(engine: Engine) -> str | None:
    # Alembic names its dialect at INFO each time it looks ("Context impl PostgresqlImpl."),
    # which every worker did at start; what a migration itself does is still logged.
    announcer = logging.getLogger("alembic.runtime.migration")
    level = announcer.level
    announcer.setLevel(logging.WARNING)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        announcer.setLevel(level)


def check_current(engine: Engine) -> None:
    """Raise :class:`SchemaOutdated` unless the database is at the newest migration."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no schema yet" if current is None else f"is at revision {current}"
        raise SchemaOutdated(
            f"the database {engine.url.render_as_string(hide_password=True)} {state}, "
            f"the code needs {head}. Run: servicekonto db upgrade")
