"""Flask extensions of the portal app, created unbound and bound in :func:`sp_client.create_app`.

The portal has a database of its own (``portal_db``), separate from the IdP's.
"""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

from sp_client.database import PortalDatabase

csrf = CSRFProtect()
portal_db = PortalDatabase()
