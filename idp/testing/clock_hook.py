"""The clock moved at run time reaches every request of every worker (development only).

Each app context (a request, a run of the mail sender, a command) reads the stored offset once
when it is pushed and moves :func:`idp.clock.utcnow` by it until the context ends. The app
context, not ``before_request``: Flask opens the browser session, whose idle and absolute
limits need the moved time, before any ``before_request`` hook runs. One primary-key read per
context on a connection of its own, given back at once. Production never installs this: there
the clock cannot be moved and costs nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, g
from flask.signals import appcontext_pushed
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from idp import clock
from idp.db import Database
from idp.testing.clock_store import stored_offset

log = logging.getLogger(__name__)


class RunTimeClock:
    """Reads the stored offset for each app context of one app."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self, _sender: Flask, **_extra: Any) -> None:
        """On every push of an app context: move the clock of this context."""
        if "clock_token" in g:
            return  # the same context pushed twice: read once
        try:
            with self._engine.connect() as connection:
                offset = stored_offset(connection)
        except SQLAlchemyError:
            # The database is away: this context runs on the unmoved clock; whatever it needs
            # from the database fails on its own, with its own message.
            log.warning("cannot read the run-time clock offset", exc_info=True)
            offset = timedelta(0)
        g.clock_token = clock.move_by(offset)

    @staticmethod
    def restore(_error: BaseException | None) -> None:
        """When the app context ends: back to the clock outside it."""
        token = g.pop("clock_token", None)
        if token is not None:
            clock.restore(token)


def install(app: Flask) -> None:
    """Make every app context of ``app`` read the run-time offset (call in development only)."""
    reader = RunTimeClock(Database.bound(app).engine)
    # The signal holds its receivers weakly: the reader lives as long as the app, in its
    # extensions, and leaves the signal with it.
    app.extensions["testing_clock"] = reader
    appcontext_pushed.connect(reader.read, app)
    app.teardown_appcontext(reader.restore)
