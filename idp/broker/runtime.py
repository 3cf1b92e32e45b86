"""The broker of one IdP process: the upstreams of the registry and a pysaml2 client for each."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from flask import Flask, current_app

from idp.broker.sp import BrokerEndpoints, UpstreamClients
from idp.broker.upstreams import Upstream, load_upstreams
from idp.config import Config
from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.keys import KeyPair

BROKER_KEY = "servicekonto.broker"


@dataclass(frozen=True)
class Broker:
    """The enabled upstreams by name, and our service provider towards them."""

    upstreams: dict[str, Upstream]
    clients: UpstreamClients

    @classmethod
    def build(cls, config: Config, keys: KeyPair, crypto: InProcessCryptoBackend
              ) -> Broker | None:
        """None without an enabled upstream: "Login mit externem Servicekonto" is then not
        offered at all. A broken upstream file stops the start (PolicyError)."""
        upstreams = {upstream.name: upstream for upstream in load_upstreams(config.policy_dir)
                     if upstream.enabled}
        if not upstreams:
            return None
        return cls(upstreams, UpstreamClients(BrokerEndpoints(config.base_url), keys.key_file,
                                              keys.cert_file, crypto))

    @property
    def highest_level(self) -> int:
        """The highest level a login through any upstream can reach."""
        return max(upstream.maximum_trust_level for upstream in self.upstreams.values())

    def upstream(self, name: str) -> Upstream | None:
        return self.upstreams.get(name)

    def by_entity_id(self, entity_id: str) -> Upstream | None:
        return next((upstream for upstream in self.upstreams.values()
                     if upstream.entity_id == entity_id), None)

    def choices(self, search: str = "", minimum: int = 1) -> list[Upstream]:
        """The upstreams that may reach ``minimum`` whose display name contains ``search``
        (case and accents ignored), by display name."""
        wanted = _folded(search)
        return sorted((upstream for upstream in self.upstreams.values()
                       if wanted in _folded(upstream.display_name)
                       and upstream.maximum_trust_level >= minimum),
                      key=lambda upstream: _folded(upstream.display_name))

    def install(self, app: Flask) -> None:
        app.extensions[BROKER_KEY] = self


def broker(app: Flask | None = None) -> Broker:
    """The broker of ``app`` (default: the current app); its views exist only when it does."""
    found: Broker = (app or current_app).extensions[BROKER_KEY]
    return found


def upstream_display_name(name: str) -> str:
    """An upstream's display name ("Servicekonto Musterland"); its short name when the broker
    no longer has it (or none runs)."""
    found: Broker | None = current_app.extensions.get(BROKER_KEY)
    upstream = found.upstream(name) if found is not None else None
    return upstream.display_name if upstream is not None else name


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))
