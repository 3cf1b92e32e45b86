"""One place that imports every model module, so the metadata is complete (Alembic, tests)."""

from __future__ import annotations


def import_all_models() -> None:
    import idp.accounts.models
    import idp.broker.models
    import idp.consent.models
    import idp.mail.models
    import idp.portals.models
    import idp.saml.models
    import idp.security.models
    import idp.testing.fault_models
    import idp.testing.models
    import idp.testing.trace_models  # noqa: F401
