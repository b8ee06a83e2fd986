"""A real metrics pipeline for tests: Etsy StatsD → carbon-cache → graphite-web.

All three run as our own processes on free loopback ports, with their data in
a temporary folder, configured from the files we ship (``ops/statsd-config.js``,
``ops/graphite/storage-*.conf``), so a test reads back through graphite-web's
render API exactly what a deployment's dashboard would query.

Prerequisites (``.ci/install-ops.sh`` installs them): Debian's
``graphite-carbon`` and ``graphite-web`` (they run on the system's
``/usr/bin/python3``), Node.js, and the npm package ``statsd`` in
``.ops-tools/node_modules``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.servers import free_port, stop_process, wait_port

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"
STATSD_JS = REPO / ".ops-tools" / "node_modules" / "statsd" / "stats.js"
SYSTEM_PYTHON = "/usr/bin/python3"
CARBON_CACHE = "/usr/bin/carbon-cache"


def missing() -> list[str]:
    """What this machine lacks to run the stack (empty when it can)."""
    lacking = []
    if not Path(CARBON_CACHE).exists():
        lacking.append("graphite-carbon (apt)")
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import graphite.settings, django"],
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "graphite.settings"},
    ) if Path(SYSTEM_PYTHON).exists() else None
    if probe is None or probe.returncode != 0:
        lacking.append("graphite-web (apt)")
    if not shutil.which("node"):
        lacking.append("nodejs")
    if not STATSD_JS.exists():
        lacking.append("statsd (npm, into .ops-tools)")
    return lacking


def _system_env(**extra: str) -> dict[str, str]:
    """An environment for Debian's Python: none of our interpreter's paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PATH"] = "/usr/bin:/bin"
    env.update(extra)
    return env


class GraphiteStack:
    """StatsD (UDP ``statsd_port``) feeding carbon-cache feeding graphite-web (``web_port``)."""

    def __init__(self, workdir: Path, flush_ms: int = 1000) -> None:
        self.dir = Path(workdir)
        self.flush_ms = flush_ms
        self.statsd_port = free_port()
        self.line_port = free_port()
        self.pickle_port = free_port()
        self.query_port = free_port()
        self.web_port = free_port()
        self.procs: list[subprocess.Popen] = []
        self.logs: list = []

    # --- configuration, from the files we ship -------------------------------------
    def _write_carbon(self) -> dict[str, str]:
        conf = self.dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        for name in ("storage-schemas.conf", "storage-aggregation.conf"):
            shutil.copy(OPS / "graphite" / name, conf / name)
        storage = self.dir / "storage"
        (storage / "whisper").mkdir(parents=True, exist_ok=True)
        (storage / "log").mkdir(exist_ok=True)
        (conf / "carbon.conf").write_text(
            "[cache]\n"
            f"STORAGE_DIR = {storage}/\n"
            f"LOCAL_DATA_DIR = {storage}/whisper/\n"
            f"WHITELISTS_DIR = {storage}/lists/\n"
            f"CONF_DIR = {conf}/\n"
            f"LOG_DIR = {storage}/log/\n"
            f"PID_DIR = {storage}/\n"
            "ENABLE_LOGROTATION = False\n"
            "USER =\n"
            "MAX_CACHE_SIZE = inf\n"
            "MAX_UPDATES_PER_SECOND = inf\n"
            "MAX_CREATES_PER_MINUTE = inf\n"
            "LINE_RECEIVER_INTERFACE = 127.0.0.1\n"
            f"LINE_RECEIVER_PORT = {self.line_port}\n"
            "ENABLE_UDP_LISTENER = False\n"
            "PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n"
            f"PICKLE_RECEIVER_PORT = {self.pickle_port}\n"
            "CACHE_QUERY_INTERFACE = 127.0.0.1\n"
            f"CACHE_QUERY_PORT = {self.query_port}\n"
            "LOG_LISTENER_CONNECTIONS = False\n"
            "LOG_UPDATES = False\n"
            "LOG_CREATES = False\n"
        )
        return {
            "GRAPHITE_ROOT": str(self.dir),
            "GRAPHITE_CONF_DIR": str(conf),
            "GRAPHITE_STORAGE_DIR": str(storage),
        }

    def _write_web(self) -> dict[str, str]:
        site = self.dir / "web"
        site.mkdir(exist_ok=True)
        storage = self.dir / "storage"
        (site / "tradeagg_graphite_settings.py").write_text(
            "SECRET_KEY = 'tests-only'\n"
            "ALLOWED_HOSTS = ['*']\n"
            "TIME_ZONE = 'UTC'\n"
            "CONF_DIR = '/etc/graphite'\n"
            f"STORAGE_DIR = {str(storage)!r}\n"
            f"WHISPER_DIR = {str(storage / 'whisper')!r}\n"
            f"LOG_DIR = {str(storage / 'log')!r}\n"
            f"INDEX_FILE = {str(storage / 'index')!r}\n"
            f"CARBONLINK_HOSTS = ['127.0.0.1:{self.query_port}:a']\n"
            "DEFAULT_XFILES_FACTOR = 0\n"
            "FUNCTION_PLUGINS = []\n"
            "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
            f"'NAME': {str(site / 'graphite.db')!r}}}}}\n"
        )
        return {
            "PYTHONPATH": str(site),
            "DJANGO_SETTINGS_MODULE": "graphite.settings",
            "GRAPHITE_SETTINGS_MODULE": "tradeagg_graphite_settings",
        }

    def _write_statsd(self) -> Path:
        """ops/statsd-config.js with this stack's ports and a short flush interval."""
        text = (OPS / "statsd-config.js").read_text()
        for key, value in (
            ("port", self.statsd_port),
            ("address", '"127.0.0.1"'),
            ("graphitePort", self.line_port),
            ("graphiteHost", '"127.0.0.1"'),
            ("flushInterval", self.flush_ms),
        ):
            text, n = re.subn(rf"(?m)^(\s*){key}:\s*[^,\n]+,", rf"\g<1>{key}: {value},", text)
            if n != 1:
                raise AssertionError(f"ops/statsd-config.js: no single '{key}:' line to set")
        text = text.replace('"./backends/graphite"', json.dumps(str(STATSD_JS.parent / "backends" / "graphite")))
        path = self.dir / "statsd-config.js"
        path.write_text(text)
        return path

    # --- processes ---------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None):
        log = open(self.dir / f"{name}.log", "ab")  # closed in stop()
        self.logs.append(log)
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        lacking = missing()
        if lacking:
            raise RuntimeError("metrics stack needs: " + ", ".join(lacking))
        carbon_env = _system_env(**self._write_carbon())
        carbon = self._spawn(
            "carbon",
            [
                SYSTEM_PYTHON,
                CARBON_CACHE,
                f"--config={self.dir / 'conf' / 'carbon.conf'}",
                f"--pidfile={self.dir / 'carbon.pid'}",
                "--nodaemon",
                "start",
            ],
            carbon_env,
        )
        wait_port(self.line_port, 30.0, carbon)
        web_env = _system_env(**self._write_web())
        migrate = subprocess.run(
            [SYSTEM_PYTHON, "-m", "django", "migrate", "--run-syncdb", "-v", "0"],
            env=web_env,
            capture_output=True,
            timeout=120,
        )
        if migrate.returncode != 0:
            raise RuntimeError("graphite-web migrate failed: " + migrate.stderr.decode()[-2000:])
        web = self._spawn(
            "graphite-web",
            [
                SYSTEM_PYTHON,
                "-m",
                "django",
                "runserver",
                "--noreload",
                f"127.0.0.1:{self.web_port}",
            ],
            web_env,
        )
        wait_port(self.web_port, 60.0, web)
        statsd = self._spawn(
            "statsd", ["node", str(STATSD_JS), str(self._write_statsd())], dict(os.environ)
        )
        self._wait_statsd(statsd)

    def _wait_statsd(self, proc: subprocess.Popen, timeout: float = 30.0) -> None:
        """StatsD listens on UDP: wait for its log line saying the server is up."""
        log = self.dir / "statsd.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("statsd exited: " + log.read_text()[-2000:])
            if "server is up" in log.read_text():
                return
            time.sleep(0.1)
        raise TimeoutError("statsd did not come up: " + log.read_text()[-2000:])

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        for log in self.logs:
            log.close()

    # --- reading back --------------------------------------------------------------------
    def _get(self, path: str, **params: str):
        url = f"http://127.0.0.1:{self.web_port}{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())

    def render(self, target: str, since: str = "-10min") -> list[dict]:
        """graphite-web's ``/render`` as JSON: ``[{"target": …, "datapoints": [[v, t], …]}]``."""
        return self._get("/render", target=target, format="json", **{"from": since})

    def find(self, query: str) -> list[str]:
        """Metric paths (leaves) matching a Graphite wildcard query."""
        nodes = self._get("/metrics/find", query=query, format="completer")
        return [n["path"] for n in nodes.get("metrics", []) if n.get("is_leaf") in ("1", 1, True)]

    @staticmethod
    def points(series: list[dict]) -> int:
        """Non-null points over every series of a render result."""
        return sum(1 for s in series for value, _ in s["datapoints"] if value is not None)
