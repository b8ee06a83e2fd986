"""The Dockerfile and compose.yaml, checked without a Docker engine.

Building and running them needs an engine (tests/integration/test_container.py
does, where one is reachable); what can be known from the files alone is
checked here on every run: what they copy and mount exists, every variable
they set is a real setting, images are pinned, the image runs unprivileged.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tradeagg.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KNOWN_ENV = {name for names, _d, _doc in Settings.docs() for name in names.split(" or ")} | {
    "LOG_LEVEL",  # read by tradeagg.logs
    "PYTHONUNBUFFERED",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_dockerfile_copies_what_exists_and_runs_unprivileged():
    text = (ROOT / "Dockerfile").read_text()
    for line in re.findall(r"(?m)^COPY (?!--from)(.+)$", text):
        *sources, _dest = line.split()
        for src in sources:
            assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    assert re.search(r"(?m)^USER (?!root)\w+", text), "the image must not run as root"
    assert re.search(r'(?m)^ENTRYPOINT \["tradeagg"\]', text)
    assert re.search(r'HEALTHCHECK[^\n]*\n?[^\n]*"tradeagg", "health"', text)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ("tradeagg", "lua", "setup.cfg", "setup.py", "README.md"):
        assert needed not in ignored, f".dockerignore drops {needed}, which the build copies"


def test_compose_sets_only_real_settings_and_mounts_existing_files():
    doc = compose()
    services = doc["services"]
    assert {
        "redis", "kafka", "bridge", "worker", "serve", "produce", "statsd-graphite", "grafana"
    } <= set(services)
    for name in ("bridge", "worker", "serve", "produce"):
        env = services[name]["environment"]
        unknown = set(env) - KNOWN_ENV
        assert not unknown, f"{name} sets variables tradeagg does not read: {unknown}"
        assert services[name]["build"] == "."
    for name, service in services.items():
        if "image" in service and "build" not in service:
            assert re.search(r":[\w.-]+$", service["image"]), f"{name}: pin the image tag"
            assert not service["image"].endswith(":latest"), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert "--appendonly" in services["redis"]["command"]
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


def test_grafana_is_provisioned_with_the_shipped_dashboard():
    mounts = compose()["services"]["grafana"]["volumes"]
    assert any(m.startswith("./ops/grafana-dashboard.json:") for m in mounts)
    sources = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/graphite.yaml").read_text()
    )["datasources"]
    assert [s["type"] for s in sources] == ["graphite"]
    assert sources[0]["url"].startswith("http://statsd-graphite")
    board = (ROOT / "ops/grafana-dashboard.json").read_text()
    assert "__inputs" not in board  # a file-provisioned dashboard cannot ask for inputs
    assert '"type": "datasource"' in board
