"""A throw-away Redis Cluster for the tests: `masters` masters (+ one replica each
when `replicas`), each a `redis-server --cluster-enabled yes` on a free port,
joined by `redis-cli --cluster create`. Nodes can be killed, restarted and
failed over one by one, which is what the fault tests do.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from redis.crc import key_slot

from autosdlc_ws.bench.local_processes import redis_ping, resp_command
from tests.conftest import timeout

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too (and below 65536)."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class ClusterNode:
    def __init__(self, workdir: Path, port: int, *, persistent: bool) -> None:
        self.workdir = workdir
        self.port = port
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                "--save", "", "--dir", str(self.workdir), "--stream-node-max-entries", "10",
                "--appendonly", "yes" if self.persistent else "no"]
        if self.persistent:
            args += ["--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout(10)
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self, *, kill: bool = True) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout(10))
        self.proc = None

    def ping(self) -> bool:
        return redis_ping(self.port)

    def command(self, *args: str) -> bytes:
        """One command over a raw socket; b"" when the node cannot be reached."""
        return resp_command(self.port, *args)

    def role(self) -> str:
        info = self.command("ROLE")
        return "master" if b"master" in info[:32] else "replica" if info else "down"

    def node_id(self) -> str:
        return self.command("CLUSTER", "MYID").split(b"\r\n")[1].decode()


def _bulk_strings(reply: bytes) -> list[str]:
    """The strings of a RESP array of bulk strings (enough for GETKEYSINSLOT)."""
    lines = reply.split(b"\r\n")
    if not lines or not lines[0].startswith(b"*"):
        return []
    return [lines[i].decode() for i in range(2, 2 * int(lines[0][1:]) + 1, 2)]


class LocalCluster:
    def __init__(self, workdir: Path, *, masters: int = 3, replicas: bool = False,
                 persistent: bool = False) -> None:
        count = masters * (2 if replicas else 1)
        self.masters = masters
        self.replicas = replicas
        self.nodes = [ClusterNode(workdir / f"n{i}", free_cluster_port(), persistent=persistent) for i in range(count)]

    @property
    def url(self) -> str:
        return "redis-cluster://" + ",".join(n.address for n in self.nodes[:self.masters])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        if self.masters < 3 and not self.replicas:
            self._assign_slots()  # `redis-cli --cluster create` wants 3 masters; benchmarks want 1 and 2
            self.wait_ok()
            return
        cmd = [REDIS_CLI, "--cluster", "create", *(n.address for n in self.nodes), "--cluster-yes"]
        if self.replicas:
            cmd += ["--cluster-replicas", "1"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=timeout(30))
        self.wait_ok()

    def _assign_slots(self) -> None:
        """What `--cluster create` does, by hand: contiguous slot ranges, then every node meets the first."""
        for i, node in enumerate(self.nodes):
            low, high = i * 16384 // len(self.nodes), (i + 1) * 16384 // len(self.nodes) - 1
            if not node.command("CLUSTER", "ADDSLOTSRANGE", str(low), str(high)).startswith(b"+OK"):
                raise RuntimeError(f"{node.address}: CLUSTER ADDSLOTSRANGE failed")
        for node in self.nodes[1:]:
            node.command("CLUSTER", "MEET", "127.0.0.1", str(self.nodes[0].port))

    def wait_ok(self, seconds: float = 20) -> None:
        """Until every live node says `cluster_state:ok` and agrees on the slots."""
        deadline = time.monotonic() + timeout(seconds)
        while time.monotonic() < deadline:
            live = [n for n in self.nodes if n.proc is not None]
            if all(b"cluster_state:ok" in n.command("CLUSTER", "INFO") for n in live):
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not become ok")

    def _topology(self) -> list[list[str]]:
        """`CLUSTER NODES` lines (split) as a live node sees them."""
        for node in self.nodes:
            if node.proc is not None:
                reply = node.command("CLUSTER", "NODES")
                if reply:
                    body = reply.split(b"\r\n", 1)[1] if reply.startswith(b"$") else reply
                    return [line.split() for line in body.decode().splitlines() if line.count(" ") > 6]
        raise RuntimeError("no live node")

    def master_of(self, key: str) -> ClusterNode:
        """The live master serving `key`'s slot."""
        return self.master_of_slot(key_slot(key.encode()))

    def replica_of(self, master: ClusterNode) -> ClusterNode:
        master_id = master.node_id()
        for fields in self._topology():
            if fields[3] == master_id and "fail" not in fields[2]:
                port = int(fields[1].split("@")[0].rpartition(":")[2])
                return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no replica of {master.address}")

    def command(self, key: str, *args: str) -> bytes:
        """A command for `key`, on the master that serves it."""
        return self.master_of(key).command(*args)

    def move_slot(self, slot: int, dest: ClusterNode) -> int:
        """Migrate `slot` to the master `dest` as `redis-cli --cluster reshard` does
        (IMPORTING/MIGRATING, MIGRATE its keys in small batches, then SETSLOT NODE on
        every master); returns the number of keys moved."""
        src = self.master_of_slot(slot)
        assert src is not dest
        src_id, dest_id = src.node_id(), dest.node_id()
        assert dest.command("CLUSTER", "SETSLOT", str(slot), "IMPORTING", src_id).startswith(b"+OK")
        assert src.command("CLUSTER", "SETSLOT", str(slot), "MIGRATING", dest_id).startswith(b"+OK")
        moved = 0
        while True:
            keys = _bulk_strings(src.command("CLUSTER", "GETKEYSINSLOT", str(slot), "2"))
            if not keys:
                break
            reply = src.command("MIGRATE", "127.0.0.1", str(dest.port), "", "0", "5000", "KEYS", *keys)
            assert reply.startswith((b"+OK", b"+NOKEY")), reply
            moved += len(keys)
            time.sleep(0.05)  # slow enough for publishes to meet a half-moved slot
        for node in self.nodes:
            if node.proc is not None and node.role() == "master":
                node.command("CLUSTER", "SETSLOT", str(slot), "NODE", dest_id)
        return moved

    def master_of_slot(self, slot: int) -> ClusterNode:
        for fields in self._topology():
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    port = int(fields[1].split("@")[0].rpartition(":")[2])
                    return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no live master serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
