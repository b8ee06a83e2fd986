"""The mutant list of tests/mutants.py still fits the code (cheap: no mutant is run).

When a refactor moves or rewrites a line a mutant plants its bug in, this
fails and names the mutant: update its original text (and replacement) so the
mutation check keeps checking what it claims to.
"""

from __future__ import annotations

import re

import pytest

from tests import mutants
from tests.mutants import MUTANTS, REQUIRED_CATEGORIES, ROOT

CORE = re.compile(
    r"^(lua/(lib/)?[a-z_]+\.lua|tradeagg/engine/[a-z_]+\.py"
    r"|tradeagg/runtime/(consumer|bridge|intake|reclaim)\.py|tradeagg/store/stream\.py"
    r"|tradeagg/contract/(validation|entry|address)\.py)$"
)


@pytest.mark.parametrize("m", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_plants_one_real_change_in_the_core(m: mutants.Mutant) -> None:
    assert CORE.match(m.file), f"{m.name}: {m.file} is not part of the core"
    text = (ROOT / m.file).read_text()
    assert text.count(m.original) == 1, f"{m.name}: original text not found exactly once"
    assert m.replacement != m.original and "\n" not in m.original
    assert m.category in REQUIRED_CATEGORIES, f"{m.name}: unknown category {m.category!r}"


@pytest.mark.parametrize("m", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_names_tests_that_exist(m: mutants.Mutant) -> None:
    assert m.tests, f"{m.name}: no test to kill it"
    for node in m.tests:
        path, _, func = node.partition("::")
        source = ROOT / path
        assert source.is_file(), f"{m.name}: {path} does not exist"
        if func:
            func = func.split("[")[0]  # a parametrized test's id
            assert f"def {func}(" in source.read_text(), f"{m.name}: no {func} in {path}"


def test_the_list_is_long_unique_and_covers_every_category() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) >= 20
    assert len(set(names)) == len(names), "mutant names must be unique"
    assert set(REQUIRED_CATEGORIES) <= {m.category for m in MUTANTS}


def test_planting_a_mutant_changes_only_its_line(tmp_path) -> None:
    """apply() on a copy: the copy differs from the tree by exactly the replacement."""
    m = MUTANTS[0]
    (tmp_path / m.file).parent.mkdir(parents=True)
    (tmp_path / m.file).write_text((ROOT / m.file).read_text())
    assert mutants.apply(tmp_path, m) == ""
    mutated = (tmp_path / m.file).read_text()
    assert mutated == (ROOT / m.file).read_text().replace(m.original, m.replacement)
    assert "found 0 times" in mutants.apply(tmp_path, m)  # already planted: not found again


def test_only_selects_by_name_and_refuses_unknown_names() -> None:
    first, last = MUTANTS[0].name, MUTANTS[-1].name
    assert [m.name for m in mutants.select([last, first])] == [first, last]
    with pytest.raises(ValueError, match="no-such-mutant"):
        mutants.select([first, "no-such-mutant"])
