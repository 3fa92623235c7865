"""The `autosdlc-ws` command: serve, token, keys, publish, simulate, status, connections, disconnect.

Errors are one line on stderr and a non-zero exit code; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from autosdlc_ws.config import load_settings
from autosdlc_ws.core.auth import hash_api_key, mint_token
from autosdlc_ws.core.permissions import PermissionSyntaxError, parse_permissions
from autosdlc_ws.errors import ConfigError, GatewayError, ProtocolError
from autosdlc_ws.tools.admin import AdminRequestError

DEFAULT_URL = "http://127.0.0.1:8765"


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1 (2 for usage)."""


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="autosdlc-ws", description="AutoSDLC WebSocket event gateway.",
                                formatter_class=fmt)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gateway", formatter_class=fmt, epilog=(
        "examples:\n"
        "  AUTOSDLC_WS_JWT_SECRET=s3cret autosdlc-ws serve\n"
        "  autosdlc-ws serve --host 0.0.0.0 --port 8765 --config gateway.toml\n"
        "Every config key can also be set as AUTOSDLC_WS_<KEY> in the environment."))
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port for WebSocket and HTTP (default 8765)")
    serve.add_argument("--workers", type=int, help="worker processes (needs a shared --broker: redis://... or redis-cluster://...)")
    serve.add_argument("--broker", help="memory (default), redis://HOST:PORT/DB or redis-cluster://HOST:PORT[,HOST:PORT...]")
    serve.add_argument("--config", help="TOML config file")
    serve.add_argument("--tls-cert", help="PEM certificate chain (serves wss/https)")
    serve.add_argument("--tls-key", help="PEM private key")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING (default INFO)")
    serve.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), dest="event_loop",
                       help="event loop: asyncio (default), uvloop, or auto (uvloop when installed)")

    token = sub.add_parser("token", help="JWT tools").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="mint a JWT with the configured HS256 secret",
                              formatter_class=fmt, epilog=(
                                  "example:\n  autosdlc-ws token create --sub dashboard "
                                  "--permission 'read:*' --ttl 3600"))
    create.add_argument("--sub", required=True, help="subject (who the token is for)")
    create.add_argument("--permission", action="append", required=True, dest="permissions",
                        help="<action>:<resource>, repeatable (e.g. read:agent:coder-001)")
    create.add_argument("--ttl", type=int, default=3600, help="seconds until expiry (default 3600; 0 = never)")
    create.add_argument("--config", help="TOML config file (for jwt_secret)")

    keys = sub.add_parser("keys", help="API key tools").add_subparsers(dest="keys_command", required=True)
    kcreate = keys.add_parser("create", help="make an API key; prints it once with its config entry",
                              formatter_class=fmt, epilog=(
                                  "example:\n  autosdlc-ws keys create --name ci-publisher "
                                  "--permission 'publish:*'"))
    kcreate.add_argument("--name", required=True)
    kcreate.add_argument("--permission", action="append", required=True, dest="permissions")

    pub = sub.add_parser("publish", help="publish one event over the HTTP API", formatter_class=fmt,
                         epilog=(
                             "examples:\n"
                             "  autosdlc-ws publish agent_status --data "
                             "'{\"agentId\": \"coder-001\", \"status\": \"busy\"}'\n"
                             "  autosdlc-ws publish system_alert --file alert.json\n"
                             "Credentials: --token/--api-key or AUTOSDLC_WS_TOKEN / AUTOSDLC_WS_API_KEY."))
    pub.add_argument("type", help="event type, e.g. agent_status")
    src = pub.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="the event's data as JSON")
    src.add_argument("--file", help="file holding the data JSON (or a whole envelope)")
    _client_args(pub)

    sim = sub.add_parser("simulate", help="publish a realistic demo story", formatter_class=fmt,
                         epilog="example:\n  autosdlc-ws simulate --agents 4 --rate 5")
    sim.add_argument("--agents", type=int, default=3, help="number of agents (default 3)")
    sim.add_argument("--rate", type=float, default=2.0, help="ticks per second (default 2)")
    sim.add_argument("--seed", type=int, help="random seed for a repeatable story")
    sim.add_argument("--duration", type=float, help="stop after this many seconds")
    _client_args(sim)

    tail = sub.add_parser("tail", help="stream live events to the terminal", formatter_class=fmt, epilog=(
        "examples:\n"
        "  autosdlc-ws tail --token $TOKEN\n"
        "  autosdlc-ws tail --events 'tdd_*' --events agent_status --filter agentId=coder-001\n"
        "  autosdlc-ws tail --json | jq .data"))
    tail.add_argument("--events", action="append", help="event type or glob, repeatable (default *)")
    tail.add_argument("--filter", action="append", default=[], dest="filters",
                      help="resource filter key=value (agentId, taskId, workflowId, repository), repeatable")
    tail.add_argument("--json", action="store_true", help="one JSON envelope per line")
    tail.add_argument("--no-color", action="store_true", help="no ANSI colours")
    tail.add_argument("--count", type=int, help="exit after this many events")
    _client_args(tail)

    status = sub.add_parser("status", help="health, connections and message figures of a gateway",
                            formatter_class=fmt, epilog="example:\n  autosdlc-ws status --url http://127.0.0.1:8765")
    _client_args(status)  # with admin credentials it also lists every node of the deployment

    conns = sub.add_parser("connections", help="every open connection of the deployment (admin)",
                           formatter_class=fmt, epilog=(
                               "examples:\n  autosdlc-ws connections --api-key $ADMIN_KEY\n"
                               "  autosdlc-ws connections --subject dashboard --json"))
    conns.add_argument("--subject", help="only this subject's connections")
    conns.add_argument("--node", help="only the connections of this node id (see `status`)")
    conns.add_argument("--json", action="store_true", help="the API's JSON answer, as is")
    _client_args(conns)

    disconnect = sub.add_parser("disconnect", help="close a connection on any node with 1008 (admin)",
                                formatter_class=fmt,
                                epilog="example:\n  autosdlc-ws disconnect conn_0123abcd --api-key $ADMIN_KEY")
    disconnect.add_argument("id", help="connection id (see `connections`)")
    _client_args(disconnect)

    bench = sub.add_parser("bench", help="benchmark fan-out against bare aiohttp and python-socketio",
                           formatter_class=fmt, epilog=(
                               "examples:\n"
                               "  autosdlc-ws bench -n 1000,5000 --burst 1,50 --rate 50000\n"
                               "  autosdlc-ws bench --target gateway,bare-aiohttp,socketio --repeat 3\n"
                               "  autosdlc-ws bench --suite        (everything in docs/benchmarks.md)\n"
                               "Needs the bench extra: pip install -e '.[bench]'."))
    from autosdlc_ws.bench.command import add_arguments as add_bench_arguments

    add_bench_arguments(bench)

    demo = sub.add_parser("demo", help="serve + simulate with a throw-away dev secret (make run)",
                          formatter_class=fmt, epilog="example:\n  autosdlc-ws demo --port 8765")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8765)
    demo.add_argument("--agents", type=int, default=3)
    demo.add_argument("--rate", type=float, default=2.0)
    return p


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("AUTOSDLC_WS_URL", DEFAULT_URL),
                   help=f"gateway base URL (default {DEFAULT_URL})")
    p.add_argument("--token", default=os.environ.get("AUTOSDLC_WS_TOKEN"), help="JWT")
    p.add_argument("--api-key", default=os.environ.get("AUTOSDLC_WS_API_KEY"), help="API key")


# --- commands -------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from autosdlc_ws.broker.registry import make_backend
    from autosdlc_ws.server.event_loop import resolve_loop
    from autosdlc_ws.server.event_loop import run as run_on_loop
    from autosdlc_ws.server.logs import configure_logging
    from autosdlc_ws.server.serve import serve

    settings = load_settings(args.config, overrides={
        "host": args.host, "port": args.port, "workers": args.workers, "broker": args.broker,
        "tls_cert": args.tls_cert, "tls_key": args.tls_key, "log_level": args.log_level,
        "event_loop": args.event_loop,
    })
    make_backend(settings)  # refuse an unknown or unusable broker before binding
    loop_name = resolve_loop(settings.event_loop)  # uvloop asked for but missing: refused here
    configure_logging(settings.log_level, settings.log_format)
    if not settings.jwt_secret and not settings.api_keys and not settings.jwt_public_keys:
        print("autosdlc-ws: warning: no jwt_secret, public keys or api_keys configured; "
              "no client can authenticate", file=sys.stderr)
    run_on_loop(serve(settings), loop_name)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if not settings.jwt_secret:
        raise CliError("no jwt_secret configured: set AUTOSDLC_WS_JWT_SECRET or jwt_secret in the config")
    _check_permissions(args.permissions)
    print(mint_token(settings.jwt_secret, args.sub, args.permissions,
                     ttl_s=args.ttl or None, now_s=int(time.time()),
                     issuer=settings.jwt_issuer, audience=settings.jwt_audience))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    _check_permissions(args.permissions)
    key = "ask_" + secrets.token_urlsafe(32)
    perms = ", ".join(json.dumps(p) for p in args.permissions)
    print(f"API key (shown once, store it now): {key}\n")
    print("Add to the gateway's TOML config:\n")
    print(f'[[api_keys]]\nname = {json.dumps(args.name)}\nsha256 = "{hash_api_key(key)}"\n'
          f"permissions = [{perms}]")
    return 0


def _check_permissions(perms: Sequence[str]) -> None:
    try:
        parse_permissions(perms)
    except PermissionSyntaxError as exc:
        raise CliError(str(exc)) from None


def _auth_headers(args: argparse.Namespace) -> dict[str, str]:
    if args.token:
        return {"Authorization": f"Bearer {args.token}"}
    if args.api_key:
        return {"X-API-Key": args.api_key}
    raise CliError("credentials needed: --token or --api-key (or AUTOSDLC_WS_TOKEN / AUTOSDLC_WS_API_KEY)")


def post_events(url: str, headers: dict[str, str], events: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps(events if len(events) > 1 else events[0]).encode()
    req = urllib.request.Request(url.rstrip("/") + "/api/v1/events", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())["error"]
            detail = f"{err['code']}: {err['message']}" + (f" (at {err['path']})" if err.get("path") else "")
        except (ValueError, KeyError, TypeError):
            detail = exc.reason
        raise CliError(f"gateway answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach the gateway at {url}: {getattr(exc, 'reason', exc)}") from None


def build_event(event_type: str, raw: Any) -> dict[str, Any]:
    """An envelope from `--data` (the data object) or a whole envelope; validated locally."""
    from autosdlc_ws.core import messages
    from autosdlc_ws.core.connection_core import prepare_event
    from autosdlc_ws.core.schema_versions import schema_version

    if not isinstance(raw, dict):
        raise CliError("the data must be a JSON object")
    if event_type not in messages.EVENT_TYPES:
        raise CliError(f"{event_type!r} is not an event type; one of: {', '.join(messages.EVENT_TYPES)}")
    envelope = raw if raw.get("type") == event_type and "data" in raw else {"type": event_type, "data": raw}
    envelope.setdefault("metadata", {"version": schema_version(event_type), "source": "cli"})
    event = prepare_event(envelope, int(time.time() * 1000))
    try:
        messages.validate_message(event)
    except ProtocolError as exc:
        raise CliError(f"invalid {event_type}: {exc.message}" + (f" (at {exc.path})" if exc.path else "")) from None
    return event


def cmd_publish(args: argparse.Namespace) -> int:
    try:
        if args.data is not None:
            text = args.data
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
        raw = json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"data is not valid JSON: {exc}") from None
    event = build_event(args.type, raw)
    result = post_events(args.url, _auth_headers(args), [event])
    print(f"published {args.type} id={result['ids'][0]}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from autosdlc_ws.sources.simulator import Simulator

    headers = _auth_headers(args)
    sim = Simulator(agents=args.agents, seed=args.seed, clock_ms=lambda: int(time.time() * 1000))
    interval = 1.0 / args.rate if args.rate > 0 else 1.0
    started = time.monotonic()
    sent = 0
    print(f"simulating {args.agents} agents at {args.rate} ticks/s against {args.url}", flush=True)
    try:
        while args.duration is None or time.monotonic() - started < args.duration:
            tick = time.monotonic()
            events = [build_event(e["type"], e) for e in sim.step()]
            try:
                post_events(args.url, headers, events)
                sent += len(events)
            except CliError as exc:
                print(f"autosdlc-ws simulate: {exc}; retrying", file=sys.stderr, flush=True)
                time.sleep(1.0)
            time.sleep(max(0.0, interval - (time.monotonic() - tick)))
    except KeyboardInterrupt:
        pass
    print(f"simulate: published {sent} events", flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Gateway and simulator as two child processes sharing a dev secret."""
    import subprocess

    env = dict(os.environ)
    secret = env.setdefault("AUTOSDLC_WS_JWT_SECRET", "dev-" + secrets.token_hex(24))
    now = int(time.time())
    viewer = mint_token(secret, "dashboard", ["read:*"], ttl_s=24 * 3600, now_s=now)
    publisher = mint_token(secret, "simulator", ["publish:*", "read:*"], ttl_s=24 * 3600, now_s=now)
    base = f"http://{args.host}:{args.port}"
    serve = subprocess.Popen([sys.executable, "-m", "autosdlc_ws", "serve", "--host", args.host,
                              "--port", str(args.port)], env=env)
    sim: subprocess.Popen[bytes] | None = None
    try:
        if not _wait_healthy(base, serve, 15.0):
            raise CliError(f"the gateway did not start on {base}")
        sim = subprocess.Popen([sys.executable, "-m", "autosdlc_ws", "simulate", "--url", base,
                                "--token", publisher, "--agents", str(args.agents),
                                "--rate", str(args.rate)], env=env)
        print(f"\n  dashboard:  {base}/#token={viewer}\n  websocket:  ws://{args.host}:{args.port}/ws"
              f"\n  read token: {viewer}\n  (Ctrl-C stops gateway and simulator)\n", flush=True)
        serve.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in (sim, serve):
            if child is not None and child.poll() is None:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
    return 0


def _wait_healthy(base: str, proc: Any, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def cmd_tail(args: argparse.Namespace) -> int:
    from autosdlc_ws.client import AutoSDLCError
    from autosdlc_ws.tools.tail import parse_filters, run_tail

    if not (args.token or args.api_key):
        raise CliError("credentials needed: --token or --api-key (or AUTOSDLC_WS_TOKEN / AUTOSDLC_WS_API_KEY)")
    try:
        filters = parse_filters(args.filters)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    base = args.url.rstrip("/")
    ws_url = base if base.startswith("ws") else base.replace("http", "ws", 1) + "/ws"
    colour = not args.no_color and sys.stdout.isatty()
    try:
        return asyncio.run(run_tail(ws_url, token=args.token, api_key=args.api_key,
                                    events=args.events or ["*"], filters=filters, as_json=args.json,
                                    colour=colour, count=args.count))
    except AutoSDLCError as exc:
        raise CliError(str(exc)) from None


def cmd_status(args: argparse.Namespace) -> int:
    from autosdlc_ws.tools.admin import NODES_HINT, admin_request, render_nodes
    from autosdlc_ws.tools.status import render_table, status_rows

    try:
        rows = status_rows(args.url)
    except OSError as exc:
        raise CliError(f"cannot reach the gateway at {args.url}: {getattr(exc, 'reason', exc)}") from None
    print(render_table(rows))
    if args.token or args.api_key:
        try:  # credentials from the environment may lack admin: the figures above still stand
            print(f"\n{render_nodes(admin_request(args.url, '/api/v1/nodes', _auth_headers(args)))}")
        except AdminRequestError as exc:
            print(f"\nnodes: {exc}")
    else:
        print(f"\n{NODES_HINT}")
    return 0 if rows[2][1].startswith("yes") else 3


def cmd_connections(args: argparse.Namespace) -> int:
    from autosdlc_ws.tools.admin import admin_request, render_connections

    answer = admin_request(args.url, "/api/v1/connections", _auth_headers(args),
                           query={"subject": args.subject or "", "nodeId": args.node or ""})
    print(json.dumps(answer, indent=2) if args.json else render_connections(answer))
    return 0


def cmd_disconnect(args: argparse.Namespace) -> int:
    from autosdlc_ws.tools.admin import admin_request

    answer = admin_request(args.url, f"/api/v1/connections/{urllib.parse.quote(args.id, safe='')}",
                           _auth_headers(args), method="DELETE")
    print(f"closed {answer.get('closed', args.id)} (1008, closed by admin)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from autosdlc_ws.bench.command import run

    return run(args)


COMMANDS = {
    "bench": cmd_bench,
    "tail": cmd_tail,
    "status": cmd_status,
    "connections": cmd_connections,
    "disconnect": cmd_disconnect,
    "demo": cmd_demo,
    "serve": cmd_serve,
    "publish": cmd_publish,
    "simulate": cmd_simulate,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "token":
            return cmd_token_create(args)
        if args.command == "keys":
            return cmd_keys_create(args)
        return COMMANDS[args.command](args)
    except (CliError, ConfigError, AdminRequestError) as exc:
        print(f"autosdlc-ws: error: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"autosdlc-ws: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
