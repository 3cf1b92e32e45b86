"""Fault injection (development only): the next answers to a portal carry a named fault.

Each fault makes a Response that a correct portal must refuse (docs/qa-workbench.md, "Fault
injection"): broken signatures, times, addresses, a replay, a wrapped assertion, data left out;
and the status answers a portal must meet with a page of its own: every SAML status the IdP
sends and every akdb:StatusDetail code. ``PUT /testing/api/portals/{name}/fault`` and
``servicekonto testing fault`` set them; :class:`WorkbenchFaults`, installed on the SAML runtime
in development, puts them into the answers.

Everything else in a broken answer is as in the right one: the same request, citizen,
attributes, signing and encryption as the portal's policy says, so that a portal that accepts
it accepts exactly the one fault.
"""

from __future__ import annotations

import base64
import copy
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.clock import utcnow
from idp.saml.akdb import StatusDetail
from idp.saml.response import ResponseBuilder, Signing
from idp.saml.server import SamlIdp
from idp.saml.workbench_hooks import InjectedFault, PlannedAnswer
from idp.samlkit.ids import new_id
from idp.samlkit.keys import generate_key_pair
from idp.testing.errors import Invalid
from idp.testing.fault_models import PortalFault

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
OTHER_PORTAL = "https://anderes-portal.example/saml"
OTHER_IDP = "https://anderer-idp.example/saml/metadata"
UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
MAX_COUNT = 100


@dataclass(frozen=True)
class Fault:
    name: str
    # What the Response carries, in words.
    what: str
    # What a correct portal does with it.
    expected: str


_REFUSE = "ablehnen: keine Sitzung, eine Fehlerseite des Portals"
_PAGE = "keine Sitzung; eine eigene Seite, die sagt, was geschah"

BROKEN = (
    Fault("unsigned", "weder Response noch Assertion signiert", _REFUSE),
    Fault("wrong-key", "signiert mit einem Schlüssel, der nicht in den Metadaten steht", _REFUSE),
    Fault("tampered", "ein Wert der Assertion nach dem Signieren geändert", _REFUSE),
    Fault("sha1", "signiert mit RSA-SHA1 und SHA-1-Digest", _REFUSE),
    Fault("expired", "NotOnOrAfter liegt eine Stunde zurück", _REFUSE),
    Fault("not-yet-valid", "NotBefore liegt eine Stunde voraus", _REFUSE),
    Fault("wrong-audience", "Audience nennt ein anderes Portal", _REFUSE),
    Fault("wrong-recipient", "Recipient der SubjectConfirmationData ist ein anderer ACS",
          _REFUSE),
    Fault("wrong-destination", "Destination der Response ist ein anderer ACS", _REFUSE),
    Fault("wrong-in-response-to", "InResponseTo nennt eine Anfrage, die das Portal nie stellte",
          _REFUSE),
    Fault("replayed", "die letzte richtige Response an das Portal noch einmal", _REFUSE),
    Fault("wrong-issuer", "Issuer ist ein anderer IdP (mit unserem Schlüssel signiert)", _REFUSE),
    Fault("xsw", "eine zweite, unsignierte Assertion vor der signierten (Signature Wrapping)",
          _REFUSE),
    Fault("missing-attribute", "ein verlangtes Attribut fehlt", _REFUSE),
    Fault("lower-trust-level", "ein niedrigeres Vertrauensniveau als verlangt", _REFUSE),
)

# Every SAML status the IdP sends (docs/architecture.md, "Single sign-on"): (top, second level).
STATUSES = {
    "status:AuthnFailed": ("Responder", "AuthnFailed"),
    "status:NoPassive": ("Responder", "NoPassive"),
    "status:NoAuthnContext": ("Responder", "NoAuthnContext"),
    "status:UnknownPrincipal": ("Responder", "UnknownPrincipal"),
    "status:RequestDenied": ("Requester", "RequestDenied"),
    "status:InvalidNameIDPolicy": ("Requester", "InvalidNameIDPolicy"),
    "status:RequestUnsupported": ("Requester", "RequestUnsupported"),
    "status:VersionMismatch": ("VersionMismatch", None),
}
# Every akdb:StatusDetail code, with the status the IdP sends it with.
DETAILS = {
    StatusDetail.REQUIRED_ATTRIBUTES_MISSING: ("Requester", "RequestDenied"),
    StatusDetail.REQUIRED_ATTRIBUTES_NOT_ALLOWED: ("Requester", "RequestDenied"),
    StatusDetail.CONSENT_DECLINED: ("Requester", "RequestDenied"),
    StatusDetail.AUTHN_CANCELLED: ("Responder", "AuthnFailed"),
    StatusDetail.AUTHN_METHOD_NOT_AVAILABLE: ("Responder", "NoAuthnContext"),
    StatusDetail.TRUST_LEVEL_NOT_REACHABLE: ("Responder", "NoAuthnContext"),
    StatusDetail.PASSIVE_NOT_POSSIBLE: ("Responder", "NoPassive"),
    StatusDetail.NAME_ID_FORMAT_NOT_SUPPORTED: ("Requester", "InvalidNameIDPolicy"),
    StatusDetail.INVALID_EXTENSION: ("Requester", "RequestUnsupported"),
}
STATUS_ANSWERS = tuple(
    [Fault(name, f"Fehlerstatus {' / '.join(filter(None, codes))}", _PAGE)
     for name, codes in STATUSES.items()]
    + [Fault(f"detail:{code.value}", f"Fehlerstatus {top} / {second} mit akdb:StatusDetail "
             f"{code.value}", _PAGE) for code, (top, second) in DETAILS.items()])
FAULTS: dict[str, Fault] = {fault.name: fault for fault in BROKEN + STATUS_ANSWERS}


# --- the faults waiting for a portal -----------------------------------------------------------

def set_fault(session: Session, portal: str, fault: str, count: int = 1) -> PortalFault:
    """The next ``count`` answers to ``portal`` (entity ID) carry ``fault``."""
    if fault not in FAULTS:
        raise Invalid(f"Unbekannter Fehler „{fault}“. GET /testing/api/faults nennt alle.",
                      {"fault": ["unbekannt"]})
    if not 1 <= count <= MAX_COUNT:
        raise Invalid(f"„count“ muss zwischen 1 und {MAX_COUNT} liegen.",
                      {"count": ["außerhalb von 1 … 100"]})
    row = session.get(PortalFault, portal) or PortalFault(portal=portal)
    row.fault, row.remaining, row.set_at = fault, count, utcnow()
    session.add(row)
    session.commit()
    return row


def clear_fault(session: Session, portal: str) -> None:
    if (row := session.get(PortalFault, portal)) is not None:
        row.fault, row.remaining = None, 0
        session.commit()


def waiting_faults(session: Session) -> list[PortalFault]:
    """The portals with a fault still to inject."""
    return list(session.scalars(select(PortalFault).where(PortalFault.remaining > 0)
                                .order_by(PortalFault.portal)))


def _take(session: Session, portal: str) -> str | None:
    """One of the portal's waiting faults, counted down in the same statement (two workers
    never both take the last one)."""
    fault: str | None = session.execute(
        update(PortalFault).where(PortalFault.portal == portal, PortalFault.remaining > 0)
        .values(remaining=PortalFault.remaining - 1).returning(PortalFault.fault)).scalar()
    session.commit()
    return fault


# --- putting them into answers -----------------------------------------------------------------

class WorkbenchFaults:
    """The :class:`idp.saml.workbench_hooks.FaultInjector` of a development IdP."""

    def __init__(self, session: Callable[[], Session], idp: SamlIdp) -> None:
        self.session = session
        self.idp = idp

    def inject(self, portal: str, planned: PlannedAnswer,
               builder: ResponseBuilder) -> InjectedFault | None:
        session = self.session()
        fault = _take(session, portal)
        if fault is None:
            return None
        if fault == "replayed":
            row = session.get(PortalFault, portal)
            if row is not None and row.last_answer:
                return InjectedFault(fault, row.last_answer)
            # Nothing went to the portal yet: this answer is the right one (and kept), the
            # fault waits for the next login, which gets it again.
            session.execute(update(PortalFault).where(PortalFault.portal == portal)
                            .values(remaining=PortalFault.remaining + 1))
            session.commit()
            return None
        if fault in STATUSES or fault.startswith("detail:"):
            return InjectedFault(fault, self._status_answer(fault, planned))
        return InjectedFault(fault, broken_answer(fault, planned, builder))

    def answered(self, portal: str, xml: str) -> None:
        """Keep the right answer just sent to ``portal`` (for ``replayed``)."""
        session = self.session()
        row = session.get(PortalFault, portal) or PortalFault(portal=portal, remaining=0)
        row.last_answer = xml
        session.add(row)
        session.commit()

    def _status_answer(self, fault: str, planned: PlannedAnswer) -> str:
        detail: str | None = None
        second: str | None
        if fault.startswith("detail:"):
            code = StatusDetail(fault.removeprefix("detail:"))
            top, second = DETAILS[code]
            detail = code.value
        else:
            top, second = STATUSES[fault]
        return self.idp.create_error_response(
            planned.request, STATUS + top, STATUS + second if second else None,
            f"Testfehler {fault} (QA-Werkbank)", sign=planned.signing.sign_response,
            status_detail=detail)


def broken_answer(fault: str, planned: PlannedAnswer, builder: ResponseBuilder) -> str:
    """The Response for ``planned`` with ``fault`` in it (one of :data:`BROKEN`)."""
    recipient, now, released = planned.recipient, planned.now, list(planned.released)
    authentication = planned.authentication
    if fault == "expired":
        now -= timedelta(hours=1)
    elif fault == "not-yet-valid":
        now += timedelta(hours=1)
    elif fault == "wrong-audience":
        recipient = replace(recipient, audience=OTHER_PORTAL + "/metadata")
    elif fault == "wrong-in-response-to":
        recipient = replace(recipient, in_response_to=new_id())
    elif fault == "missing-attribute":
        left_out = next((item for item in released if item.name in planned.required),
                        released[0] if released else None)
        released = [item for item in released if item is not left_out]
    elif fault == "lower-trust-level":
        authentication = replace(authentication, class_ref=_lower(planned))
    # Built whole but unsigned and in clear; changed, signed and encrypted below as the
    # portal's policy says.
    root = etree.fromstring(builder.build(
        recipient, planned.name_id, planned.name_id_format, released, authentication,
        Signing(sign_response=False, sign_assertion=False), now).encode("utf-8"))
    assertion = root.find(f"{{{SAML}}}Assertion")
    if fault == "wrong-recipient":
        assertion.find(f".//{{{SAML}}}SubjectConfirmationData").set(
            "Recipient", OTHER_PORTAL + "/acs")
    elif fault == "wrong-destination":
        root.set("Destination", OTHER_PORTAL + "/acs")
    elif fault == "wrong-issuer":
        for issuer in root.iter(f"{{{SAML}}}Issuer"):
            issuer.text = OTHER_IDP
    sign: Callable[[Sequence[etree._Element]], None] = {
        "unsigned": lambda elements: None,
        "wrong-key": lambda elements: builder.crypto.sign_elements(elements, *_stranger_key()),
        "sha1": lambda elements: _sign_sha1(root, elements, builder),
    }.get(fault, lambda elements: builder.crypto.sign_elements(
        elements, builder.key_file, builder.certificate))
    signing = planned.signing
    if fault in ("tampered", "xsw"):
        # The change must come after a signature it breaks: the assertion is signed even
        # where the policy signs only the Response.
        signing = replace(signing, sign_assertion=True)
    if signing.sign_assertion:
        sign([assertion])
    if fault == "tampered":
        _tamper(assertion)
    elif fault == "xsw":
        assertion.addprevious(_evil_twin(assertion))
    if planned.encryption is not None:
        for item in root.findall(f"{{{SAML}}}Assertion"):
            encrypted = builder.crypto.encrypt_element(copy.deepcopy(item),
                                                       planned.encryption.certificate,
                                                       planned.encryption.name)
            holder = etree.Element(f"{{{SAML}}}EncryptedAssertion")
            holder.append(encrypted)
            item.addprevious(holder)
            root.remove(item)
    if signing.sign_response:
        sign([root])
    return str(etree.tostring(root, encoding="unicode"))


def _lower(planned: PlannedAnswer) -> str:
    """One STORK-QAA level below the one asked for; below level 1 there is none, so
    ``unspecified`` (no level at all)."""
    asked = [int(ref.rsplit("-", 1)[1]) for ref in planned.request.requested_contexts
             if ref.startswith("STORK-QAA-Level-") and ref[-1:].isdigit()]
    level = max(asked, default=1) - 1
    return f"STORK-QAA-Level-{level}" if level >= 1 else UNSPECIFIED


def _tamper(assertion: etree._Element) -> None:
    """Change what a portal would take: the first attribute value, else the NameID."""
    value = assertion.find(f".//{{{SAML}}}AttributeValue")
    target = value if value is not None else assertion.find(f".//{{{SAML}}}NameID")
    target.text = (target.text or "") + "-geaendert"


def _evil_twin(assertion: etree._Element) -> etree._Element:
    """An unsigned copy of the signed assertion with another ID and other values."""
    evil = copy.deepcopy(assertion)
    for signature in evil.findall(f"{{{DSIG}}}Signature"):
        evil.remove(signature)
    evil.set("ID", new_id())
    name_id = evil.find(f".//{{{SAML}}}NameID")
    if name_id is not None:
        name_id.text = "_angreifer"
    for value in evil.iter(f"{{{SAML}}}AttributeValue"):
        value.text = "Angreifer"
    return evil


@cache
def _stranger_key() -> tuple[str, str]:
    """A key pair of this process that no metadata names: (key file, certificate base64)."""
    pair = generate_key_pair(Path(tempfile.mkdtemp(prefix="servicekonto-fremder-schluessel-")),
                             common_name="Fremder Schluessel (QA-Werkbank)")
    return str(pair.key_file), _certificate_b64(pair.certificate)


def _certificate_b64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")


def _sign_sha1(root: etree._Element, elements: Sequence[etree._Element],
               builder: ResponseBuilder) -> None:
    """Enveloped signatures with RSA-SHA1 and a SHA-1 digest (which the kit never makes)."""
    constants = xmlsec.constants
    xmlsec.tree.add_ids(root, ["ID"])
    for element in elements:
        signature = xmlsec.template.create(element, constants.TransformExclC14N,
                                           constants.TransformRsaSha1, ns="ds")
        reference = xmlsec.template.add_reference(signature, constants.TransformSha1,
                                                  uri="#" + element.get("ID"))
        xmlsec.template.add_transform(reference, constants.TransformEnveloped)
        xmlsec.template.add_transform(reference, constants.TransformExclC14N)
        xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
        issuer = element.find(f"{{{SAML}}}Issuer")
        element.insert(0 if issuer is None else element.index(issuer) + 1, signature)
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_file(builder.key_file, constants.KeyDataFormatPem)
        context.key.load_cert_from_memory(base64.b64decode(builder.certificate),
                                          constants.KeyDataFormatCertDer)
        context.sign(signature)
