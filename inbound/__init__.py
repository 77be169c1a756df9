"""The inbound SMTP gateway: calendar answers, candidate replies and bounces come home."""

from inbound.server import Gateway, serve_forever, start_server

__all__ = ["Gateway", "serve_forever", "start_server"]
