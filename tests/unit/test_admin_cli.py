"""The admin CLI's tables, from plain answers of the admin API."""

from __future__ import annotations

from autosdlc_ws.tools.admin import partial_note, render_connections, render_nodes, table

NOW = 1_800_000_000_000


def test_table_aligns_columns() -> None:
    assert table(["A", "LONGER"], [["xyz", "1"], ["q", "22"]]).splitlines() == [
        "A    LONGER", "xyz  1", "q    22"]


def test_nodes_show_uptime_and_last_seen() -> None:
    answer = {"nodes": [{"nodeId": "n1", "host": "h", "pid": 7, "connections": 3,
                         "startedAt": NOW - 3_600_000, "lastSeen": NOW - 2_000, "version": "0.1.0"}], "count": 1}
    lines = render_nodes(answer, NOW).splitlines()
    assert lines[0].split() == ["NODE", "HOST", "PID", "CONNECTIONS", "UPTIME", "SEEN", "VERSION"]
    assert lines[1].split() == ["n1", "h", "7", "3", "60m", "2s", "0.1.0"]


def test_partial_answers_name_the_missing_nodes() -> None:
    answer = {"nodes": [], "count": 0, "partial": True, "missingNodes": ["n2", "n3"]}
    assert partial_note(answer) == "partial answer: no reply from node(s) n2, n3"
    assert render_nodes(answer, NOW).endswith("partial answer: no reply from node(s) n2, n3")
    assert partial_note({"nodes": []}) is None


def test_connections_table_counts_subscriptions() -> None:
    answer = {"connections": [{"connectionId": "c1", "nodeId": "n1", "subject": "alice",
                               "remoteAddress": "127.0.0.1", "connectedAt": NOW - 5_000,
                               "subscriptions": [{"subscriptionId": "s1"}, {"subscriptionId": "s2"}]},
                              {"connectionId": "c2", "nodeId": "n2", "subject": None,
                               "remoteAddress": None, "connectedAt": None, "subscriptions": []}],
              "count": 2}
    lines = render_connections(answer, NOW).splitlines()
    assert lines[1].split() == ["c1", "n1", "alice", "127.0.0.1", "5s", "2"]
    assert lines[2].split() == ["c2", "n2", "-", "-", "-", "0"]
    assert lines[-1] == "2 connection(s)"
