"""What the account services work with, passed in explicitly (no Flask in the services)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import Citizen
from idp.accounts.passwords import PasswordHasher, PasswordPolicy
from idp.german import duration
from idp.links import Links
from idp.mail.outbox import MailTemplates, Outbox


class FormErrors(Exception):
    """Input a citizen must correct: German messages per form field ("" for the whole form)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> FormErrors:
        return cls({field: [message]})


@dataclass(frozen=True)
class AccountSettings:
    activation_valid: timedelta = timedelta(hours=24)
    password_reset_valid: timedelta = timedelta(minutes=60)
    email_change_valid: timedelta = timedelta(hours=24)
    privacy_version: str = "2026-11"

    # How long each kind of link is valid, as the mails and the pages say it ("24 Stunden").
    @property
    def activation_period(self) -> str:
        return duration(self.activation_valid)

    @property
    def password_reset_period(self) -> str:
        return duration(self.password_reset_valid)

    @property
    def email_change_period(self) -> str:
        return duration(self.email_change_valid)



@dataclass
class AccountContext:
    """One unit of work: a database session, the time, and the collaborators of the services."""

    session: Session
    now: datetime
    hasher: PasswordHasher
    policy: PasswordPolicy
    templates: MailTemplates
    links: Links
    settings: AccountSettings = field(default_factory=AccountSettings)

    @property
    def outbox(self) -> Outbox:
        return Outbox(self.session, self.templates, self.now)

    def citizen(self, citizen_id: int) -> Citizen | None:
        return self.session.get(Citizen, citizen_id)

    def citizen_by_username_key(self, key: str) -> Citizen | None:
        return self.session.scalar(select(Citizen).where(Citizen.username_key == key))
