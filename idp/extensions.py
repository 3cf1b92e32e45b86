"""Flask extensions, created unbound and bound to the app in :func:`idp.create_app`."""

from __future__ import annotations

from flask_mail import Mail
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
mailer = Mail()
