"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from aiohttp import web

from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.sources.github import DeliveryDeduplicator

GATEWAY = web.AppKey("gateway", Gateway)
GITHUB_DEDUP = web.AppKey("github_dedup", DeliveryDeduplicator)
