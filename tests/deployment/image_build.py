"""docker/Dockerfile built and run for real, without a Docker engine: podman, as root, with a
configuration of its own in a scratch folder (nothing in /etc/containers is read or changed).

Docker Hub may be out of reach, so ``python:3.11-slim-bookworm`` is stood in for by Debian
bookworm's own Python 3.11, made with debootstrap and imported under that name; the Dockerfile
gets it through its ``PYTHON_IMAGE`` argument. The root file system is cached as a tar file
named by a hash of its recipe (``CACHE``), so only the first run pays for debootstrap.

What this host lends the build, and only to its ``RUN`` steps: its CA bundle, so that pip
reaches PyPI through an intercepting proxy. It is mounted over the base's own bundle
(``podman build -v``), which Debian's pip reads, so the image keeps the base's file. A mounted
pip.conf would not do: buildah leaves an empty file at a mount point that did not exist. The
tests check that the image holds neither the host's bundle nor any pip settings.

Used by tests/deployment/test_image_build.py; by hand::

    .venv/bin/python -m tests.deployment.image_build   # builds, prints the podman command line
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from idp.config import PROJECT_ROOT

CACHE = Path(os.environ.get("SERVICEKONTO_IMAGE_CHECK_CACHE",
                            "/var/cache/servicekonto-image-check"))
# podman runs containers with runc: bookworm's crun refuses a host with hybrid cgroups ("cgroups
# in hybrid mode not supported"). catatonit is podman's --init (compose: init: true);
# slirp4netns gives a container its own network that still reaches the host's loopback.
HOST_PACKAGES = ("podman", "runc", "catatonit", "slirp4netns", "debootstrap")
HOST_PROGRAMS = ("podman", "runc", "/usr/libexec/podman/catatonit", "slirp4netns", "debootstrap")

# The stand-in for python:3.11-slim-bookworm: what that image offers the Dockerfile (python and
# its venv module, groupadd/useradd, CA certificates), from Debian instead of python.org.
BASE_IMAGE = "localhost/python:3.11-slim-bookworm"
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# Left out of the base: apt's downloads and lists, logs, and what debootstrap copies from the
# build host (its resolver and its name); podman provides both at run time.
BASE_LEFT_OUT = ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/log/*",
                 "etc/resolv.conf", "etc/hostname")
BASE_CONFIG = ('ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
               "ENV LANG=C.UTF-8", 'CMD ["python3"]')
BASE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's pip trusts this one
RECIPE_VERSION = "1"  # raise to rebuild the cached base after a change this hash cannot see

IMAGE = "localhost/servicekonto:image-check"
# Inside the container, the host's loopback (PostgreSQL, Redis) is this address.
HOST_LOOPBACK = "10.0.2.2"
NETWORK = "slirp4netns:allow_host_loopback=true"


class Unavailable(Exception):
    """podman or debootstrap cannot be installed or run here: the check is skipped."""


class CommandFailed(Exception):
    """A command of the check failed: the check fails, with the command's own words."""


def run(command: list[str], *, timeout: float = 600, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=timeout, env=env, check=False)
    completed = subprocess.CompletedProcess(
        command, result.returncode, result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"))
    if check and completed.returncode != 0:
        raise CommandFailed(describe(completed))
    return completed


def describe(result: subprocess.CompletedProcess[str], lines: int = 40) -> str:
    output = (result.stdout + result.stderr).strip().splitlines()
    return "\n".join([f"$ {' '.join(result.args)} -> exit {result.returncode}",
                      *output[-lines:]])


# --- the host's tools --------------------------------------------------------------------------

def check_host_tools() -> None:
    """podman, runc, catatonit, slirp4netns and debootstrap (tests/system-packages.sh installs
    them from Debian)."""
    missing = [program for program in HOST_PROGRAMS
               if not (shutil.which(program) or Path(program).exists())]
    if missing:
        raise Unavailable(f"missing {', '.join(missing)}: run tests/system-packages.sh as root "
                          f"(Debian packages {' '.join(HOST_PACKAGES)})")


# --- podman with a configuration of its own --------------------------------------------------

@dataclass
class Podman:
    """podman with its storage and settings in ``folder``; ``podman(...)`` runs a command."""

    folder: Path
    driver: str = "overlay"
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        storage = self.folder / "storage.conf"
        storage.write_text(
            "[storage]\n"
            f'driver = "{self.driver}"\n'
            f'graphroot = "{self.folder}/storage"\n'
            f'runroot = "{self.folder}/run"\n', encoding="utf-8")
        # No systemd, no journald and hybrid cgroups in a sandbox: cgroupfs, events to a file.
        # The limits podman would set for root (nofile 1048576) need CAP_SYS_RESOURCE, which a
        # sandbox may lack ("error setting rlimit type 7: operation not permitted"): the host's
        # own open-file limit, and a process limit well within what podman itself runs with.
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        open_files = 1048576 if open_files == resource.RLIM_INFINITY else open_files
        containers = self.folder / "containers.conf"
        containers.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={open_files}:{open_files}", "nproc=4096:4096"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'tmp_dir = "{self.folder}/libpod"\n', encoding="utf-8")
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage),
                    "CONTAINERS_CONF": str(containers)}

    def __call__(self, *arguments: str, timeout: float = 300, check: bool = True,
                 ) -> subprocess.CompletedProcess[str]:
        return run(["podman", *arguments], env=self.env, timeout=timeout, check=check)

    def command_line(self) -> str:
        """How to use this podman by hand."""
        return (f"CONTAINERS_STORAGE_CONF={self.env['CONTAINERS_STORAGE_CONF']} "
                f"CONTAINERS_CONF={self.env['CONTAINERS_CONF']} podman")

    def remove_everything(self) -> None:
        """Containers, images, storage (unmounted first) and the folder itself."""
        self("system", "reset", "--force", check=False, timeout=300)
        shutil.rmtree(self.folder, ignore_errors=True)


# --- the base image ----------------------------------------------------------------------------

def debian_mirror() -> str:
    """The Debian mirror this machine's own apt takes BASE_SUITE's main component from
    (SERVICEKONTO_IMAGE_CHECK_MIRROR overrides it): the check fetches only from where the
    machine may fetch."""
    if chosen := os.environ.get("SERVICEKONTO_IMAGE_CHECK_MIRROR"):
        return chosen
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text(encoding="utf-8").split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines()
                          if ":" in line and not line.startswith(("#", " ")))
            values = {key.strip().lower(): value.split() for key, value in fields.items()}
            if ("deb" in values.get("types", []) and BASE_SUITE in values.get("suites", [])
                    and "main" in values.get("components", []) and values.get("uris")):
                return values["uris"][0]
    legacy = Path("/etc/apt/sources.list")
    for line in legacy.read_text(encoding="utf-8").splitlines() if legacy.exists() else []:
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # no [options]
        if words[:1] == ["deb"] and len(words) >= 4 and words[2] == BASE_SUITE \
                and "main" in words[3:]:
            return words[1]
    raise Unavailable(f"no Debian source for {BASE_SUITE} main in this machine's apt sources")


def base_recipe() -> str:
    return "\n".join([RECIPE_VERSION, BASE_SUITE, debian_mirror(), "minbase", *BASE_PACKAGES,
                      *BASE_LEFT_OUT, *BASE_CONFIG])


def base_tar() -> Path:
    """The base's root file system as a tar file, from the cache or made now (debootstrap)."""
    digest = hashlib.sha256(base_recipe().encode()).hexdigest()[:16]
    cached = CACHE / f"base-{BASE_SUITE}-{digest}.tar"
    if cached.is_file():
        return cached
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="debootstrap-") as scratch:
        rootfs = Path(scratch, "rootfs")
        result = run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                      BASE_SUITE, str(rootfs), debian_mirror()], check=False, timeout=1200)
        if result.returncode != 0:
            log = rootfs / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise Unavailable(f"debootstrap cannot make the base image:\n{describe(result)}\n"
                              f"{detail}")
        for pattern in BASE_LEFT_OUT:
            for path in rootfs.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        partial = cached.with_suffix(".part")
        run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial), "."])
        for old in CACHE.glob(f"base-{BASE_SUITE}-*.tar"):
            old.unlink()
        partial.rename(cached)
    return cached


def import_base(podman: Podman, tar: Path) -> None:
    changes = [argument for line in BASE_CONFIG for argument in ("--change", line)]
    podman("import", *changes, str(tar), BASE_IMAGE, timeout=600)


def usable_podman(folder: Path) -> Podman:
    """A podman that can import the base and run a container in it: overlay storage if the
    kernel lets us, vfs otherwise; Unavailable (with podman's words) if neither works."""
    tar = base_tar()
    errors = []
    for driver in ("overlay", "vfs"):
        podman = Podman(folder / driver, driver)
        try:
            import_base(podman, tar)
            podman("run", "--rm", "--network=none", BASE_IMAGE,
                   "python", "-c", "import venv, ssl", timeout=120)
            return podman
        except CommandFailed as error:
            errors.append(f"[{driver}] {error}")
            podman.remove_everything()
    raise Unavailable("podman cannot run a container here:\n" + "\n".join(errors))


# --- the image -----------------------------------------------------------------------------------

def host_ca_bundle() -> Path:
    """The CA bundle this host trusts (an intercepting proxy's CA included)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      ssl.get_default_verify_paths().cafile,
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise CommandFailed("no CA bundle on this host for pip inside the build")


def build_image(podman: Podman, context: Path = PROJECT_ROOT) -> str:
    """docker/Dockerfile built from ``context`` on the base; returns the build's output."""
    result = podman(
        "build", "--format=docker",  # docker format: HEALTHCHECK is kept (OCI has none)
        "--pull=never", "--network=host",
        "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}",
        "--volume", f"{host_ca_bundle()}:{BASE_CA_BUNDLE}:ro",
        "--file", str(context / "docker" / "Dockerfile"), "--tag", IMAGE, str(context),
        timeout=1500)
    return result.stdout + result.stderr


@dataclass
class Built:
    podman: Podman
    seconds: dict[str, float]
    size_bytes: int
    build_log: str


def build_all(folder: Path) -> Built:
    """Host tools, base and image, timed."""
    seconds: dict[str, float] = {}
    start = time.monotonic()
    check_host_tools()
    seconds["host tools"] = time.monotonic() - start
    start = time.monotonic()
    podman = usable_podman(folder)
    seconds["base image (debootstrap or cache, import)"] = time.monotonic() - start
    start = time.monotonic()
    try:
        log = build_image(podman)
    except BaseException:
        podman.remove_everything()
        raise
    seconds["image build"] = time.monotonic() - start
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    return Built(podman, seconds, size, log)


if __name__ == "__main__":
    built = build_all(Path(tempfile.mkdtemp(prefix="servicekonto-image-")))
    for step, taken in built.seconds.items():
        print(f"{step}: {taken:.0f} s")
    print(f"{IMAGE}: {built.size_bytes / 1e6:.0f} MB\n{built.podman.command_line()} images",
          file=sys.stderr)
