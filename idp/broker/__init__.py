"""The identity broker: "Login mit externem Servicekonto" through an upstream IdP
(docs/broker.md)."""
