"""Shibboleth SP 3 (Debian 12's libapache2-mod-shib) as real portals of a live IdP: per portal
one shibd and one Apache with mod_shib, configured from the operator's examples in
``docs/examples/shibboleth/`` with their ``{{…}}`` filled in; keys made at test time.

Apache drops its workers to www-data when started as root, so each portal's folder is one of
its own under the system's temporary folder, readable by others (pytest's are private).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tests.e2e.processes import eventually, stop
from tests.interop.live_support import PROJECT_ROOT, fill, serving

EXAMPLES = PROJECT_ROOT / "docs" / "examples" / "shibboleth"
SHIBD = Path("/usr/sbin/shibd")
APACHE = Path("/usr/sbin/apache2")
MODULES = Path("/usr/lib/apache2/modules")

# The portal's page: what mod_shib handed to the application (CGI turns '-' into '_').
PAGE = r'''#!/usr/bin/python3
import html, json, os
names = ["givenName", "sn", "mail", "bPK2", "persistent-id", "transient-id", "REMOTE_USER",
         "Shib-Session-ID", "Shib-Identity-Provider", "Shib-Session-Index",
         "Shib-Application-ID"]
env = {key.replace("_", "-"): value for key, value in os.environ.items()}
values = {name: env[name.replace("_", "-")] for name in names if name.replace("_", "-") in env}
seen = {"angemeldet": bool(values.get("Shib-Session-ID")), "values": values}
print("Content-Type: text/html; charset=utf-8")
print("Cache-Control: no-store")
print()
print('<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Portal</title></head>'
      '<body><pre id="saml">' + html.escape(json.dumps(seen, ensure_ascii=False)) +
      '</pre></body></html>')
'''


def why_not_installed() -> str | None:
    for needed in (SHIBD, APACHE, MODULES / "mod_shib.so", MODULES / "mod_cgi.so",
                   Path("/usr/bin/python3")):
        if not needed.exists():
            return (f"{needed} is missing: bash tests/system-packages.sh installs Shibboleth SP "
                    "and Apache (CI runs it)")
    return None


def shibd_version() -> str:
    result = subprocess.run([str(SHIBD), "-v"], capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip()


@dataclass
class ShibbolethPortal:
    """One portal: shibd and Apache on ``host:port``, its page at /portal/."""

    name: str
    host: str  # a loopback name of its own (cookies do not tell ports apart)
    port: int
    key: Path
    cert: Path
    sso_bindings: tuple[str, ...]

    def __post_init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"servicekonto-shib-{self.name}-"))
        self.folder.chmod(0o755)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/shibboleth"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/Shibboleth.sso/Metadata"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/Shibboleth.sso/SLO/"

    @property
    def page(self) -> str:
        return f"{self.base_url}/portal/"

    @property
    def login_url(self) -> str:
        return f"{self.base_url}/Shibboleth.sso/Login?target={quote(self.page, safe='')}"

    @property
    def logout_url(self) -> str:
        return (f"{self.base_url}/Shibboleth.sso/Logout?return="
                f"{quote(self.page + '?abgemeldet', safe='')}")

    def write(self, idp_entity_id: str, idp_base_url: str, idp_certificate_pem: str) -> None:
        for sub in ("conf", "run", "cache", "log", "www/portal"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
            (self.folder / sub).chmod(0o755)
        conf = self.folder / "conf"
        (conf / "idp.crt").write_text(idp_certificate_pem, encoding="utf-8")
        (conf / "shibboleth2.xml").write_text(fill(EXAMPLES / "shibboleth2.xml", {
            "RUN_DIR": str(self.folder / "run"), "SP_ENTITY_ID": self.entity_id,
            "HANDLER_SSL": "false", "COOKIE_PROPS": "http", "IDP_ENTITY_ID": idp_entity_id,
            "SSO_BINDINGS": " ".join(self.sso_bindings), "SUPPORT_CONTACT": "portal@example.org",
            "IDP_BASE_URL": idp_base_url, "CACHE_DIR": str(self.folder / "cache"),
            "IDP_CERT_FILE": str(conf / "idp.crt"), "CONFIG_DIR": str(conf),
            "SP_KEY_FILE": str(self.key), "SP_CERT_FILE": str(self.cert)}), encoding="utf-8")
        shutil.copy(EXAMPLES / "attribute-map.xml", conf / "attribute-map.xml")
        (conf / "portal.conf").write_text(fill(EXAMPLES / "apache.conf", {
            "CONFIG_DIR": str(conf), "PORTAL_PATH": "/portal"}), encoding="utf-8")
        page = self.folder / "www" / "portal" / "index.cgi"
        page.write_text(PAGE, encoding="utf-8")
        page.chmod(0o755)
        run_as = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        address = "127.0.0.1" if self.host == "localhost" else self.host
        (conf / "httpd.conf").write_text(f"""\
ServerRoot "{self.folder}"
DefaultRuntimeDir "{self.folder / 'run'}"
PidFile "{self.folder / 'run' / 'apache.pid'}"
Listen {address}:{self.port}
ServerName {self.host}:{self.port}
UseCanonicalName Off
{run_as}ErrorLog "{self.folder / 'log' / 'apache-error.log'}"
LogLevel warn
LoadModule mpm_prefork_module {MODULES}/mod_mpm_prefork.so
LoadModule authn_core_module {MODULES}/mod_authn_core.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule dir_module {MODULES}/mod_dir.so
LoadModule cgi_module {MODULES}/mod_cgi.so
LoadModule mod_shib {MODULES}/mod_shib.so
StartServers 2
TypesConfig /etc/mime.types
DocumentRoot "{self.folder / 'www'}"
<Directory "{self.folder / 'www'}">
  Options +ExecCGI
  AddHandler cgi-script .cgi
  DirectoryIndex index.cgi
  Require all granted
</Directory>
Include "{conf / 'portal.conf'}"
""", encoding="utf-8")
        for path in conf.iterdir():
            path.chmod(0o644)
        self.key.chmod(0o600)

    @contextmanager
    def run(self) -> Iterator[ShibbolethPortal]:
        """shibd and Apache until the block ends."""
        self._shibd: subprocess.Popen[bytes] | None = None
        try:
            self.restart_shibd()
            with serving([str(APACHE), "-f", str(self.folder / "conf" / "httpd.conf"),
                          "-DFOREGROUND"], self.folder / "log" / "apache.out",
                         self.metadata_url, self.logs,
                         start_new_session=True):  # prefork signals its whole process group
                yield self
        finally:
            if self._shibd is not None:
                stop(self._shibd)
            shutil.rmtree(self.folder, ignore_errors=True)

    def restart_shibd(self) -> None:
        """(Re)start shibd: it reads the IdP's metadata when it starts."""
        if self._shibd is not None:
            stop(self._shibd)
        socket = self.folder / "run" / "shibd.sock"
        socket.unlink(missing_ok=True)
        with (self.folder / "log" / "shibd.out").open("ab") as output:
            shibd = self._shibd = subprocess.Popen(
                [str(SHIBD), "-F", "-f", "-c", str(self.folder / "conf" / "shibboleth2.xml"),
                 "-p", str(self.folder / "run" / "shibd.pid")],
                stdout=output, stderr=subprocess.STDOUT)

        def listening() -> bool | None:
            assert shibd.poll() is None, self.logs()
            return socket.exists() or None

        eventually(listening, 30, self.logs)

    def logs(self) -> str:
        parts = []
        for log in sorted((self.folder / "log").glob("*")):
            parts.append(f"--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}")
        for log in (Path("/var/log/shibboleth/shibd.log"),
                    Path("/var/log/shibboleth-www/native.log")):
            if log.exists():
                parts.append(f"--- {log} ---\n{log.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)
