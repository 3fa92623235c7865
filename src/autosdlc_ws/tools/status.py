"""`autosdlc-ws status`: health, readiness and the main figures from `/metrics`, as a table."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Metrics:
    scalars: dict[str, float] = field(default_factory=dict)
    labelled: dict[str, dict[str, float]] = field(default_factory=dict)
    buckets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def parse_metrics(text: str) -> Metrics:
    metrics = Metrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                metrics.buckets.setdefault(name[: -len("_bucket")], []).append((bound, sample.value))
            elif sample.labels:
                label = next(iter(sample.labels.values()))
                metrics.labelled.setdefault(name, {})[label] = sample.value
            else:
                metrics.scalars[name] = sample.value
    return metrics


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Upper bound of the bucket holding the q-quantile (Prometheus-style, coarse)."""
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for bound, cumulative in sorted(buckets):
        if cumulative >= q * total:
            return bound
    return None


def _fetch(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:.1f} ms" if value != float("inf") else "> 2.5 s"
    if unit == "MB":
        return f"{value / 1e6:.0f} MB"
    return f"{value:,.0f}"


def status_rows(base_url: str) -> list[tuple[str, str]]:
    """(label, value) rows; raises OSError when the gateway cannot be reached."""
    base = base_url.rstrip("/")
    health, _ = _fetch(base + "/healthz")
    ready_code, ready_body = _fetch(base + "/readyz")
    try:
        ready = json.loads(ready_body)
    except ValueError:
        ready = {}
    code, body = _fetch(base + "/metrics")
    m = parse_metrics(body.decode() if code == 200 else "")
    s, lab = m.scalars, m.labelled

    def joined(name: str) -> str:
        values = lab.get(name, {})
        return ", ".join(f"{k}={v:,.0f}" for k, v in sorted(values.items()) if v) or "none"

    latency = m.buckets.get("autosdlc_ws_fanout_latency_seconds", [])
    return [
        ("gateway", base),
        ("health", "ok" if health == 200 else f"HTTP {health}"),
        ("ready", f"{'yes' if ready_code == 200 else 'NO'} ({ready.get('status', '?')}, "
                  f"broker {ready.get('broker', '?')})"),
        ("workers", _fmt(s.get("autosdlc_ws_workers"))),
        ("connections", f"{_fmt(s.get('autosdlc_ws_connections_active'))} "
                        f"({joined('autosdlc_ws_connections_by_auth')})"),
        ("subscriptions", f"{_fmt(s.get('autosdlc_ws_subscriptions_active'))} "
                          f"({joined('autosdlc_ws_subscriptions_by_kind')})"),
        ("events published", _fmt(s.get("autosdlc_ws_events_published_total"))),
        ("deliveries", _fmt(s.get("autosdlc_ws_events_delivered_total"))),
        ("fan-out p50 / p99", f"{_fmt(quantile(latency, 0.5), 'ms')} / {_fmt(quantile(latency, 0.99), 'ms')}"),
        ("errors", joined("autosdlc_ws_errors_total")),
        ("rate limited", _fmt(s.get("autosdlc_ws_rate_limited_total"))),
        ("slow consumers closed", _fmt(s.get("autosdlc_ws_slow_consumer_disconnects_total"))),
        ("memory (RSS)", _fmt(s.get("autosdlc_ws_memory_rss_bytes"), "MB")),
    ]


def render_table(rows: Iterable[tuple[str, str]]) -> str:
    rows = list(rows)
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)
