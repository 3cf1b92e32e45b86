"""The workbench in a development IdP: the clock that moves at run time, the test-control API,
fault injection and the SAML tracer. :func:`idp.create_app` calls :func:`init_app` in
development only; in production none of it is registered, so its paths answer 404 like any page
that does not exist."""

from __future__ import annotations

from flask import Flask

from idp.container import app_parts
from idp.db import db
from idp.extensions import csrf
from idp.testing import clock_hook, tracer


def init_app(app: Flask) -> None:
    from idp.testing import fault_views, views  # noqa: F401  (endpoints attach to the blueprint)
    from idp.testing.api import api, unrouted
    from idp.testing.faults import WorkbenchFaults
    from idp.testing.trace_views import saml_trace

    saml = app_parts(app).saml
    saml.faults = WorkbenchFaults(lambda: db.session, saml.idp)
    saml.trace = tracer.database_tracer(app)

    clock_hook.install(app)
    app.register_blueprint(saml_trace)
    # A bearer token, not a cookie, authorises each call: no CSRF token to check.
    csrf.exempt(api)
    app.register_blueprint(api)
    app.before_request(unrouted)
