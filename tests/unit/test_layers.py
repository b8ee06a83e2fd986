"""The package's layers, read from the source with ``ast`` (no import runs).

contract (the data contract) depends on nothing of ours but errors; store on
contract; engine on store and contract; observe on store and contract;
runtime on engine, store, contract and observe. The base modules (errors,
settings, clock, logs, the package root) are open to every layer but
contract, and depend on no layer. Production code never imports commands/ or
devtools/ (``cli`` wires commands by name through importlib, by design).
Tooling may use the command line's presentation modules (render, humanize),
and the pipeline benchmark not even those.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tradeagg"
BASE = {"errors", "settings", "clock", "logs", ""}
LAYERS = ("contract", "store", "engine", "observe", "runtime", "commands", "devtools")
ALLOWED = {
    "contract": {"contract", "errors"},
    "store": {"store", "contract"} | BASE,
    "engine": {"engine", "store", "contract"} | BASE,
    "observe": {"observe", "store", "contract"} | BASE,
    "runtime": {"runtime", "engine", "store", "contract", "observe"} | BASE,
    "base": BASE,
}
PRESENTATION = {"tradeagg.commands.render", "tradeagg.commands.humanize"}


def unit_of(module: str) -> str:
    """``tradeagg.engine.read`` -> ``engine``; ``tradeagg.settings`` -> ``settings``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(path: Path) -> str:
    """A module's layer: its folder; ``cli`` for the entry points; ``base`` for the rest at the
    top. A folder without a rule yet (a new surface such as an HTTP API) is ``other``: production
    code all the same, so it may not import commands/ or devtools/ either."""
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) > 1:
        return rel.parts[0] if rel.parts[0] in LAYERS else "other"
    return {"cli.py": "cli", "__main__.py": "cli"}.get(rel.name, "base")


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, relative ones (``from ..engine import read``) resolved."""
    if node.level == 0:
        return node.module or ""
    here = ["tradeagg", *path.relative_to(PACKAGE).with_suffix("").parts]
    base = here[: len(here) - node.level]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path) -> set[str]:
    """Every ``tradeagg…`` module imported anywhere in ``path`` (lazy and relative included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            if not _is_package(module):  # ``from tradeagg.commands import render``: render
                found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m == "tradeagg" or m.startswith("tradeagg.")}


def _is_package(module: str) -> bool:
    return PACKAGE.parent.joinpath(*module.split(".")).is_dir()


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def violations(layer: str, found: set[str]) -> list[str]:
    """The imports in ``found`` that a module of ``layer`` may not make."""
    out = []
    for module in found:
        unit = unit_of(module)
        if unit not in LAYERS and unit not in BASE:
            unit = ""  # ``from tradeagg import logs`` names the module, seen on its own
        if layer in ALLOWED and unit not in ALLOWED[layer]:
            out.append(module)
        if layer in ("cli", "other") and unit in ("commands", "devtools"):
            out.append(module)
        if layer == "devtools" and unit == "commands" and module not in PRESENTATION:
            out.append(module)
    return sorted(set(out))


def test_the_walk_sees_the_package():
    layers = {layer_of(p) for p in modules()}
    assert set(LAYERS) | {"base", "cli"} <= layers
    assert "tradeagg.engine.read" in imports(PACKAGE / "engine" / "rank.py")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layer_rules(path: Path):
    layer = layer_of(path)
    assert violations(layer, imports(path)) == [], f"{path.relative_to(PACKAGE)} ({layer}) imports"


def test_the_pipeline_benchmark_imports_no_command():
    found = imports(PACKAGE / "devtools" / "bench_pipeline.py")
    assert not [m for m in found if unit_of(m) == "commands"]


def test_a_breach_is_seen(tmp_path: Path):
    """The check itself can fail: a store module importing the engine or tooling is reported."""
    fake = tmp_path / "probe.py"
    fake.write_text(
        "from tradeagg.engine.read import Reader\n"
        "def lazy():\n    import tradeagg.devtools.bench\n"
        "from tradeagg.commands import humanize, show\n"
    )
    found = imports(fake)
    assert violations("store", found) == [
        "tradeagg.commands.humanize",
        "tradeagg.commands.show",
        "tradeagg.devtools.bench",
        "tradeagg.engine.read",
        "tradeagg.engine.read.Reader",
    ]
    assert violations("devtools", found) == ["tradeagg.commands.show"]
    assert violations("contract", {"tradeagg.settings"}) == ["tradeagg.settings"]
    assert violations("other", {"tradeagg.engine.read", "tradeagg.devtools.bench"}) == [
        "tradeagg.devtools.bench"
    ]


def test_relative_imports_are_resolved():
    probe = PACKAGE / "engine" / "read.py"  # the path only places the (fake) source
    tree = ast.parse("from ..commands import show\nfrom . import rank\nfrom .args import x\n")
    names = {_absolute(probe, n) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names == {"tradeagg.commands", "tradeagg.engine", "tradeagg.engine.args"}
