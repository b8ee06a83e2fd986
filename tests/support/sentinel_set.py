"""A replicated Redis watched by Sentinels, all our own processes on free ports.

One primary, one replica and three Sentinels (quorum 2; a primary is down
after 3 s without answering: 1 s made a loaded machine fail over and back).
The primary is reached through a small TCP proxy in the test process (``ReplicationProxy``), so a test can hold the
replication stream back (``hold_replica``): writes then reach the primary and
no replica, and die with it when it is killed, as in a network partition.
Tests kill the primary and wait for the Sentinels to promote the replica.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import redis

from tests.support.servers import RedisServer, free_port, stop_process, wait_port

SERVICE = "mymaster"


class ReplicationProxy:
    """The primary's address for everyone (clients, Sentinels, the replica).

    Bytes are forwarded both ways; ``hold()`` stops the primary -> replica
    direction of replication links only (connections that sent PSYNC or SYNC).
    Bytes held are never delivered: when the primary dies the link closes with
    them, so the replica never sees those writes. (Stopping the replica process
    would not do: the kernel would still buffer the stream for it.)
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held = threading.Event()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            self.sockets += [down, up]
            link = {"replication": False}
            threading.Thread(target=self._pump, args=(down, up, link, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, link, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, link: dict, to_replica: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not to_replica and (b"PSYNC" in data.upper() or b"SYNC" in data.upper()):
                    link["replication"] = True
                if to_replica and link["replication"] and self.held.is_set():
                    continue  # the replica never gets it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass

    def hold(self) -> None:
        self.held.set()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


class SentinelSet:
    def __init__(self, workdir: Path) -> None:
        self.dir = Path(workdir)
        for name in ("a", "b"):
            (self.dir / name).mkdir(parents=True, exist_ok=True)
        self.primary = RedisServer(self.dir / "a")
        self.proxy = ReplicationProxy(self.primary.port)
        self.replica = RedisServer(
            self.dir / "b", extra=["--replicaof", "127.0.0.1", str(self.proxy.port)]
        )
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        self.wait_link(self.replica)
        for i, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.proxy.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 3000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            log = open(self.dir / f"sentinel{i}.log", "ab")
            proc = subprocess.Popen(
                [self.primary.binary, str(conf), "--sentinel"], stdout=log, stderr=log
            )
            log.close()
            self.sentinels.append(proc)
            wait_port(port, 15.0, proc)
        self.wait(self.sentinels_agree, 30, "Sentinels to see the replica and each other")

    def sentinel(self, i: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.sentinel_ports[i], socket_timeout=5)

    def master_port(self) -> int:
        return int(self.sentinel().sentinel_get_master_addr_by_name(SERVICE)[1])

    def sentinels_agree(self) -> bool:
        for i in range(3):
            info = self.sentinel(i).sentinel_master(SERVICE)
            if int(info["num-slaves"]) < 1 or int(info["num-other-sentinels"]) < 2:
                return False
        return True

    @staticmethod
    def wait_link(server: RedisServer) -> None:
        client = server.client()
        SentinelSet.wait(
            lambda: client.info("replication").get("master_link_status") == "up",
            30,
            f"replica on {server.port} linked",
        )

    @staticmethod
    def wait(check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def hold_replica(self) -> None:
        """From now on the primary's writes reach no replica (until the primary dies)."""
        self.proxy.hold()

    def fail_over(self) -> None:
        """SIGKILL the primary; wait until the Sentinels name the replica primary."""
        self.primary.kill()
        self.wait(lambda: self.master_port() == self.replica.port, 60, "the replica's promotion")
        client = self.replica.client()
        self.wait(
            lambda: client.info("replication")["role"] == "master", 30, "the promoted role"
        )

    def rejoin_old_primary(self) -> None:
        """Restart the killed primary: the Sentinels make it a replica of the new one."""
        self.primary.start()
        self.wait(
            lambda: self.replica.client().info("replication").get("connected_slaves", 0) >= 1,
            180,  # Sentinel reconfigures it on its next check; slow under load
            "the old primary to rejoin as a replica",
        )

    def stop(self) -> None:
        for proc in self.sentinels:
            stop_process(proc)
        self.proxy.close()
        self.replica.stop()
        self.primary.stop()
