"""Retrieval quality of the local index on the pooled HotpotQA dev-500 corpus: recall@2/5/10/20 and the
share of questions with both gold paragraphs in the top k, for BM25, dense and hybrid (RRF).

The corpus goes through the product path (`update_index` on a JSONL file, `LocalSearcher.search`), one
chunk per document in the ranking (per_doc=1) so k counts distinct paragraphs. Reference measured
outside the project: plain bm25s + English stemmer over title+text gives recall@5 0.776, both@10 0.856.

The corpus is always every paragraph of all 500 questions; `--ids FILE` scores only those question ids,
`--exclude-ids FILE` all the others. Tune on dev_ids.txt only; the other 400 are held out:

    .venv/bin/python -m bench.retrieval_quality DATA --ids DATA/dev_ids.txt --grid          # tune fusion
    .venv/bin/python -m bench.retrieval_quality DATA --exclude-ids DATA/dev_ids.txt         # held-out figures
"""

from __future__ import annotations

import argparse
import functools
import itertools
import tempfile
import time
from pathlib import Path

from deepsearch.agent.config import IndexSettings
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

from bench.hotpot_pool import KS, Question, load_pool, recall_table, write_corpus_jsonl

MODES = ("bm25", "dense", "hybrid")
GRID_RRF_K = (5, 10, 20, 30, 60)
GRID_DENSE_WEIGHT = (0.2, 0.3, 0.5, 0.7, 1.0)


def _read_ids(path: Path) -> set[str]:
    return set(path.read_text(encoding="utf-8").split())


def select(questions: list[Question], ids: Path | None = None, exclude_ids: Path | None = None) -> list[Question]:
    """The questions to score: those listed in `ids` (if given), minus those listed in `exclude_ids`."""
    keep = _read_ids(ids) if ids else None
    drop = _read_ids(exclude_ids) if exclude_ids else set()
    known = {q.id for q in questions}
    for path, listed in ((ids, keep or set()), (exclude_ids, drop)):
        if listed - known:
            raise SystemExit(f"{path}: {len(listed - known)} ids are not questions of the data set")
    chosen = [q for q in questions if (keep is None or q.id in keep) and q.id not in drop]
    if not chosen:
        raise SystemExit("no questions left to score")
    return chosen


def _ranked(searcher: LocalSearcher, questions: list[Question], mode: str) -> list[list[str]]:
    return [[h.doc_id for h in searcher.search(q.question, max(KS), mode)] for q in questions]


def run(
    data_path: Path,
    modes: tuple[str, ...] = MODES,
    ids: Path | None = None,
    exclude_ids: Path | None = None,
    grid: bool = False,
) -> dict:
    passages, questions = load_pool(data_path)
    questions = select(questions, ids, exclude_ids)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus_jsonl(passages, Path(tmp) / "corpus.jsonl")
        report = update_index(Path(tmp) / "index", [corpus], IndexOptions(dense="dense" in modes or "hybrid" in modes))
        searcher = LocalSearcher(Path(tmp) / "index", IndexSettings(per_doc=1))
        figures: dict = {"passages": len(passages), "questions": len(questions), "index_seconds": report.seconds}
        for mode in modes:
            started = time.perf_counter()
            figures[mode] = recall_table(_ranked(searcher, questions, mode), questions)
            figures[mode]["ms_per_query"] = round(1000 * (time.perf_counter() - started) / len(questions), 2)
        if grid:
            # Each retriever's ranking depends only on (query, depth): compute it once, re-fuse per setting.
            for name in ("_bm25_ranking", "_dense_ranking"):
                setattr(searcher, name, functools.lru_cache(maxsize=None)(getattr(searcher, name)))
            figures["grid"] = {}
            for rrf_k, weight in itertools.product(GRID_RRF_K, GRID_DENSE_WEIGHT):
                searcher.settings = IndexSettings(per_doc=1, rrf_k=rrf_k, dense_weight=weight)
                figures["grid"][(rrf_k, weight)] = recall_table(_ranked(searcher, questions, "hybrid"), questions)
        searcher.close()
    return figures


def grid_score(row: dict[str, float]) -> float:
    """What the grid picks by: the mean of recall@5 and both@10."""
    return (row["recall@5"] + row["both@10"]) / 2


def grid_best(grid: dict[tuple[int, float], dict[str, float]]) -> tuple[int, float]:
    """The best (rrf_k, dense_weight) by grid_score; ties go to the higher mean of all recall/both figures."""
    return max(grid, key=lambda s: (grid_score(grid[s]), sum(grid[s].values()) / len(grid[s])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="hotpotqa_dev_distractor_500 folder or its .jsonl")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: bm25,dense,hybrid")
    parser.add_argument("--ids", type=Path, help="score only these question ids (one per line), e.g. dev_ids.txt")
    parser.add_argument("--exclude-ids", type=Path, help="score all questions but these ids")
    parser.add_argument("--grid", action="store_true", help="also sweep hybrid rrf_k x dense_weight")
    args = parser.parse_args()
    modes = tuple(args.modes.split(","))
    if args.grid and "hybrid" not in modes:
        modes += ("hybrid",)
    figures = run(args.data, modes, args.ids, args.exclude_ids, args.grid)
    print(f"{figures['passages']} passages, {figures['questions']} questions, indexed in {figures['index_seconds']} s")
    columns = [f"recall@{k}" for k in KS] + [f"both@{k}" for k in KS]
    print(f"{'mode':<8}" + "".join(f"{c:>13}" for c in columns + ["ms_per_query"]))
    for mode in modes:
        print(f"{mode:<8}" + "".join(f"{figures[mode][c]:>13}" for c in columns + ["ms_per_query"]))
    if "bm25" in figures and "hybrid" in figures:
        wins = [k for k in KS if figures["hybrid"][f"recall@{k}"] > figures["bm25"][f"recall@{k}"]]
        print(f"hybrid beats bm25 on recall@k for k in {wins} (of {list(KS)})")
    if args.grid:
        print(
            f"\nhybrid grid (score = mean of recall@5 and both@10)\n{'rrf_k':>5} {'w':>4}"
            + "".join(f"{c:>10}" for c in columns + ["score"])
        )
        for (rrf_k, weight), row in figures["grid"].items():
            print(f"{rrf_k:>5} {weight:>4}" + "".join(f"{row[c]:>10}" for c in columns) + f"{grid_score(row):>10.4f}")
        best = grid_best(figures["grid"])
        print(f"best: rrf_k={best[0]} dense_weight={best[1]} (ties: higher mean of all eight figures)")


if __name__ == "__main__":
    main()
