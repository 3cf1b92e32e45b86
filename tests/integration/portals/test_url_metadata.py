"""Portal metadata from a URL: fetched within limits, cached, refreshed, and kept when down."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idp.config import PolicyError
from idp.portals.registry import Fetch, MetadataRefresher, PortalRegistry
from idp.saml.sp_metadata import SignatureVerifier
from idp.samlkit.metadata import fetch_metadata
from tests.integration.portals.conftest import MetadataServer
from tests.unit.portals.support import FakeVerifier, fake_signed, sp_metadata_xml, write_policy

ENTITY_ID = "https://portal.example/saml/metadata"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CERT = b"-----BEGIN CERTIFICATE-----\nfederation signer\n-----END CERTIFICATE-----\n"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return tmp_path / "policies"


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def metadata_xml(tmp_path: Path) -> str:
    return sp_metadata_xml(tmp_path, ENTITY_ID, "https://portal.example/saml/acs")


def _load(policies: Path, instance: Path, now: datetime = NOW,
          verifier: SignatureVerifier | None = None,
          fetch: Fetch = fetch_metadata) -> PortalRegistry:
    return PortalRegistry.load(policies, instance, now=now, verifier=verifier, fetch=fetch)


def test_url_metadata_is_fetched_and_kept_in_the_instance_folder(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt", metadata=metadata_server.serve(metadata_xml))
    registry = _load(policies, instance)
    portal = registry.by_name("musterstadt")
    assert portal is not None and portal.available and portal.metadata_read_at == NOW
    assert registry.portal_for(ENTITY_ID) is not None
    assert (instance / "metadata-cache" / "musterstadt.xml").read_text() == metadata_xml


def test_a_restart_uses_the_cached_copy_while_the_url_is_down(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt", metadata=metadata_server.serve(metadata_xml))
    _load(policies, instance)
    metadata_server.stop()
    later = NOW + timedelta(hours=3)
    portal = _load(policies, instance, now=later).by_name("musterstadt")
    assert portal is not None and portal.available
    assert portal.metadata_read_at == NOW
    assert portal.problem is not None and "cannot fetch" in portal.problem


def test_a_fresh_cached_copy_saves_the_download_at_start(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt", metadata=metadata_server.serve(metadata_xml))
    _load(policies, instance)
    _load(policies, instance, now=NOW + timedelta(minutes=30))
    assert metadata_server.hits["/saml/metadata"] == 1


def test_metadata_is_fetched_again_once_the_refresh_interval_has_passed(
        tmp_path: Path, policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    url = metadata_server.serve(metadata_xml)
    write_policy(policies, "musterstadt", metadata=url, metadata_refresh_minutes=30)
    registry = _load(policies, instance)
    refresher = MetadataRefresher(registry)
    assert refresher.refresh_due(NOW + timedelta(minutes=29)) == []
    assert metadata_server.hits["/saml/metadata"] == 1

    new_xml = metadata_xml.replace("https://portal.example/saml/acs",
                                   "https://portal.example/saml/acs2")
    metadata_server.serve(new_xml)
    assert refresher.refresh_due(NOW + timedelta(minutes=30)) == ["musterstadt"]
    portal = registry.by_name("musterstadt")
    assert portal is not None
    assert [e.location for e in portal.acs_endpoints()] == ["https://portal.example/saml/acs2"]
    assert registry.metadata_xml() == [new_xml]
    # Unchanged metadata is fetched, but nothing needs reloading.
    assert refresher.refresh_due(NOW + timedelta(minutes=60)) == []
    assert metadata_server.hits["/saml/metadata"] == 3


def test_a_refresh_while_the_server_is_down_keeps_the_metadata_in_use(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt", metadata=metadata_server.serve(metadata_xml))
    registry = _load(policies, instance)
    metadata_server.stop()
    assert MetadataRefresher(registry).refresh_due(NOW + timedelta(hours=2)) == []
    portal = registry.by_name("musterstadt")
    assert portal is not None and portal.available and portal.problem
    assert registry.portal_for(ENTITY_ID) is not None


def test_an_unreachable_portal_without_cache_is_unavailable_but_the_idp_starts(
        policies: Path, instance: Path, metadata_xml: str, metadata_server: MetadataServer,
        caplog: pytest.LogCaptureFixture) -> None:
    url = metadata_server.url()
    metadata_server.stop()
    write_policy(policies, "musterstadt", metadata=url)
    with caplog.at_level(logging.WARNING, logger="idp.portals.registry"):
        registry = _load(policies, instance)
    portal = registry.by_name("musterstadt")
    assert portal is not None and not portal.available
    assert registry.portal_for(ENTITY_ID) is None
    assert registry.metadata_spec() == {}
    assert "portal musterstadt unavailable" in caplog.text


def test_an_unavailable_portal_becomes_available_when_it_answers_again(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt", metadata=metadata_server.serve(b"", status=503))
    registry = _load(policies, instance)
    assert registry.portal_for(ENTITY_ID) is None
    metadata_server.serve(metadata_xml)
    # Unavailable portals are tried again after a minute, not after the refresh interval.
    assert MetadataRefresher(registry).refresh_due(NOW + timedelta(minutes=1)) == ["musterstadt"]
    assert registry.portal_for(ENTITY_ID) is not None


def test_oversized_metadata_is_rejected(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    padded = metadata_xml.replace("</ns0:EntityDescriptor>",
                                  "<!--" + "x" * (1024 * 1024) + "--></ns0:EntityDescriptor>")
    write_policy(policies, "musterstadt", metadata=metadata_server.serve(padded))
    portal = _load(policies, instance).by_name("musterstadt")
    assert portal is not None and not portal.available
    assert portal.problem is not None and "larger than" in portal.problem
    assert not (instance / "metadata-cache" / "musterstadt.xml").exists()


def test_a_server_that_does_not_answer_in_time_is_given_up(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt",
                 metadata=metadata_server.serve(metadata_xml, delay=2.0))
    fetch = functools.partial(fetch_metadata, timeout=0.3)
    started = datetime.now(UTC)
    portal = _load(policies, instance, fetch=fetch).by_name("musterstadt")
    assert datetime.now(UTC) - started < timedelta(seconds=1.5)
    assert portal is not None and not portal.available
    assert portal.problem is not None and "timed out" in portal.problem


def test_an_http_error_page_is_not_taken_for_metadata(
        policies: Path, instance: Path, metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt", metadata=metadata_server.url("/missing"))
    portal = _load(policies, instance).by_name("musterstadt")
    assert portal is not None and portal.problem is not None and "Not Found" in portal.problem


def test_unsigned_url_metadata_is_rejected_when_a_signature_is_required(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    (policies / "portals").mkdir(parents=True)
    (policies / "portals" / "signer.pem").write_bytes(CERT)
    url = metadata_server.serve(fake_signed(metadata_xml))
    write_policy(policies, "musterstadt", metadata=url, metadata_certificate="signer.pem")
    registry = _load(policies, instance, verifier=FakeVerifier(CERT))
    assert registry.portal_for(ENTITY_ID) is not None

    # The next document is unsigned: rejected, and the signed copy stays in use and in cache.
    metadata_server.serve(metadata_xml.replace("portal.example/saml/acs", "evil.example/acs"))
    assert MetadataRefresher(registry).refresh_due(NOW + timedelta(hours=1)) == []
    portal = registry.by_name("musterstadt")
    assert portal is not None and portal.problem is not None and "not signed" in portal.problem
    assert [e.location for e in portal.acs_endpoints()] == ["https://portal.example/saml/acs"]
    restarted = _load(policies, instance, now=NOW + timedelta(hours=2),
                      verifier=FakeVerifier(CERT))
    again = restarted.by_name("musterstadt")
    assert again is not None
    assert [e.location for e in again.acs_endpoints()] == ["https://portal.example/saml/acs"]


def test_a_cached_copy_for_another_url_is_not_used(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    write_policy(policies, "musterstadt", metadata=metadata_server.serve(metadata_xml))
    _load(policies, instance)
    metadata_server.stop()
    write_policy(policies, "musterstadt", metadata="http://127.0.0.1:9/other")
    portal = _load(policies, instance).by_name("musterstadt")
    assert portal is not None and not portal.available


def test_production_refuses_metadata_over_plain_http_without_a_pinned_certificate(
        policies: Path, instance: Path, metadata_xml: str,
        metadata_server: MetadataServer) -> None:
    """Anyone answering on the network could swap the portal's endpoints and keys."""
    url = metadata_server.serve(fake_signed(metadata_xml))
    assert url.startswith("http://")
    write_policy(policies, "musterstadt", metadata=url)
    with pytest.raises(PolicyError, match="musterstadt: metadata over plain http"):
        PortalRegistry.load(policies, instance, now=NOW, plain_http_metadata=False)
    (policies / "portals" / "signer.pem").write_bytes(CERT)
    write_policy(policies, "musterstadt", metadata=url, metadata_certificate="signer.pem")
    registry = PortalRegistry.load(policies, instance, now=NOW, verifier=FakeVerifier(CERT),
                                   plain_http_metadata=False)
    assert registry.portal_for(ENTITY_ID) is not None
