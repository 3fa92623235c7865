"""Broker URLs: their scheme, and their printable form."""

from __future__ import annotations


def url_scheme(url: str) -> str:
    """`redis` for `redis://host/0`; a URL without `://` (`memory`) is its own scheme."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else url.lower()


def redact_url(url: str) -> str:
    """A broker URL without its credentials, for logs and banners."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url
