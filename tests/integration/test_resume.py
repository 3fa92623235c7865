"""Session resume: restored subscriptions and missed events (CONTRACT.md section 4.7)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from autosdlc_ws.errors import BrokerUnavailable
from autosdlc_ws.server.start_gate import StartGate
from tests.conftest import RunningGateway, base_settings, make_token
from tests.integration.helpers import Client, agent_status, open_authed, open_ws, publish


async def session_with_history(server: RunningGateway, token: str) -> tuple[str, str, str]:
    """Connect, subscribe, receive two events, disconnect. (session, subscription, last id)."""
    client = await open_authed(server, token=token)
    assert client.connect is not None
    session_id = client.connect["data"]["sessionId"]
    sub_id = await client.subscribe(["agent_status"], {"agentId": ["a1", "a2"]})
    await publish(server, [agent_status("a1", "e1"), agent_status("a2", "e2")])
    got = await client.until_event("e2")
    assert [m["id"] for m in got] == ["e1", "e2"]
    await client.close()
    await until_gone(server, client)
    return session_id, sub_id, "e2"


async def until_gone(server: RunningGateway, client: Client) -> None:
    for _ in range(200):
        if not server.gateway.connections:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server did not notice the disconnect")


async def publish_while_away(server: RunningGateway) -> None:
    await publish(server, [agent_status("a1", "m1"), agent_status("a3", "other"),
                           {"type": "agent_log", "id": "log", "data": {"agentId": "a1", "level": "info",
                                                                       "message": "x"}},
                           agent_status("a2", "m2"), agent_status("a1", "m3")])


async def expect_resumed(client: Client, session_id: str, sub_id: str) -> None:
    assert client.connect is not None
    assert client.connect["data"]["resumed"] is True
    assert client.connect["data"]["sessionId"] == session_id
    update = await client.recv_type("subscription_update")
    assert update["data"]["status"] == "resumed"
    assert update["data"]["subscriptionId"] == sub_id
    assert update["data"]["events"] == ["agent_status"]
    assert update["data"]["filters"] == {"agentId": ["a1", "a2"]}


async def test_resume_with_query_parameters(server: RunningGateway) -> None:
    token = make_token("alice")
    session_id, sub_id, last = await session_with_history(server, token)
    await publish_while_away(server)
    client = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id={last}")
    try:
        await expect_resumed(client, session_id, sub_id)
        await publish(server, agent_status("a2", "live"))
        got = await client.until_event("live")
        assert [m["id"] for m in got] == ["m1", "m2", "m3", "live"]
        # the restored subscription is a real one: it can be removed by its id
        reply = await client.request("unsubscribe", {"subscriptionId": sub_id})
        assert reply["data"]["status"] == "removed"
    finally:
        await client.close()


async def test_resume_in_band(server: RunningGateway) -> None:
    token = make_token("alice")
    session_id, sub_id, last = await session_with_history(server, token)
    await publish_while_away(server)
    client = await open_ws(server.ws_url)
    try:
        first = await client.recv_type("connect")
        assert first["data"]["sessionId"] != session_id
        await client.send({"id": "auth", "type": "auth_request", "timestamp": 0,
                           "data": {"token": token, "sessionId": session_id, "lastEventId": last}})
        client.connect = await client.recv_type("connect")
        await client.recv_type("auth_success")
        await expect_resumed(client, session_id, sub_id)
        await publish(server, agent_status("a1", "live"))
        got = await client.until_event("live")
        assert [m["id"] for m in got] == ["m1", "m2", "m3", "live"]
    finally:
        await client.close()


async def test_live_events_during_replay_are_neither_lost_nor_duplicated(server: RunningGateway) -> None:
    token = make_token("alice")
    session_id, _, last = await session_with_history(server, token)
    await publish(server, [agent_status("a1", f"away-{n}") for n in range(300)])

    async def keep_publishing() -> None:
        for n in range(20):
            await publish(server, agent_status("a2", f"live-{n}"))

    publisher = asyncio.create_task(keep_publishing())
    client = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id={last}")
    try:
        await publisher
        assert (await client.recv_type("subscription_update"))["data"]["status"] == "resumed"
        got = await client.until_event("live-19")
        ids = [m["id"] for m in got]
        assert ids[:300] == [f"away-{n}" for n in range(300)]
        assert ids[300:] == [f"live-{n}" for n in range(20)]
    finally:
        await client.close()


async def test_unknown_session_is_not_resumed(server: RunningGateway) -> None:
    client = await open_authed(server, query="session_id=sess-nope&last_event_id=e1")
    try:
        assert client.connect is not None
        assert client.connect["data"]["resumed"] is False
        assert client.connect["data"]["sessionId"] != "sess-nope"
        await client.silent(0.1)  # no subscription_update, no replay
    finally:
        await client.close()


async def test_unknown_last_event_id_is_reported_as_reset(server: RunningGateway) -> None:
    token = make_token("alice")
    session_id, sub_id, _ = await session_with_history(server, token)
    client = await open_authed(server, token=token,
                               query=f"session_id={session_id}&last_event_id=never-published")
    try:
        await expect_resumed(client, session_id, sub_id)
        reset = await client.recv_type("subscription_update")
        assert reset["data"]["status"] == "reset" and reset["data"]["subscriptionId"] == sub_id
        assert reset["data"]["reason"]
        await publish(server, agent_status("a1", "live"))
        assert (await client.recv())["id"] == "live"
    finally:
        await client.close()


async def test_gap_past_retention_is_reported_as_reset(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(history_max_events=3))
    token = make_token("alice")
    session_id, sub_id, last = await session_with_history(server, token)
    await publish(server, [agent_status("a1", f"gap-{n}") for n in range(6)])
    client = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id={last}")
    try:
        await expect_resumed(client, session_id, sub_id)
        reset = await client.recv_type("subscription_update")
        assert reset["data"]["status"] == "reset"
    finally:
        await client.close()


async def test_another_subject_cannot_resume_the_session(server: RunningGateway) -> None:
    session_id, _, last = await session_with_history(server, make_token("alice"))
    await publish_while_away(server)
    for query in (f"session_id={session_id}&last_event_id={last}", f"session_id={session_id}"):
        thief = await open_authed(server, token=make_token("mallory"), query=query)
        try:
            assert thief.connect is not None
            assert thief.connect["data"]["resumed"] is False
            assert thief.connect["data"]["sessionId"] != session_id
            await thief.silent(0.1)
        finally:
            await thief.close()
    # in-band too
    thief = await open_ws(server.ws_url)
    try:
        await thief.recv_type("connect")
        await thief.send({"id": "a", "type": "auth_request", "timestamp": 0,
                          "data": {"token": make_token("mallory"), "sessionId": session_id,
                                   "lastEventId": last}})
        again = await thief.recv_type("connect")
        assert again["data"]["resumed"] is False and again["data"]["sessionId"] != session_id
        await thief.recv_type("auth_success")
        await thief.silent(0.1)
    finally:
        await thief.close()


async def test_resume_while_the_old_connection_is_still_open(server: RunningGateway) -> None:
    """A client whose network dropped reconnects before the server noticed: it takes the
    session over instead of failing, and its events are delivered once."""
    token = make_token("alice")
    old = await open_authed(server, token=token)
    assert old.connect is not None
    session_id = old.connect["data"]["sessionId"]
    sub_id = await old.subscribe(["agent_status"], {"agentId": ["a1", "a2"]})
    await publish(server, agent_status("a1", "t1"))
    assert (await old.recv())["id"] == "t1"
    new = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id=t1")
    try:
        await expect_resumed(new, session_id, sub_id)
        await publish(server, agent_status("a2", "t2"))
        assert (await new.recv())["id"] == "t2"
        await new.silent(0.1)
        assert (await new.request("ping", {}))["type"] == "pong"
        # the old connection is closed; the session's subscriptions survive its cleanup
        code, _ = await old.closed()
        assert code == 1000
        await asyncio.sleep(0.05)
        await publish(server, agent_status("a1", "t3"))
        assert (await new.recv())["id"] == "t3"
    finally:
        await new.close()
        await old.close()
    # and the session is still resumable afterwards, with its subscription
    await until_gone(server, new)
    again = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id=t3")
    try:
        await expect_resumed(again, session_id, sub_id)
    finally:
        await again.close()


async def test_resume_with_narrower_credentials_drops_what_they_cannot_read(server: RunningGateway) -> None:
    wide = make_token("alice", ("read:*",))
    client = await open_authed(server, token=wide)
    assert client.connect is not None
    session_id = client.connect["data"]["sessionId"]
    agent_sub = await client.subscribe(["agent_status"])
    workflow_sub = await client.subscribe(["workflow_*"])
    await publish(server, agent_status("a1", "seen"))
    assert (await client.recv())["id"] == "seen"
    await client.close()
    await until_gone(server, client)
    await publish(server, [{"type": "workflow_started", "id": "wf", "data": {"workflowId": "w", "name": "n"}},
                           agent_status("a1", "missed")])
    narrow = make_token("alice", ("read:agent:*",))
    again = await open_authed(server, token=narrow, query=f"session_id={session_id}&last_event_id=seen")
    try:
        updates = {}
        for _ in range(2):
            u = await again.recv_type("subscription_update")
            updates[u["data"]["subscriptionId"]] = u["data"]["status"]
        assert updates == {agent_sub: "resumed", workflow_sub: "removed"}
        assert (await again.recv())["id"] == "missed"
        await again.silent(0.1)
    finally:
        await again.close()


async def test_session_expires_after_session_ttl(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(session_ttl_s=0.2))
    token = make_token("alice")
    session_id, _, last = await session_with_history(server, token)
    await asyncio.sleep(0.4)
    client = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id={last}")
    try:
        assert client.connect is not None and client.connect["data"]["resumed"] is False
        await client.silent(0.1)
    finally:
        await client.close()


async def test_a_session_store_that_cannot_answer_is_never_a_fresh_session(
        server: RunningGateway, monkeypatch: Any) -> None:
    """A resume storm (500 clients at once) once exhausted the Redis pool: the load
    failed and the client got a new session, losing what it missed. Now the
    connection is closed 1013 and the same resume, retried, gets everything."""
    token = make_token("alice")
    session_id, sub_id, last = await session_with_history(server, token)
    await publish_while_away(server)
    sessions = server.gateway.backend.sessions
    real_load = sessions.load

    async def unreachable(sid: str) -> Any:
        raise BrokerUnavailable("redis: No connection available.")

    monkeypatch.setattr(sessions, "load", unreachable)
    refused = await open_ws(f"{server.ws_url}?token={token}&session_id={session_id}&last_event_id={last}")
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        while True:
            msg = await refused.recv()
            assert not (msg["type"] == "connect" and msg["data"]["resumed"] is False), msg
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    await until_gone(server, refused)
    monkeypatch.setattr(sessions, "load", real_load)
    await resume_gets(server, token, session_id, sub_id, last, ["m1", "m2", "m3", "live"])


async def resume_gets(server: RunningGateway, token: str, session_id: str, sub_id: str, last: str,
                      expected: list[str]) -> None:
    """Resume again (the retry a client makes after 1013): the subscription is back and
    every event since `last` arrives, then a live one ("live")."""
    client = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id={last}")
    try:
        await expect_resumed(client, session_id, sub_id)
        await publish(server, agent_status("a2", "live"))
        assert [m["id"] for m in await client.until_event("live")] == expected
    finally:
        await client.close()


async def test_resumes_past_the_gate_wait_their_turn_instead_of_failing(
        server: RunningGateway, monkeypatch: Any) -> None:
    """A resume storm runs a bounded number of resumes at a time; the others wait
    (no 1013, no new handshake) and get everything once their turn comes."""
    token_a, token_b = make_token("alice"), make_token("bob")
    sessions_made = []
    for token in (token_a, token_b):
        client = await open_authed(server, token=token)
        assert client.connect is not None
        sub_id = await client.subscribe(["agent_status"], {"agentId": ["a1", "a2"]})
        sessions_made.append((client, client.connect["data"]["sessionId"], sub_id))
    await publish(server, [agent_status("a1", "e1"), agent_status("a2", "e2")])
    for client, _, _ in sessions_made:
        await client.until_event("e2")
        await client.close()
    await until_gone(server, client)
    first, second = ((sid, sub, "e2") for _, sid, sub in sessions_made)
    await publish_while_away(server)
    server.gateway.sessions.starting = StartGate(limit=1, wait_s=5)
    sessions = server.gateway.backend.sessions
    real_load = sessions.load
    loading, go_on = asyncio.Event(), asyncio.Event()

    async def slow_first(sid: str) -> Any:
        if sid == first[0]:
            loading.set()
            await go_on.wait()
        return await real_load(sid)

    monkeypatch.setattr(sessions, "load", slow_first)
    opening_a = asyncio.create_task(
        open_authed(server, token=token_a, query=f"session_id={first[0]}&last_event_id={first[2]}"))
    await asyncio.wait_for(loading.wait(), 5)
    opening_b = asyncio.create_task(
        open_authed(server, token=token_b, query=f"session_id={second[0]}&last_event_id={second[2]}"))
    await asyncio.sleep(0.2)
    assert not opening_b.done() and server.gateway.sessions.starting.waiting == 1
    go_on.set()
    clients = [await asyncio.wait_for(opening_a, 5), await asyncio.wait_for(opening_b, 5)]
    try:
        for client, (session_id, sub_id, _) in zip(clients, (first, second), strict=True):
            await expect_resumed(client, session_id, sub_id)
        await publish(server, agent_status("a2", "live"))
        for client in clients:
            assert [m["id"] for m in await client.until_event("live")] == ["m1", "m2", "m3", "live"]
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("in_band", [False, True], ids=["query", "in_band"])
async def test_a_resume_reads_its_session_record_once(
        server: RunningGateway, monkeypatch: Any, in_band: bool) -> None:
    """In a resume storm every Redis round trip is paid by hundreds of clients at
    once; the replay used to load the record the resume had just loaded."""
    token = make_token("alice")
    session_id, sub_id, last = await session_with_history(server, token)
    await publish_while_away(server)
    sessions = server.gateway.backend.sessions
    real_load = sessions.load
    loads: list[str] = []

    async def counted(sid: str) -> Any:
        loads.append(sid)
        return await real_load(sid)

    monkeypatch.setattr(sessions, "load", counted)
    if in_band:
        client = await open_ws(server.ws_url)
        await client.recv_type("connect")
        await client.send({"id": "auth", "type": "auth_request", "timestamp": 0,
                           "data": {"token": token, "sessionId": session_id, "lastEventId": last}})
        client.connect = await client.recv_type("connect")
        await client.recv_type("auth_success")
        await expect_resumed(client, session_id, sub_id)
    else:
        client = await open_authed(server, token=token, query=f"session_id={session_id}&last_event_id={last}")
        await expect_resumed(client, session_id, sub_id)
    try:
        await publish(server, agent_status("a2", "live"))
        assert [m["id"] for m in await client.until_event("live")] == ["m1", "m2", "m3", "live"]
        assert loads == [session_id]
    finally:
        await client.close()


@pytest.mark.parametrize("in_band", [False, True], ids=["query", "in_band"])
async def test_a_history_that_cannot_be_read_now_is_retried_not_reset(
        server: RunningGateway, monkeypatch: Any, in_band: bool) -> None:
    """The same storm could also fail the history read after the session loaded: the
    client was told `reset` for its subscriptions and lost the events in between.
    Now it is closed 1013 with nothing sent out of order (a live event that came
    while the read was failing stays held back), and the retried resume gets all."""
    token = make_token("alice")
    session_id, sub_id, last = await session_with_history(server, token)
    await publish_while_away(server)
    log = server.gateway.backend.log
    real_history_after = log.history_after
    reading = asyncio.Event()
    fail_now = asyncio.Event()

    async def pool_exhausted(**kwargs: Any) -> Any:
        reading.set()
        await fail_now.wait()
        raise BrokerUnavailable("redis: No connection available.")

    monkeypatch.setattr(log, "history_after", pool_exhausted)
    if in_band:
        refused = await open_ws(server.ws_url)
        await refused.send({"id": "auth", "type": "auth_request", "timestamp": 0,
                            "data": {"token": token, "sessionId": session_id, "lastEventId": last}})
    else:
        refused = await open_ws(f"{server.ws_url}?token={token}&session_id={session_id}&last_event_id={last}")
    await asyncio.wait_for(reading.wait(), 5)
    await publish(server, agent_status("a1", "during"))
    fail_now.set()
    received: list[dict[str, Any]] = []
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        while True:
            received.append(await refused.recv())
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert [m["type"] for m in received if m["type"] != "subscription_update"] == [
        "connect", *(["connect"] if in_band else []), "auth_success"], received
    assert [m["data"]["status"] for m in received if m["type"] == "subscription_update"] == ["resumed"]
    await until_gone(server, refused)
    monkeypatch.setattr(log, "history_after", real_history_after)
    await resume_gets(server, token, session_id, sub_id, last, ["m1", "m2", "m3", "during", "live"])


async def test_a_subscription_whose_save_failed_is_still_restored(
        server: RunningGateway, monkeypatch: Any) -> None:
    """A storm (or a Redis restart) failed the save that follows a subscribe; the
    record kept no subscription, and a resume after a crash (no save on
    disconnect) restored nothing. The save is now retried until it lands."""
    token = make_token("alice")
    client = await open_authed(server, token=token)
    assert client.connect is not None
    session_id = client.connect["data"]["sessionId"]
    sessions = server.gateway.backend.sessions
    real_save = sessions.save
    failures = 0

    async def flaky(record: Any, ttl_s: float, *, claim: bool = True) -> bool:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise BrokerUnavailable("redis: No connection available.")
        return await real_save(record, ttl_s, claim=claim)

    monkeypatch.setattr(sessions, "save", flaky)
    try:
        await client.subscribe(["agent_status"], {"agentId": "a1"})
        for _ in range(300):
            record = await sessions.load(session_id)
            if record is not None and record.subscriptions:
                break
            await asyncio.sleep(0.01)
        assert failures == 2
        assert record is not None and [s["events"] for s in record.subscriptions] == [["agent_status"]]
    finally:
        await client.close()


async def test_the_save_on_disconnect_is_retried_while_the_broker_is_down(
        server: RunningGateway, monkeypatch: Any) -> None:
    """The client unsubscribed and left while the session store could not be
    written: the save on disconnect used to be tried once, so the record kept the
    subscription and a resume restored what the client had dropped."""
    token = make_token("alice")
    client = await open_authed(server, token=token)
    assert client.connect is not None
    session_id = client.connect["data"]["sessionId"]
    sub_id = await client.subscribe(["agent_status"], {"agentId": "a1"})
    sessions = server.gateway.backend.sessions
    for _ in range(300):
        record = await sessions.load(session_id)
        if record is not None and record.subscriptions:
            break
        await asyncio.sleep(0.01)
    real_save = sessions.save
    down = True

    async def while_down(record: Any, ttl_s: float, *, claim: bool = True) -> bool:
        if down:
            raise BrokerUnavailable("redis: Connection refused.")
        return await real_save(record, ttl_s, claim=claim)

    monkeypatch.setattr(sessions, "save", while_down)
    assert (await client.request("unsubscribe", {"subscriptionId": sub_id}))["data"]["status"] == "removed"
    await client.close()
    await until_gone(server, client)
    down = False
    for _ in range(300):
        record = await sessions.load(session_id)
        if record is not None and not record.subscriptions:
            break
        await asyncio.sleep(0.01)
    assert record is not None and record.subscriptions == []
