#!/usr/bin/env bash
# The Debian packages the test suite needs beyond Python, installed when missing (as root, the
# way CI and the development machines run): Chromium for the browser tests (tests/e2e), podman
# and debootstrap to build and run the image, and the Docker Compose v2 plugin for
# `docker compose config` (tests/deployment). Nothing is downloaded from anywhere but the
# machine's own Debian mirror.
set -euo pipefail

updated=""
apt_install() {
  [ -n "$updated" ] || { apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Compose v2 is a Go binary that needs only the C library. Debian 12 packages Compose v1 only;
# Debian 13 packages v2, which is fetched from the mirror the machine's Debian sources name.
install_compose_plugin() {
  if apt-cache policy docker-compose 2>/dev/null | grep -Eq 'Candidate: 2\.'; then
    apt_install docker-compose
    return
  fi
  local sources=/etc/apt/sources.list.d/debian.sources work
  if [ ! -r "$sources" ]; then
    echo "system-packages: no $sources to find the Debian mirror in" >&2
    return 1
  fi
  work=$(mktemp -d)
  mkdir -p "$work/parts" "$work/lists/partial"
  # The machine's first Debian stanza (its mirror and keyring), pointed at Debian 13.
  awk 'BEGIN { RS = ""; ORS = "\n" } /Suites:[^\n]*bookworm( |\n|$)/ { print; exit }' "$sources" \
    | sed -E 's/^Suites:.*/Suites: trixie/' > "$work/parts/trixie.sources"
  local apt=(apt-get -qq -o APT::Sandbox::User=root -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/parts"
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  "${apt[@]}" update
  (cd "$work" && "${apt[@]}" download docker-compose)
  DEBIAN_FRONTEND=noninteractive dpkg -i "$work"/docker-compose_*.deb >/dev/null 2>&1
  rm -rf "$work"
}

command -v chromium >/dev/null || apt_install chromium
# SimpleSAMLphp as real portals (tests/interop/test_simplesamlphp.py): Debian's package, run by
# PHP's built-in server; it needs PHP's DOM (php-xml). Its dependency apache2 is installed but
# not used.
{ command -v php >/dev/null && [ -f /usr/share/simplesamlphp/lib/_autoload.php ] \
    && php -m | grep -qix dom; } \
  || apt_install --no-install-recommends simplesamlphp php-cli php-xml php-mbstring
# Shibboleth SP 3 as real portals (tests/interop/test_shibboleth.py): shibd and Apache with
# mod_shib, started by the test with its own configuration (the services stay stopped).
{ [ -x /usr/sbin/shibd ] && [ -f /usr/lib/apache2/modules/mod_shib.so ] \
    && [ -x /usr/sbin/apache2 ]; } \
  || apt_install --no-install-recommends libapache2-mod-shib shibboleth-sp-utils apache2
# The image check (tests/deployment/test_image_build.py) builds and runs docker/Dockerfile with
# podman on a debootstrapped base; runc, since Debian 12's crun refuses this host's cgroups.
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null \
   || ! command -v slirp4netns >/dev/null || ! command -v runc >/dev/null \
   || [ ! -x /usr/libexec/podman/catatonit ]; then
  apt_install --no-install-recommends podman runc catatonit slirp4netns debootstrap
fi
if command -v docker >/dev/null && ! docker compose version >/dev/null 2>&1; then
  install_compose_plugin
fi
