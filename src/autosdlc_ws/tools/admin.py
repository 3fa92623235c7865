"""`autosdlc-ws connections`, `disconnect` and the nodes part of `status`.

Thin clients of the deployment-wide admin API (CONTRACT.md section 10): every
answer covers every node, whichever process the request reaches. Rendering is
kept apart from HTTP so the tables are tested with plain values.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

#: What `status` prints when it has no credentials to list the nodes with.
NODES_HINT = ("hint: with admin credentials (--token/--api-key, or AUTOSDLC_WS_TOKEN/AUTOSDLC_WS_API_KEY) "
              "status also lists every node of the deployment")


class AdminRequestError(Exception):
    """The gateway could not be reached, or answered with an error."""


def admin_request(base_url: str, path: str, headers: Mapping[str, str], *, method: str = "GET",
                  query: Mapping[str, str] | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """One admin call; the JSON answer, or `AdminRequestError` naming the contract's error."""
    url = base_url.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
    req = urllib.request.Request(url, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())["error"]
            detail = f"{err['code']}: {err['message']}"
        except (ValueError, KeyError, TypeError):
            detail = str(exc.reason)
        raise AdminRequestError(f"gateway answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise AdminRequestError(f"cannot reach the gateway at {base_url}: {getattr(exc, 'reason', exc)}") from None


def _age(ms: float | None, now_ms: float) -> str:
    if not ms:
        return "-"
    seconds = max(0.0, (now_ms - ms) / 1000)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain left-aligned text table (no colours: it is read and piped alike)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def partial_note(answer: Mapping[str, Any]) -> str | None:
    """The line saying which nodes did not answer, when the answer is partial."""
    if not answer.get("partial"):
        return None
    missing = ", ".join(str(n) for n in answer.get("missingNodes") or []) or "unknown"
    return f"partial answer: no reply from node(s) {missing}"


def render_nodes(answer: Mapping[str, Any], now_ms: float | None = None) -> str:
    now = time.time() * 1000 if now_ms is None else now_ms
    rows = [[str(n.get("nodeId", "")), str(n.get("host", "")), str(n.get("pid", "")),
             str(n.get("connections", 0)), _age(n.get("startedAt"), now), _age(n.get("lastSeen"), now),
             str(n.get("version", ""))]
            for n in answer.get("nodes", [])]
    text = table(["NODE", "HOST", "PID", "CONNECTIONS", "UPTIME", "SEEN", "VERSION"], rows)
    note = partial_note(answer)
    return f"{text}\n{note}" if note else text


def render_connections(answer: Mapping[str, Any], now_ms: float | None = None) -> str:
    now = time.time() * 1000 if now_ms is None else now_ms
    rows = []
    for c in answer.get("connections", []):
        subs = c.get("subscriptions") or []
        rows.append([str(c.get("connectionId", "")), str(c.get("nodeId", "")), str(c.get("subject") or "-"),
                     str(c.get("remoteAddress") or "-"), _age(c.get("connectedAt"), now), str(len(subs))])
    text = table(["CONNECTION", "NODE", "SUBJECT", "ADDRESS", "AGE", "SUBS"], rows)
    text += f"\n{answer.get('count', len(rows))} connection(s)"
    note = partial_note(answer)
    return f"{text}\n{note}" if note else text
