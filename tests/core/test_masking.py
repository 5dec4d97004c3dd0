"""Masked-GRPO advantages against hand-computed values and a per-group loop."""

from __future__ import annotations

import math
import statistics
import uuid
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minio3_ext.core import masked_group_advantages

EPS = 1e-6
SQRT3 = math.sqrt(3)

# group a: live scores [1, 0, 0] + one masked 1; group b: one lone live row;
# group c: masking leaves one live row of three; group d: everything masked
SCORES = [1.0, 0.0, 0.0, 1.0, 0.7, 1.0, 0.0, 0.0, 1.0, 1.0]
INDEX = ["a", "a", "a", "a", "b", "c", "c", "c", "d", "d"]
LIVE = [True, True, True, False, True, True, False, False, False, False]


def test_masked_rows_left_out_of_the_statistics():
    # a: mean 1/3, unbiased std sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = 1/sqrt(3)
    got = masked_group_advantages(SCORES, INDEX, LIVE)
    expected = [(2 / 3) / (1 / SQRT3 + EPS), (-1 / 3) / (1 / SQRT3 + EPS), (-1 / 3) / (1 / SQRT3 + EPS), 0.0,
                0.7 / (1 + EPS),  # lone row: mean 0, std 1 (verl)
                0.0, 0.0, 0.0,  # c: one live row left has no baseline
                0.0, 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_masked_rows_inside_the_statistics_like_the_released_code():
    # a: mean 1/2 over all four rows, std sqrt(4 * 0.25 / 3) = 1/sqrt(3)
    # c: mean 1/3 over all three rows, std 1/sqrt(3): its live row keeps (2/3) * sqrt(3)
    got = masked_group_advantages(SCORES, INDEX, LIVE, include_masked_in_stats=True)
    expected = [0.5 / (1 / SQRT3 + EPS), -0.5 / (1 / SQRT3 + EPS), -0.5 / (1 / SQRT3 + EPS), 0.0,
                0.7 / (1 + EPS),
                (2 / 3) / (1 / SQRT3 + EPS), 0.0, 0.0,
                0.0, 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_without_std_normalisation():
    got = masked_group_advantages(SCORES, INDEX, LIVE, norm_by_std=False)
    np.testing.assert_allclose(got, [2 / 3, -1 / 3, -1 / 3, 0, 0.7, 0, 0, 0, 0, 0], atol=1e-12)
    got = masked_group_advantages(SCORES, INDEX, LIVE, norm_by_std=False, include_masked_in_stats=True)
    np.testing.assert_allclose(got, [0.5, -0.5, -0.5, 0, 0.7, 2 / 3, 0, 0, 0, 0], atol=1e-12)


def test_uniform_group_gets_zero_and_epsilon_is_used():
    np.testing.assert_array_equal(masked_group_advantages([1, 1, 1], [0, 0, 0], [True] * 3), [0, 0, 0])
    got = masked_group_advantages([1.0, 0.0], ["g", "g"], [True, True], epsilon=1.0)
    std = math.sqrt(0.5)
    np.testing.assert_allclose(got, [0.5 / (std + 1), -0.5 / (std + 1)])


def test_shapes_labels_and_empty_input():
    uids = [str(uuid.UUID(int=i % 2)) for i in range(6)]
    flat = masked_group_advantages(np.arange(6.0), uids, np.ones(6, bool))
    column = masked_group_advantages(np.arange(6.0).reshape(-1, 1), np.array(uids, dtype=object), [[True]] * 6)
    np.testing.assert_array_equal(flat, column)
    assert flat.shape == (6,)
    assert masked_group_advantages([], [], []).shape == (0,)


def verl_grpo_loop(scores, index, *, norm_by_std=True, epsilon=EPS):
    """verl's ``compute_grpo_outcome_advantage`` written as the plain per-group loop."""
    groups = defaultdict(list)
    for s, g in zip(scores, index):
        groups[g].append(s)
    mean, std = {}, {}
    for g, vals in groups.items():
        if len(vals) == 1:
            mean[g], std[g] = 0.0, 1.0
        else:
            mean[g], std[g] = statistics.fmean(vals), statistics.stdev(vals)
    return [(s - mean[g]) / (std[g] + epsilon) if norm_by_std else s - mean[g] for s, g in zip(scores, index)]


def masked_loop(scores, index, live, *, include_masked_in_stats, norm_by_std=True, epsilon=EPS):
    """The documented masked semantics, one group at a time."""
    out = [0.0] * len(scores)
    for g in set(index):
        rows = [i for i, x in enumerate(index) if x == g]
        live_rows = [i for i in rows if live[i]]
        stat_rows = rows if include_masked_in_stats else live_rows
        cut_below_two = not include_masked_in_stats and len(live_rows) < 2 and len(live_rows) < len(rows)
        if not live_rows or cut_below_two:
            continue
        adv = verl_grpo_loop([scores[i] for i in stat_rows], [g] * len(stat_rows), norm_by_std=norm_by_std, epsilon=epsilon)
        by_row = dict(zip(stat_rows, adv))
        for i in live_rows:
            out[i] = by_row[i]
    return out


groups = st.lists(st.tuples(st.sampled_from("abcde"), st.sampled_from([0.0, 1.0, 0.5, -2.0, 3.25]), st.booleans()),
                  min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(rows=groups, norm=st.booleans())
def test_equals_verl_grpo_when_nothing_is_masked(rows, norm):
    index = [g for g, _, _ in rows]
    scores = [s for _, s, _ in rows]
    for include in (False, True):
        got = masked_group_advantages(scores, index, [True] * len(rows), include_masked_in_stats=include, norm_by_std=norm)
        np.testing.assert_allclose(got, verl_grpo_loop(scores, index, norm_by_std=norm), rtol=1e-9, atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(rows=groups, norm=st.booleans(), include=st.booleans())
def test_matches_a_per_group_loop_with_masking(rows, norm, include):
    index = [g for g, _, _ in rows]
    scores = [s for _, s, _ in rows]
    live = [m for _, _, m in rows]
    got = masked_group_advantages(scores, index, live, include_masked_in_stats=include, norm_by_std=norm)
    want = masked_loop(scores, index, live, include_masked_in_stats=include, norm_by_std=norm)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert all(a == 0.0 for a, alive in zip(got, live) if not alive)


@pytest.mark.parametrize("include", [False, True])
def test_masked_rows_never_move_the_live_advantages_when_excluded(include):
    """Changing a masked row's score changes nothing when masked rows are excluded."""
    base = masked_group_advantages([1, 0, 0, 0], list("gggg"), [True, True, True, False], include_masked_in_stats=include)
    moved = masked_group_advantages([1, 0, 0, 1], list("gggg"), [True, True, True, False], include_masked_in_stats=include)
    assert np.array_equal(base, moved) != include


def test_rows_must_line_up():
    with pytest.raises(ValueError, match="one entry per row, got 3, 2 and 3"):
        masked_group_advantages([1, 0, 1], ["a", "a"], [True] * 3)
