"""`autosdlc-ws status`, `connections` and `disconnect` against a live gateway (memory broker: one node)."""

from __future__ import annotations

import json

from tests.conftest import ADMIN_KEY, READER_KEY, RunningGateway, make_token
from tests.integration.helpers import open_authed
from tests.integration.test_cli import run_cli


async def test_status_lists_the_node_with_admin_credentials(server: RunningGateway) -> None:
    code, out, err = await run_cli("status", "--url", server.http_url, "--api-key", ADMIN_KEY)
    assert code == 0, err
    assert "NODE" in out and server.gateway.node.node_id in out
    code, out, err = await run_cli("status", "--url", server.http_url)
    assert code == 0, err
    assert "connections" in out and "hint: with admin credentials" in out and "NODE" not in out
    code, out, err = await run_cli("status", "--url", server.http_url, "--api-key", READER_KEY)
    assert code == 0, err  # the figures still stand; the nodes part says why it is missing
    assert "nodes: gateway answered 403" in out


async def test_connections_and_disconnect(server: RunningGateway) -> None:
    client = await open_authed(server, token=make_token("cli-carol", ("read:*",)))
    assert client.connect is not None
    conn_id = client.connect["data"]["connectionId"]
    code, out, err = await run_cli("connections", "--url", server.http_url, "--api-key", ADMIN_KEY,
                                   "--subject", "cli-carol", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert [c["connectionId"] for c in answer["connections"]] == [conn_id]
    assert answer["connections"][0]["nodeId"] == server.gateway.node.node_id
    code, out, err = await run_cli("connections", "--url", server.http_url, "--api-key", ADMIN_KEY,
                                   "--subject", "nobody")
    assert code == 0 and "0 connection(s)" in out, err
    code, out, err = await run_cli("disconnect", conn_id, "--url", server.http_url, "--api-key", ADMIN_KEY)
    assert code == 0 and f"closed {conn_id}" in out, err
    close_code, reason = await client.closed()
    assert close_code == 1008 and reason == "closed by admin admin"
    code, out, err = await run_cli("disconnect", conn_id, "--url", server.http_url, "--api-key", ADMIN_KEY)
    assert code == 1 and "404" in err and "Traceback" not in err
    code, out, err = await run_cli("connections", "--url", server.http_url)
    assert code == 1 and "credentials needed" in err
