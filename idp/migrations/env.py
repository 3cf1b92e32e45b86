"""Alembic environment: runs against the engine the IdP's configuration names."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from idp.db import Base, make_engine
from idp.models import import_all_models

import_all_models()
config = context.config
url: str = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or ""
connection: Connection | None = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
