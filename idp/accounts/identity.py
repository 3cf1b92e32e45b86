"""Normalising and checking what citizens type: names, usernames, e-mail addresses.

Every function returns the normalised value or raises :class:`InvalidInput` with a German
message that the form shows next to the field.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

from idp.accounts.context import FormErrors
from idp.accounts.models import Salutation


class InvalidInput(ValueError):
    """A value a citizen typed cannot be accepted; ``str(error)`` is the German message."""


# Letters, digits and . _ - @ + : covers e-mail-like usernames, keeps lookalike tricks out.
USERNAME_SYMBOLS = "._-@+"
_USERNAME = re.compile(rf"[^\W_]|[{re.escape(USERNAME_SYMBOLS)}]")
USERNAME_MIN, USERNAME_MAX = 3, 64
# The two username rules, as the form's hint says them and as the errors name them.
USERNAME_LENGTH_RULE = f"{USERNAME_MIN} bis {USERNAME_MAX} Zeichen lang sein"
USERNAME_CHARACTERS_RULE = ("nur Buchstaben, Ziffern und die Zeichen "
                            f"{' '.join(USERNAME_SYMBOLS)} enthalten")
USERNAME_RULES = (f"Der Benutzername muss {USERNAME_LENGTH_RULE} und darf "
                  f"{USERNAME_CHARACTERS_RULE}.")
NAME_MAX = 100
EMAIL_MAX = 254  # RFC 5321's limit of a forward path, and the column width


def has_control_characters(value: str) -> bool:
    """True for control, format, surrogate, unassigned and line-separator characters and U+FFFD.

    U+FFFD is what a request that was not valid UTF-8 decodes to; CR and LF would allow mail
    header injection, and U+2028/U+2029 break lines too (in mail clients, in str.splitlines),
    although str.split() would quietly turn them into spaces.
    """
    return any(unicodedata.category(ch) in _CONTROL_CATEGORIES or ch == "\ufffd"
               for ch in value)


_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class NameField:
    """A name field as its messages say it: "Der Vorname …", "Bitte geben Sie Ihren Vornamen an"."""

    subject: str  # nominative, with its article
    asked_for: str  # accusative, as the citizen is asked for it
    required: bool


NAME_FIELDS: dict[str, NameField] = {
    "given_name": NameField("Der Vorname", "Ihren Vornamen", required=True),
    "surname": NameField("Der Nachname", "Ihren Nachnamen", required=True),
    "birth_name": NameField("Der Geburtsname", "Ihren Geburtsnamen", required=False),
}


def normalise_name(value: str, field: str) -> str:
    """A personal name (``field`` is a key of :data:`NAME_FIELDS`): NFC, inner whitespace
    collapsed, no control characters."""
    named = NAME_FIELDS[field]
    if has_control_characters(value):
        raise InvalidInput(f"{named.subject} enthält ungültige Zeichen.")
    value = " ".join(unicodedata.normalize("NFC", value).split())
    if named.required and not value:
        raise InvalidInput(f"Bitte geben Sie {named.asked_for} an.")
    if len(value) > NAME_MAX:
        raise InvalidInput(f"{named.subject} darf höchstens {NAME_MAX} Zeichen lang sein.")
    if value and not any(ch.isalpha() for ch in value):
        raise InvalidInput(f"{named.subject} muss Buchstaben enthalten.")
    return value


def normalise_username(value: str) -> str:
    """NFKC (full-width "Ｍａｘ" becomes "Max"); case is kept, since login is case-sensitive."""
    if has_control_characters(value):
        raise InvalidInput("Der Benutzername enthält ungültige Zeichen.")
    value = unicodedata.normalize("NFKC", value).strip()
    if not value:
        raise InvalidInput("Bitte geben Sie einen Benutzernamen an.")
    # The key must fit too: case folding lengthens some letters ("ß" becomes "ss").
    if not USERNAME_MIN <= len(value) <= USERNAME_MAX or len(username_key(value)) > USERNAME_MAX:
        raise InvalidInput(f"Der Benutzername muss {USERNAME_LENGTH_RULE}.")
    if any(not _USERNAME.fullmatch(ch) for ch in value):
        raise InvalidInput(f"Der Benutzername darf {USERNAME_CHARACTERS_RULE}.")
    return value


def username_key(username: str) -> str:
    """The uniqueness key: no two accounts differ only by case or Unicode width."""
    return unicodedata.normalize("NFKC", username).casefold()


def normalise_email(value: str) -> str:
    """A syntactically valid address (domain lower-cased, IDN normalised); no DNS look-up."""
    if has_control_characters(value):
        raise InvalidInput("Die E-Mail-Adresse enthält ungültige Zeichen.")
    value = value.strip()
    if not value:
        raise InvalidInput("Bitte geben Sie Ihre E-Mail-Adresse an.")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInput("Bitte geben Sie eine gültige E-Mail-Adresse an "
                           "(zum Beispiel name@beispiel.de).") from None
    # The stored key is case-folded, which lengthens some letters ("ß" becomes "ss"); an address
    # whose key would not fit its column is refused here rather than failing in the database.
    if len(email_key(result.normalized)) > EMAIL_MAX:
        raise InvalidInput(f"Die E-Mail-Adresse darf höchstens {EMAIL_MAX} Zeichen lang sein.")
    return result.normalized


def email_key(email: str) -> str:
    """The uniqueness key of an address: mail systems treat the local part case-blind."""
    return email.casefold()


def check_personal_data(form: dict[str, Any]) -> dict[str, str]:
    """Anrede and names, normalised as at registration; :class:`FormErrors` names each problem."""
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name in NAME_FIELDS:
        try:
            values[name] = normalise_name(str(form.get(name) or ""), name)
        except InvalidInput as error:
            errors[name] = [str(error)]
    salutation = str(form.get("salutation") or Salutation.KEINE_ANGABE)
    if salutation not in set(Salutation):
        errors["salutation"] = ["Bitte wählen Sie eine Anrede aus der Liste."]
    if errors:
        raise FormErrors(errors)
    return values | {"salutation": salutation}
