"""`serve --tls-cert/--tls-key` serves wss and https, with certificates made at
test time by trustme (a throw-away CA and a server certificate for 127.0.0.1)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme
import websockets

from tests.conftest import make_token, timeout
from tests.integration.helpers import Client, open_ws
from tests.security.support import check_server_message, publish_http, start_serve


@pytest.mark.timeout(60)
async def test_serve_with_tls_cert_and_key(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = tmp_path / "server-chain.pem", tmp_path / "server-key.pem"
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(chain), append=i > 0)
    cert.private_key_pem.write_to_path(str(key))
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_ctx)

    server = start_serve(tmp_path, args=("--tls-cert", str(chain), "--tls-key", str(key)), scheme="https")
    try:
        assert "listening on https://" in server.log()
        client = Client(await websockets.connect(
            f"{server.ws_url}?token={make_token('tls-reader', ('read:agent:*',))}", ssl=client_ctx,
            open_timeout=timeout(5), max_size=None, compression=None))
        assert client.ws.request is not None
        connect = await client.recv_type("connect")
        check_server_message(connect)
        auth = await client.recv_type("auth_success")
        assert auth["data"]["subject"] == "tls-reader"
        await client.subscribe(["agent_status"], {"agentId": "tls-agent"})

        token = make_token("tls-publisher", ("publish:agent:tls-agent",))
        event = {"id": "over-https", "type": "agent_status",
                 "data": {"agentId": "tls-agent", "status": "busy"}}
        status, body = await asyncio.to_thread(publish_http, server.base_url, event, token=token,
                                               context=client_ctx)
        assert status == 202 and body["ids"] == ["over-https"], (status, body)
        received = await client.recv()
        assert received["id"] == "over-https" and received["data"]["agentId"] == "tls-agent"
        await client.close()

        # a client that does not trust the test CA refuses the server's certificate
        with pytest.raises(ssl.SSLCertVerificationError):
            await websockets.connect(server.ws_url, ssl=ssl.create_default_context(), open_timeout=timeout(5))
        # and plain ws:// to the TLS port gets no WebSocket
        with pytest.raises((websockets.InvalidMessage, websockets.InvalidStatus, ConnectionError, OSError)):
            plain = await open_ws(server.ws_url.replace("wss://", "ws://"))
            await plain.close()
    finally:
        server.stop()
