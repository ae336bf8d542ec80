"""``top_k_among`` (the ranking rule over a scored subset) gives exactly :func:`top_k` of the dense vector in
which every other item scores ``-inf``: ties, the conservative target rule, exclusions, NaN and ``-inf``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_models.ranking import NEVER, top_k, top_k_among


@settings(max_examples=300, deadline=None)
@given(
    n_items=st.integers(1, 40),
    data=st.data(),
)
def test_top_k_among_equals_dense_top_k(n_items: int, data: st.DataObject) -> None:
    subset = sorted(data.draw(st.sets(st.integers(0, n_items - 1), min_size=1)))
    values = data.draw(
        st.lists(st.sampled_from([0.0, 0.5, 1.0, -1.0, np.nan, NEVER]), min_size=len(subset), max_size=len(subset))
    )
    k = data.draw(st.integers(1, n_items + 2))
    exclude = data.draw(st.lists(st.integers(0, n_items - 1), max_size=4))
    target = data.draw(st.one_of(st.none(), st.integers(0, n_items - 1)))
    dense = np.full(n_items, NEVER)
    dense[subset] = values
    want_items, want_scores = top_k(dense, k, exclude=exclude, target=target)
    items, scores = top_k_among(np.asarray(subset), np.asarray(values), k, exclude=exclude, target=target)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(scores, want_scores)
