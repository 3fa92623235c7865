"""The Grafana dashboard and the alert rules name only metrics the gateway exports."""

from __future__ import annotations

import json
import re

import aiohttp
import yaml

from tests.conftest import REPO, RunningGateway

NAME = re.compile(r"\bautosdlc_ws_[a-z_]+")
SUFFIXES = ("_bucket", "_sum", "_count")


async def _exported(server: RunningGateway) -> set[str]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
        text = await resp.text()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name + "_total" if kind == "counter" and not name.endswith("_total") else name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


async def test_dashboard_and_alerts_use_exported_metrics(server: RunningGateway) -> None:
    server.gateway.stats.fanout_latency.observe(0.001)  # histograms appear once observed
    server.gateway.stats.received_size.observe(10)
    exported = {_base(n) for n in await _exported(server)}
    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((REPO / "deploy" / "prometheus-alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {_base(n) for e in exprs for n in NAME.findall(e)}
    assert used, "no metric names found"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
