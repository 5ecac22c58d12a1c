"""Knee detection on synthetic score curves, within min/max counts and the absolute floor."""

import pytest
from deepsearch.tools.rerank import knee_cut


def cut(scores, min_keep=1, max_keep=8, floor=0.2, min_gap=0.15):
    return knee_cut(scores, min_keep=min_keep, max_keep=max_keep, floor=floor, min_gap=min_gap)


def test_clear_knee_keeps_the_high_group():
    c = cut([0.95, 0.9, 0.85, 0.3, 0.25, 0.2, 0.1])
    assert (c.keep, c.method, c.cutoff) == (3, "knee", 0.85)
    assert c.curve == [0.95, 0.9, 0.85, 0.3, 0.25, 0.2, 0.1]


def test_single_outlier_is_kept_alone():
    c = cut([1.0, 0.3, 0.3, 0.29, 0.28, 0.3 - 0.03])
    assert (c.keep, c.method) == (1, "knee")


def test_flat_curve_keeps_everything_above_the_floor_up_to_max():
    assert (cut([0.7] * 12).keep, cut([0.7] * 12).method) == (8, "flat")
    assert (cut([0.7] * 5).keep, cut([0.7] * 5).method) == (5, "flat")
    # A gentle slope with no step is flat too.
    assert cut([0.8, 0.78, 0.76, 0.74, 0.72]).method == "flat"


def test_ties_are_never_split_by_the_knee():
    c = cut([0.9, 0.9, 0.9, 0.9, 0.2, 0.2, 0.1])
    assert (c.keep, c.method) == (4, "knee")
    # the best two-level split of 0.9,0.6,0.6,0.6,0.1 would separate equal scores at no point
    c = cut([0.9, 0.6, 0.6, 0.6, 0.1, 0.1])
    assert c.keep in (1, 4) and c.curve[c.keep - 1] != c.curve[c.keep]


def test_floor_wins_over_the_knee_and_min_keep_wins_over_the_floor():
    c = cut([0.9, 0.85, 0.15, 0.1, 0.0], floor=0.88)
    assert (c.keep, c.method) == (1, "floor")
    c = cut([0.1, 0.1, 0.05], floor=0.5)
    assert (c.keep, c.method) == (1, "min_keep")
    assert cut([0.1, 0.1, 0.05], floor=0.5, min_keep=0).keep == 0


def test_max_keep_caps_a_wide_high_group():
    c = cut([0.9] * 6 + [0.1] * 6, max_keep=4)
    assert (c.keep, c.method) == (4, "max_keep")


def test_empty_and_unsorted():
    assert (cut([]).keep, cut([]).method, cut([]).cutoff) == (0, "empty", None)
    with pytest.raises(ValueError, match="sorted"):
        cut([0.1, 0.9])
