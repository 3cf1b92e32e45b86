"""Paths of the pages that mails link to, and absolute links built from IDP_BASE_URL.

Mail links are built from the configured base URL, never from the request's Host header, so a
forged Host cannot send a citizen's token to another site.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVATION_PATH = "/aktivieren/<token>"
PASSWORD_RESET_PATH = "/passwort-vergessen/<token>"
EMAIL_CHANGE_PATH = "/email-bestaetigen/<token>"
LOGIN_PATH = "/anmelden"
PASSWORD_FORGOTTEN_PATH = "/passwort-vergessen"
USERNAME_FORGOTTEN_PATH = "/benutzername-vergessen"


@dataclass(frozen=True)
class Links:
    base_url: str

    def _absolute(self, path: str, token: str = "") -> str:
        return self.base_url + path.replace("<token>", token)

    def activation(self, token: str) -> str:
        return self._absolute(ACTIVATION_PATH, token)

    def password_reset(self, token: str) -> str:
        return self._absolute(PASSWORD_RESET_PATH, token)

    def email_change(self, token: str) -> str:
        return self._absolute(EMAIL_CHANGE_PATH, token)

    @property
    def login(self) -> str:
        return self._absolute(LOGIN_PATH)

    @property
    def password_forgotten(self) -> str:
        return self._absolute(PASSWORD_FORGOTTEN_PATH)

    @property
    def username_forgotten(self) -> str:
        return self._absolute(USERNAME_FORGOTTEN_PATH)
