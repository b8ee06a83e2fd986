"""The hot-path JSON writers give exactly the text of the declared (marshmallow) documents.

Views are drawn from the read model's own field types (``WindowView``'s annotations), so a
metric added to the read model is drawn, written and compared without editing this test.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeagg.contract.documents import rank_json, token_json
from tradeagg.engine.rank import RANK_BY, Ranked, Ranking
from tradeagg.engine.read import WINDOW_METRICS, TokenView, WindowView
from tradeagg.engine.viewjson import row_json, view_json

ADDRESS = st.from_regex(r"\A(0x[0-9a-f]{40}|[1-9A-HJ-NP-Za-km-z]{32,44})\Z")
LABELS = ("1m", "5m", "15m", "1h", "24h")

DECIMALS = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("999999999999.999999999"), places=9),
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.sampled_from([Decimal("0E-9"), Decimal("1E+3"), Decimal("1.500000000"), Decimal(0)]),
)
FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _values(annotation: str) -> st.SearchStrategy:
    """A strategy for one WindowView field from its annotation (``int``, ``Decimal | None``…)."""
    kinds = [k.strip() for k in annotation.split("|")]
    options: list[st.SearchStrategy] = []
    for kind in kinds:
        if kind == "int":
            options.append(st.integers(min_value=0, max_value=10**12))
        elif kind == "Decimal":
            options.append(DECIMALS)
        elif kind == "float":
            options.append(FLOATS)
        elif kind == "bool":
            options.append(st.booleans())
        elif kind == "str":
            options.append(st.text(max_size=8))
        elif kind == "None":
            options.append(st.none())
        else:
            raise AssertionError(f"no strategy for WindowView annotation {annotation!r}")
    return st.one_of(options)


WINDOWS = st.fixed_dictionaries(
    {f.name: _values(str(f.type)) for f in dataclasses.fields(WindowView)}
).map(lambda kw: WindowView(**kw))


@st.composite
def views(draw) -> TokenView:
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=5, unique=True))
    windows = {label: draw(WINDOWS) for label in labels}
    at = draw(st.integers(min_value=0, max_value=2**53))
    return TokenView(draw(ADDRESS), at, draw(st.none() | st.just(at)), windows)


def test_every_metric_the_read_model_parses_is_a_window_view_field():
    # the metrics, then the window's coverage (complete_from; partial derives from it),
    # then its kind and start (CONTRACT §2c: written "kind", "from")
    assert tuple(f.name for f in dataclasses.fields(WindowView)) == (
        *WINDOW_METRICS,
        "complete_from",
        "kind",
        "start",
    )


@settings(max_examples=150)
@given(views())
def test_the_token_document_is_the_marshmallow_dump(view):
    assert view_json(view) == token_json(view)


@settings(max_examples=150)
@given(views(), st.sampled_from(RANK_BY), st.integers(min_value=1, max_value=10**6), st.data())
def test_a_ranking_row_is_the_marshmallow_dump(view, by, position, data):
    window = data.draw(st.sampled_from(sorted(view.windows)))
    row = Ranked(position, view.token, view)
    ranking = Ranking(view.at, window, by, 1, [row], [view])
    assert row_json(row, ranking) == rank_json(row, ranking)
