"""A real Redis Cluster for tests: three masters on free loopback ports.

Each node is a ``RedisServer`` started with ``--cluster-enabled yes``; the
slots are assigned with ``redis-cli --cluster create``. A cluster node also
listens on its cluster bus port (port + 10000), so both must be free.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from tests.support.servers import RedisServer


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int, lo: int = 12_000, hi: int = 22_000) -> list[int]:
    """``count`` ports P where both P and its bus port P + 10000 are free.

    Both stay below Linux's ephemeral range (32768+), where a client socket
    could take a bus port between our check and the server's bind; the scan
    starts at a pseudo-random port so parallel runs rarely collide.
    """
    start = lo + (time.monotonic_ns() // 1000) % (hi - lo)
    out: list[int] = []
    for i in range(hi - lo):
        port = lo + (start - lo + i) % (hi - lo)
        if port in out or port + 10_000 in out or port - 10_000 in out:
            continue
        if _port_free(port) and _port_free(port + 10_000):
            out.append(port)
            if len(out) == count:
                return out
    raise RuntimeError(f"no {count} free port pairs (P, P+10000) in {lo}..{hi}")


class RedisClusterServer:
    """Three (or more) cluster-enabled redis-servers with all 16384 slots assigned."""

    def __init__(self, workdir: Path, masters: int = 3, replicas: int = 0) -> None:
        self.workdir = Path(workdir)
        self.masters = masters
        self.replicas = replicas
        self.nodes: list[RedisServer] = []
        cli = shutil.which("redis-cli")
        if not cli:
            raise RuntimeError("redis-cli is not on PATH (apt-get install redis-tools)")
        self.cli = cli

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming one startup node (the client finds the rest)."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def start(self, timeout: float = 30.0) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        for i, port in enumerate(cluster_ports(self.masters * (1 + self.replicas))):
            workdir = self.workdir / f"node{i}"
            workdir.mkdir(parents=True, exist_ok=True)
            node = RedisServer(
                workdir,
                port=port,
                extra=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(workdir / "nodes.conf"),
                    "--cluster-node-timeout",
                    "5000",
                ],
            )
            self.nodes.append(node)
            node.start()
        create = subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout}{create.stderr}")
        self.wait_ok(timeout)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Poll until every node reports ``cluster_state:ok`` and knows every other node."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            client = node.client()
            try:
                while True:
                    info = client.cluster("info")
                    if info.get("cluster_state") == "ok" and int(
                        info.get("cluster_known_nodes", 0)
                    ) == len(self.nodes) and self._roles_settled(client):
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"cluster not ok on node {node.port}: {info}")
                    time.sleep(0.05)
            finally:
                client.close()

    def _roles_settled(self, client: redis.Redis) -> bool:
        """Every primary has its replicas attached (replicas: the cluster says so)."""
        if not self.replicas:
            return True
        primaries = [n for n in client.cluster("nodes").values() if "master" in n["flags"]]
        replicas = [n for n in client.cluster("nodes").values() if "slave" in n["flags"]]
        return len(primaries) == self.masters and len(replicas) == self.masters * self.replicas

    def role(self, node: RedisServer) -> str:
        return node.client().info("replication")["role"]

    def primaries(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc and n.proc.poll() is None and self.role(n) == "master"]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def running(self) -> list[int]:
        """Ports of nodes whose process is still alive (empty after ``stop``)."""
        return [n.port for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def client(self, **kwargs) -> RedisCluster:
        return RedisCluster(host="127.0.0.1", port=self.ports[0], **kwargs)

    def node_clients(self) -> list[redis.Redis]:
        """One plain client per node, for per-node checks (``dbsize``, ``script flush``)."""
        return [n.client() for n in self.nodes]

    def flushall(self) -> None:
        for client in self.node_clients():
            try:
                client.flushall()
            finally:
                client.close()
