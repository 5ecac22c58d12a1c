"""Where to cut a sorted relevance curve: at its knee, within min/max counts and above an absolute floor.

The knee is the break that best splits the curve into a high and a low group (least squares with two
levels, i.e. 1-D natural breaks). LLM grades are coarse and plateau-shaped, so a two-level fit finds
the step between "relevant" and "not" more reliably than a chord-distance elbow on a handful of points.
A break never falls between equal scores, and only counts as a knee when the two groups' means differ
by at least `min_gap`; otherwise the curve is flat and everything above the floor is kept (up to max).
"""

from __future__ import annotations

from itertools import accumulate

from .models import KneeCut


def _best_break(scores: list[float]) -> tuple[int, float] | None:
    """(k, gap): keep scores[:k], where the two-level fit is best; None when no break is possible."""
    n = len(scores)
    sums = [0.0, *accumulate(scores)]
    squares = [0.0, *accumulate(s * s for s in scores)]

    def sse(i: int, j: int) -> float:
        total = sums[j] - sums[i]
        return squares[j] - squares[i] - total * total / (j - i)

    best: tuple[float, int] | None = None
    for k in range(1, n):
        if scores[k - 1] == scores[k]:
            continue  # never separate ties
        cost = sse(0, k) + sse(k, n)
        if best is None or cost < best[0] - 1e-12:
            best = (cost, k)
    if best is None:
        return None
    k = best[1]
    gap = sums[k] / k - (sums[n] - sums[k]) / (n - k)
    return k, gap


def knee_cut(scores: list[float], *, min_keep: int, max_keep: int, floor: float, min_gap: float) -> KneeCut:
    """Cut `scores` (sorted high to low, 0-1). min_keep wins over the floor so a non-empty pool never yields
    an empty selection; max_keep wins over the knee."""
    if any(a < b for a, b in zip(scores, scores[1:], strict=False)):
        raise ValueError("scores must be sorted from high to low")
    n = len(scores)

    def cut(keep: int, method: str) -> KneeCut:
        return KneeCut(
            keep=keep,
            method=method,  # type: ignore[arg-type]
            curve=list(scores),
            min_keep=min_keep,
            max_keep=max_keep,
            floor=floor,
            cutoff=scores[keep - 1] if keep else None,
        )

    if n == 0:
        return cut(0, "empty")
    above_floor = sum(s >= floor for s in scores)
    found = _best_break(scores)
    if found is not None and found[1] >= min_gap:
        keep, method = found[0], "knee"
        if keep > max_keep:
            keep, method = max_keep, "max_keep"
    else:
        keep, method = min(n, max_keep), "flat"
    if keep > above_floor:
        keep, method = above_floor, "floor"
    lower = min(min_keep, n)
    if keep < lower:
        keep, method = lower, "min_keep"
    return cut(keep, method)
