"""Real processes for the end-to-end tests: the IdP as ``servicekonto run``, the demo (IdP, both
portals and Servicekonto Musterland) as ``servicekonto demo``, and a small HTTP client that
behaves like a citizen's browser without JavaScript."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import TypeVar

from tests.conftest import CSRF

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICEKONTO = Path(sys.executable).with_name("servicekonto")
T = TypeVar("T")


@dataclass
class Page:
    status: int
    url: str
    html: str


class HttpBrowser:
    """A citizen's browser over real HTTP: keeps cookies, follows redirects, fills in CSRF."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()))
        self.last_html = ""

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self._opener.open(request, timeout=30) as response:
                page = Page(response.status, response.url, response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            page = Page(error.code, error.url or "", error.read().decode("utf-8"))
        self.last_html = page.html
        return page

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(self.base_url + path))  # noqa: S310 (our http URL)

    def submit(self, path: str, fields: dict[str, str] | None = None) -> Page:
        match = CSRF.search(self.last_html)
        assert match, "the page has no form with a CSRF token"
        data = urllib.parse.urlencode({"csrf_token": match.group(1), **(fields or {})})
        request = urllib.request.Request(self.base_url + path, data=data.encode(),  # noqa: S310
                                         method="POST")
        return self._open(request)


def eventually(probe: Callable[[], T | None], seconds: float = 20.0,
               describe: Callable[[], str] = str) -> T:
    """Ask ``probe`` until it answers (the background sender works every few seconds);
    ``describe`` adds what helps to understand a timeout (a log)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (answer := probe()) is not None:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"nothing after {seconds} s\n{describe()}".rstrip())


def start_idp(env: dict[str, str], log: Path, *, migrate: bool = True) -> Iterator[HttpBrowser]:
    """Migrate the database, start ``servicekonto run``, and stop it afterwards."""
    if migrate:
        upgrade_database(env)
    yield from _run_idp(env, log)


def upgrade_database(env: dict[str, str]) -> None:
    upgrade = subprocess.run([str(SERVICEKONTO), "db", "upgrade"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert upgrade.returncode == 0, upgrade.stderr


def _run_idp(env: dict[str, str], log: Path) -> Iterator[HttpBrowser]:
    base_url = env["IDP_BASE_URL"]
    port = base_url.rpartition(":")[2]
    with log.open("ab") as output:
        process = subprocess.Popen([str(SERVICEKONTO), "run", "--port", port], env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        browser = HttpBrowser(base_url)

        def up() -> bool | None:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                return browser.get("/").status == 200 or None
            except OSError:
                return None

        eventually(up)
        yield browser
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process``; kill it if it has not ended after ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()




def free_ports(count: int) -> list[int]:
    """``count`` different loopback ports free at the moment (held together while choosing)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class Demo:
    """A running ``servicekonto demo``: its process, the four base URLs, and its output."""

    process: subprocess.Popen[bytes]
    idp: str
    dueren: str
    mags: str
    musterland: str
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Ctrl-C, as a person at the terminal would stop it (killed if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_demo(instance: Path, log: Path, env: dict[str, str] | None = None, *,
             seed: bool = True) -> Iterator[Demo]:
    """Start ``servicekonto demo`` on free ports, wait until it says it runs; stop it afterwards.

    The output goes to ``log`` (a pipe nobody reads would fill up and stop the servers).
    """
    ports = free_ports(4)
    command = [str(SERVICEKONTO), "demo", "--instance", str(instance),
               "--idp-port", str(ports[0]), "--dueren-port", str(ports[1]),
               "--mags-port", str(ports[2]), "--musterland-port", str(ports[3]),
               *(["--seed"] if seed else [])]
    environment = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=environment, stdout=output,
                                   stderr=subprocess.STDOUT)
    demo = Demo(process, *(f"http://127.0.0.1:{port}" for port in ports), log=log)
    try:
        def running() -> bool | None:
            assert process.poll() is None, "the demo did not start:\n" + demo.output
            return "Demo läuft" in demo.output or None

        eventually(running, seconds=120)
        yield demo
    finally:
        demo.stop()
