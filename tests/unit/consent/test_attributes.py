"""Which BundID attributes an account releases, with which values and trust levels."""

from __future__ import annotations

import pytest

from idp.accounts.models import Citizen, Salutation
from idp.consent.attributes import (
    CATALOGUE,
    AttributeTrust,
    labels_in_catalogue_order,
    missing_required,
    release,
)
from idp.samlkit.bundid import (
    ASSERTION_PROVED_BY,
    BIRTH_NAME,
    BPK2,
    GENDER,
    GIVEN_NAME,
    MAIL,
    QAA_LEVEL,
    SURNAME,
    label_of,
)

EVERYTHING = [entry.name for entry in CATALOGUE]
PAIRWISE = "bpk2-3f9a0c"


def erika(**changes: object) -> Citizen:
    fields: dict[str, object] = {
        "salutation": Salutation.FRAU, "given_name": "Erika", "surname": "Mustermann",
        "birth_name": "Gabler", "email": "erika.mustermann@example.org"}
    return Citizen(**(fields | changes))


def values(citizen: Citizen, pairwise_id: str | None = PAIRWISE) -> dict[str, tuple[str, ...]]:
    return {item.friendly_name: item.values for item in release(citizen, EVERYTHING, pairwise_id)}


def test_the_catalogue_uses_the_bundid_names() -> None:
    assert {entry.friendly_name: entry.name for entry in CATALOGUE} == {
        "gender": "urn:oid:1.3.6.1.4.1.33592.1.3.5",
        "givenName": "urn:oid:2.5.4.42",
        "surname": "urn:oid:2.5.4.4",
        "birthName": "urn:oid:1.2.40.0.10.2.1.1.225566",
        "mail": "urn:oid:0.9.2342.19200300.100.1.3",
        "bPK2": "urn:oid:1.3.6.1.4.1.25484.494450.3",
        "EID-CITIZEN-QAA-LEVEL": "urn:oid:1.2.40.0.10.2.1.1.261.94",
        "AssertionProvedBy": "urn:oid:1.3.6.1.4.1.25484.494450.2",
        # Read from an eID card (issue 14's list).
        "personalTitle": "urn:oid:0.9.2342.19200300.100.1.40",
        "birthdate": "urn:oid:1.2.40.0.10.2.1.1.55",
        "placeOfBirth": "urn:oid:1.3.6.1.5.5.7.9.2",
        "postalAddress": "urn:oid:2.5.4.16",
        "postalCode": "urn:oid:2.5.4.17",
        "localityName": "urn:oid:2.5.4.7",
        "country": "urn:oid:1.2.40.0.10.2.1.1.225599",
        "nationality": "urn:oid:1.2.40.0.10.2.1.1.225577",
        "documentType": "urn:oid:1.2.40.0.10.2.1.1.552255",
        "pseudonym": "urn:oid:1.2.40.0.10.2.1.1.226699",
    }


def test_an_account_releases_its_data_under_german_labels() -> None:
    released = release(erika(), EVERYTHING, PAIRWISE)
    assert [(item.label, item.values) for item in released] == [
        ("Anrede", ("2",)),
        ("Vorname", ("Erika",)),
        ("Nachname", ("Mustermann",)),
        ("Geburtsname", ("Gabler",)),
        ("E-Mail-Adresse", ("erika.mustermann@example.org",)),
        ("Servicekonto-Kennung (bPK2)", (PAIRWISE,)),
        ("Vertrauensniveau", ("STORK-QAA-Level-1",)),
        ("Art der Anmeldung", ("Benutzername",)),
    ]


@pytest.mark.parametrize(("salutation", "code"), [
    (Salutation.HERR, "1"), (Salutation.FRAU, "2"),
    (Salutation.DIVERS, "9"), (Salutation.KEINE_ANGABE, "9"),
])
def test_anrede_is_released_as_its_iso_5218_code(salutation: Salutation, code: str) -> None:
    assert values(erika(salutation=salutation))["gender"] == (code,)


def test_divers_is_released_as_9_and_the_consent_page_says_so() -> None:
    (gender,) = release(erika(salutation=Salutation.DIVERS), [GENDER], PAIRWISE)
    assert gender.values == ("9",)
    assert "divers" in gender.shown_values[0]
    assert "keine Angabe" in gender.shown_values[0]


def test_self_entered_data_is_untergeordnet_and_verified_data_normal() -> None:
    levels = {item.friendly_name: item.trust_level
              for item in release(erika(), EVERYTHING, PAIRWISE)}
    for friendly_name in ("gender", "givenName", "surname", "birthName"):
        assert levels[friendly_name] is AttributeTrust.UNTERGEORDNET
    for friendly_name in ("mail", "bPK2", "EID-CITIZEN-QAA-LEVEL", "AssertionProvedBy"):
        assert levels[friendly_name] is AttributeTrust.NORMAL


@pytest.mark.parametrize("birth_name", [None, ""])
def test_an_empty_birth_name_is_not_released(birth_name: str | None) -> None:
    assert "birthName" not in values(erika(birth_name=birth_name))


def test_bpk2_is_released_only_when_the_portal_has_a_pairwise_id() -> None:
    assert "bPK2" not in values(erika(), pairwise_id=None)


def test_only_the_requested_attributes_are_released_in_catalogue_order() -> None:
    released = release(erika(), [MAIL, "urn:oid:9.9.9", GIVEN_NAME], PAIRWISE)
    assert [item.name for item in released] == [GIVEN_NAME, MAIL]


def test_required_attributes_the_account_cannot_give_are_named() -> None:
    citizen = erika(birth_name=None)
    assert missing_required(citizen, [GIVEN_NAME, SURNAME, MAIL], PAIRWISE) == []
    assert missing_required(citizen, [GIVEN_NAME, BIRTH_NAME], PAIRWISE) == [BIRTH_NAME]
    assert missing_required(citizen, [BPK2, "urn:oid:9.9.9"], None) == [
        BPK2, "urn:oid:9.9.9"]


def test_labels_follow_the_catalogue_and_keep_unknown_names() -> None:
    assert label_of(QAA_LEVEL) == "Vertrauensniveau"
    assert label_of("urn:oid:9.9.9") == "urn:oid:9.9.9"
    assert labels_in_catalogue_order([ASSERTION_PROVED_BY, "urn:oid:9.9.9", SURNAME]) == [
        "Nachname", "Art der Anmeldung", "urn:oid:9.9.9"]
