"""Dense vectors of a local index: append-only segments on disk that searchers memory-map, never copy.

    search/dense/<name>.vec.npy    float32 (n, dim), each value rounded through float16 as the embedder's
                                   output always was stored (so scores equal the earlier float16 matrix's)
    search/dense/<name>.rows.npy   int64 (n,), the chunk rows, ascending
    search/dense/<name>.bits.npy   uint8 (n, dim / 8), the sign of each value: a segment of APPROX_MIN_ROWS or more
                                   is searched by Hamming distance to the query's signs first, and its best
                                   `candidates` rows are then scored exactly (binary quantisation with rescoring)
    search/dense/dead-<id>.npy     int64, rows deleted from the store that a segment still holds

Why float32 on disk: numpy has no fast float16 (or int8) matrix product here: converting 1M x 256 float16
rows per query costs ~0.7 s on 2 cores and int8 ~0.14 s, while a float32 memory map is one BLAS gemv per
block, ~60 ms at 1M rows (docs/local-index.md). The map is the page cache's, shared by every process
that searches the index, so no process holds a private copy.

Exact search reads every vector: ~60 ms per 1M rows on a quiet machine, 150-250 ms with the two cores
shared, so segments of APPROX_MIN_ROWS rows or more are searched approximately (32 bytes a row scanned,
then the 1/64 nearest by sign rescored exactly); smaller ones, and so every index under that size, exactly.
bench/index_scale.py reports how much of the exact top 10 the approximate search keeps.

Each update writes one segment of the new rows and a new dead-rows file; segments of a similar size
(within a factor of 4) are merged once there are 4 of them, and a segment more than a quarter dead is
rewritten without those rows, so a stream of one-file edits leaves a few segments, not thousands.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .index_store import DenseSegment

BLOCK_ROWS = 32_768
MERGE_FANOUT = 4
MAX_DEAD_SHARE = 0.25
APPROX_MIN_ROWS = 250_000
RESCORE_MIN, RESCORE_PER_HIT, RESCORE_SHARE = 2_000, 40, 1 / 64  # rows rescored: the most of the three


def _vec(folder: Path, name: str) -> Path:
    return folder / f"{name}.vec.npy"


def _rows(folder: Path, name: str) -> Path:
    return folder / f"{name}.rows.npy"


def _bits(folder: Path, name: str) -> Path:
    return folder / f"{name}.bits.npy"


def segment_files(name: str) -> list[str]:
    return [f"{name}.vec.npy", f"{name}.rows.npy", f"{name}.bits.npy"]


def write_segment(
    folder: Path, n: int, dim: int, batches: Iterable[tuple[np.ndarray, np.ndarray]]
) -> DenseSegment | None:
    """A segment of at most `n` rows from (rows, float32 vectors) batches; None when they hold no row."""
    if n == 0:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    name = f"seg-{uuid.uuid4().hex[:12]}"
    vectors = np.lib.format.open_memmap(_vec(folder, name), mode="w+", dtype=np.float32, shape=(n, dim))
    rows = np.lib.format.open_memmap(_rows(folder, name), mode="w+", dtype=np.int64, shape=(n,))
    bits = np.lib.format.open_memmap(_bits(folder, name), mode="w+", dtype=np.uint8, shape=(n, (dim + 7) // 8))
    filled = 0
    for batch_rows, batch_vectors in batches:
        k = len(batch_rows)
        rows[filled : filled + k] = batch_rows
        vectors[filled : filled + k] = batch_vectors.astype(np.float16).astype(np.float32)
        bits[filled : filled + k] = np.packbits(batch_vectors > 0, axis=1)
        filled += k
    for array in (vectors, rows, bits):
        array.flush()
    del vectors, rows, bits
    if filled != n:  # rows deleted between counting and reading cannot happen under the write lock; be exact anyway
        _truncate(folder, name, filled)
    return DenseSegment(name=name, rows=filled) if filled else None


def _truncate(folder: Path, name: str, n: int) -> None:
    for path in (_vec(folder, name), _rows(folder, name), _bits(folder, name)):
        data = np.load(path, mmap_mode="r")[:n].copy()
        np.save(path, data)


def load_dead(folder: Path, name: str | None) -> np.ndarray:
    return np.load(folder / f"{name}.npy") if name else np.zeros(0, dtype=np.int64)


def write_dead(folder: Path, dead: np.ndarray) -> str | None:
    if not len(dead):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    name = f"dead-{uuid.uuid4().hex[:12]}"
    np.save(folder / f"{name}.npy", np.unique(dead).astype(np.int64))
    return name


def compact(
    folder: Path, segments: list[DenseSegment], dead: np.ndarray, dim: int
) -> tuple[list[DenseSegment], np.ndarray]:
    """Merge segments of a similar size and rewrite mostly dead ones; returns the segments and the dead rows left."""
    live = {s.name: s.rows - int(np.isin(np.load(_rows(folder, s.name), mmap_mode="r"), dead).sum()) for s in segments}
    tiers: dict[int, list[DenseSegment]] = {}
    for s in segments:
        tiers.setdefault(int(math.log(max(live[s.name], 1), MERGE_FANOUT)), []).append(s)
    groups = [group for group in tiers.values() if len(group) >= MERGE_FANOUT]
    grouped = {s.name for group in groups for s in group}
    groups += [[s] for s in segments if s.name not in grouped and s.rows - live[s.name] > MAX_DEAD_SHARE * s.rows]
    if not groups:
        return segments, dead
    kept = [s for s in segments if not any(s in group for group in groups)]
    merged = []
    for group in groups:
        segment = write_segment(folder, sum(live[s.name] for s in group), dim, _live_batches(folder, group, dead))
        if segment is not None:
            merged.append(segment)
    rewritten = np.concatenate([np.load(_rows(folder, s.name)) for group in groups for s in group])
    return sorted(kept + merged, key=_first_row(folder)), dead[~np.isin(dead, rewritten)]


def _first_row(folder: Path) -> Callable[[DenseSegment], int]:
    return lambda s: int(np.load(_rows(folder, s.name), mmap_mode="r")[0])


def _live_batches(folder: Path, group: list[DenseSegment], dead: np.ndarray):
    for s in sorted(group, key=_first_row(folder)):
        rows = np.load(_rows(folder, s.name), mmap_mode="r")
        vectors = np.load(_vec(folder, s.name), mmap_mode="r")
        for i in range(0, len(rows), BLOCK_ROWS):
            block_rows = np.asarray(rows[i : i + BLOCK_ROWS])
            keep = ~np.isin(block_rows, dead)
            yield block_rows[keep], np.asarray(vectors[i : i + BLOCK_ROWS])[keep]


class DenseIndex:
    """The segments of one generation, memory-mapped; exact below APPROX_MIN_ROWS rows a segment."""

    def __init__(self, folder: Path, segments: list[DenseSegment], dead_name: str | None):
        dead = load_dead(folder, dead_name)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        for s in segments:
            rows = np.load(_rows(folder, s.name), mmap_mode="r")
            vectors = np.load(_vec(folder, s.name), mmap_mode="r")
            if len(rows) != s.rows or vectors.shape[0] != s.rows:
                raise ValueError(f"dense segment {s.name} holds {len(rows)} rows, meta.json says {s.rows}")
            bits = np.load(_bits(folder, s.name), mmap_mode="r") if s.rows >= APPROX_MIN_ROWS else None
            mask = np.isin(rows, dead) if len(dead) else None
            self.parts.append((rows, vectors, mask if mask is not None and mask.any() else None, bits))
        self.size = sum(len(rows) - (0 if mask is None else int(mask.sum())) for rows, _, mask, _ in self.parts)

    @property
    def approximate(self) -> bool:
        return any(bits is not None for *_, bits in self.parts)

    def search(self, query: np.ndarray, depth: int, exact: bool = False) -> list[tuple[int, float]]:
        """(row, cosine), best first, ties by row: the order a full matrix product ranks (`exact`, or every
        segment under APPROX_MIN_ROWS rows)."""
        found_rows, found_scores = [], []
        for rows, vectors, mask, bits in self.parts:
            if bits is not None and not exact:
                wanted = max(RESCORE_MIN, RESCORE_PER_HIT * depth, int(RESCORE_SHARE * len(rows)))
                positions = _candidates(bits, query, mask, wanted)
                if not len(positions):
                    continue
                scores = vectors[positions] @ query
                keep = min(depth, len(scores))
                top = np.argpartition(-scores, keep - 1)[:keep]
                found_rows.append(np.asarray(rows[positions[top]]))
                found_scores.append(scores[top])
                continue
            for i in range(0, len(rows), BLOCK_ROWS):
                scores = vectors[i : i + BLOCK_ROWS] @ query
                if mask is not None:
                    scores[mask[i : i + BLOCK_ROWS]] = -np.inf
                keep = min(depth, len(scores))
                top = np.argpartition(-scores, keep - 1)[:keep]
                found_rows.append(np.asarray(rows[i : i + BLOCK_ROWS])[top])
                found_scores.append(scores[top])
        if not found_rows:
            return []
        rows, scores = np.concatenate(found_rows), np.concatenate(found_scores)
        live = np.isfinite(scores)
        rows, scores = rows[live], scores[live]
        order = np.lexsort((rows, -scores))[:depth]
        return [(int(rows[i]), float(scores[i])) for i in order]


def _candidates(bits: np.ndarray, query: np.ndarray, dead: np.ndarray | None, n: int) -> np.ndarray:
    """Positions of the `n` live rows whose signs differ least from the query's, ascending."""
    code = np.packbits(query > 0)
    distance = np.empty(len(bits), dtype=np.uint16)
    for i in range(0, len(bits), 4 * BLOCK_ROWS):
        block = np.asarray(bits[i : i + 4 * BLOCK_ROWS])
        distance[i : i + len(block)] = np.bitwise_count(block ^ code).sum(axis=1, dtype=np.uint16)
    if dead is not None:
        distance[dead] = np.iinfo(np.uint16).max
    n = min(n, len(bits))
    positions = np.sort(np.argpartition(distance, n - 1)[:n])
    return positions if dead is None else positions[~dead[positions]]
