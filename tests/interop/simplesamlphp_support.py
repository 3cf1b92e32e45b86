"""SimpleSAMLphp (Debian 12's package, 1.19) as real portals of a live IdP.

SimpleSAMLphp runs under PHP's built-in server from a configuration folder of its own
(``SIMPLESAMLPHP_CONFIG_DIR``), written from the operator's examples in
``docs/examples/simplesamlphp/`` with their ``{{…}}`` filled in, and nothing else: what the tests
prove is what those files do. Its keys are made at test time. One installation serves several
portals (saml:SP auth sources), each with its page (``portal.php``) at ``/<auth source>/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.interop.live_support import PROJECT_ROOT, SAML_POST, SAML_REDIRECT, fill, serving

EXAMPLES = PROJECT_ROOT / "docs" / "examples" / "simplesamlphp"
SIMPLESAMLPHP = Path("/usr/share/simplesamlphp")


def why_not_installed() -> str | None:
    """Why SimpleSAMLphp cannot run here (None: it can)."""
    if shutil.which("php") is None:
        return "php is missing: bash tests/system-packages.sh installs php-cli (CI runs it)"
    if not (SIMPLESAMLPHP / "lib" / "_autoload.php").exists():
        return (f"{SIMPLESAMLPHP} is missing: bash tests/system-packages.sh installs Debian's "
                "simplesamlphp (CI runs it)")
    return None


def simplesamlphp_version() -> str:
    """The installed package's version (for the report of a failing test)."""
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return "unknown"
    result = subprocess.run([dpkg_query, "-W", "-f", "${Version}", "simplesamlphp"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def php_string(value: str) -> str:
    """``value`` safe inside a single-quoted PHP string of the examples."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def without_php_opening(text: str) -> str:
    return text.removeprefix("<?php").lstrip("\n")


@dataclass(frozen=True)
class Portal:
    """One saml:SP auth source: a portal with its own entity ID, keys and page."""

    auth_source: str
    name: str
    name_id_format: str  # transient | persistent
    base_url: str
    key: Path
    cert: Path

    @property
    def entity_id(self) -> str:
        return self.metadata_url

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/simplesaml/module.php/saml/sp/metadata.php/{self.auth_source}"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/simplesaml/module.php/saml/sp/saml2-acs.php/{self.auth_source}"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/simplesaml/module.php/saml/sp/saml2-logout.php/{self.auth_source}"

    @property
    def page(self) -> str:
        """The portal's own page (docs/examples/simplesamlphp/portal.php)."""
        return f"{self.base_url}/{self.auth_source}/"

    @property
    def login_url(self) -> str:
        return self.page + "?anmelden"

    @property
    def logout_url(self) -> str:
        return self.page + "?abmelden"


@dataclass
class SimpleSamlPhp:
    """One SimpleSAMLphp installation (one config folder, one PHP server) with its portals."""

    folder: Path
    base_url: str
    portals: list[Portal]
    # The IdP's entity ID in authsources.php ('idp'); use_idp() sets the one its metadata says.
    idp_entity_id: str

    def __post_init__(self) -> None:
        self.config_dir = self.folder / "config"
        self.docroot = self.folder / "www"
        self.log = self.folder / "php-server.log"
        self._secrets = {"SECRET_SALT": secrets.token_hex(16),
                         "ADMIN_PASSWORD": secrets.token_hex(16)}

    def write(self) -> None:
        """config.php, authsources.php and each portal's page (the IdP comes later)."""
        for sub in ("config/metadata", "log", "data", "tmp", "www"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        common = {"SP_BASE_URL": self.base_url, "CONFIG_DIR": str(self.config_dir),
                  "CERT_DIR": str(self.folder / "keys") + "/",
                  "LOG_DIR": str(self.folder / "log") + "/",
                  "DATA_DIR": str(self.folder / "data") + "/",
                  "TEMP_DIR": str(self.folder / "tmp"), **self._secrets}
        (self.config_dir / "config.php").write_text(fill(EXAMPLES / "config.php", common),
                                                    encoding="utf-8")
        sources = ["<?php\n$config = [];\n"]
        for portal in self.portals:
            sources.append(without_php_opening(fill(EXAMPLES / "authsources.php", {
                **common, "AUTH_SOURCE": portal.auth_source, "SP_NAME": php_string(portal.name),
                "SP_ENTITY_ID": portal.entity_id, "IDP_ENTITY_ID": self.idp_entity_id,
                "SP_KEY_FILE": str(portal.key), "SP_CERT_FILE": str(portal.cert),
                "NAME_ID_FORMAT": portal.name_id_format})))
            page = self.docroot / portal.auth_source / "index.php"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(fill(EXAMPLES / "portal.php", {
                "AUTH_SOURCE": portal.auth_source, "SP_NAME": php_string(portal.name),
                "PORTAL_URL": portal.page}), encoding="utf-8")
        (self.config_dir / "authsources.php").write_text("\n".join(sources), encoding="utf-8")
        # Debian's apache.conf serves www/ as /simplesaml; here a link does.
        link = self.docroot / "simplesaml"
        if not link.exists():
            link.symlink_to(SIMPLESAMLPHP / "www")

    def use_idp(self, entity_id: str, base_url: str, certificate: str,
                sso_binding: str = SAML_REDIRECT) -> None:
        """saml20-idp-remote.php for the IdP; for HTTP-POST without the HTTP-Redirect SSO line,
        as the example's comment tells the operator."""
        if entity_id != self.idp_entity_id:
            self.idp_entity_id = entity_id
            self.write()
        text = fill(EXAMPLES / "saml20-idp-remote.php", {
            "IDP_ENTITY_ID": entity_id, "IDP_BASE_URL": base_url, "IDP_CERTIFICATE": certificate})
        if sso_binding == SAML_POST:
            lines = [line for line in text.splitlines(keepends=True)
                     if not (SAML_REDIRECT in line and "/saml/sso/" in line)]
            assert len(lines) == len(text.splitlines()) - 1, "no HTTP-Redirect SSO line"
            text = "".join(lines)
        (self.config_dir / "metadata" / "saml20-idp-remote.php").write_text(
            text, encoding="utf-8")

    @contextmanager
    def run(self) -> Iterator[SimpleSamlPhp]:
        """PHP's built-in server on the base URL's port until the block ends."""
        php = shutil.which("php")
        assert php is not None, why_not_installed()
        command = [php, "-d", "display_errors=stderr",
                   "-S", f"127.0.0.1:{urlsplit(self.base_url).port}", "-t", str(self.docroot)]
        with serving(command, self.log, self.portals[0].metadata_url, self.logs,
                     env={**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(self.config_dir)}):
            yield self

    def logs(self) -> str:
        """The PHP server's output and SimpleSAMLphp's log (for assertion messages)."""
        parts = [self.log.read_text(errors="replace")[-4000:]]
        ssp_log = self.folder / "log" / "simplesamlphp.log"
        if ssp_log.exists():
            parts.append(ssp_log.read_text(errors="replace")[-6000:])
        return "\n--- simplesamlphp.log ---\n".join(parts)
