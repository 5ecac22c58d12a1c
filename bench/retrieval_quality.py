"""Retrieval quality of the local index on the pooled HotpotQA dev-500 corpus: recall@2/5/10/20 and the
share of questions with both gold paragraphs in the top k, for BM25, dense and hybrid (RRF).

The corpus goes through the product path (`update_index` on a JSONL file, `LocalSearcher.search`), one
chunk per document in the ranking (per_doc=1) so k counts distinct paragraphs. Reference measured
outside the project: plain bm25s + English stemmer over title+text gives recall@5 0.776, both@10 0.856.

    .venv/bin/python -m bench.retrieval_quality /work/shared/data/hotpotqa_dev_distractor_500
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from deepsearch.agent.config import IndexSettings
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

from bench.hotpot_pool import KS, load_pool, recall_table, write_corpus_jsonl

MODES = ("bm25", "dense", "hybrid")


def run(data_path: Path, modes: tuple[str, ...] = MODES) -> dict:
    passages, questions = load_pool(data_path)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus_jsonl(passages, Path(tmp) / "corpus.jsonl")
        report = update_index(Path(tmp) / "index", [corpus], IndexOptions(dense="dense" in modes or "hybrid" in modes))
        searcher = LocalSearcher(Path(tmp) / "index", IndexSettings(per_doc=1))
        figures: dict = {"passages": len(passages), "questions": len(questions), "index_seconds": report.seconds}
        for mode in modes:
            started = time.perf_counter()
            ranked = [[h.doc_id for h in searcher.search(q.question, max(KS), mode)] for q in questions]
            figures[mode] = recall_table(ranked, questions)
            figures[mode]["ms_per_query"] = round(1000 * (time.perf_counter() - started) / len(questions), 2)
        searcher.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="hotpotqa_dev_distractor_500 folder or its .jsonl")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: bm25,dense,hybrid")
    args = parser.parse_args()
    figures = run(args.data, tuple(args.modes.split(",")))
    print(f"{figures['passages']} passages, {figures['questions']} questions, indexed in {figures['index_seconds']} s")
    columns = [f"recall@{k}" for k in KS] + [f"both@{k}" for k in KS] + ["ms_per_query"]
    print(f"{'mode':<8}" + "".join(f"{c:>13}" for c in columns))
    for mode in args.modes.split(","):
        print(f"{mode:<8}" + "".join(f"{figures[mode][c]:>13}" for c in columns))
    if "bm25" in figures and "hybrid" in figures:
        wins = [k for k in KS if figures["hybrid"][f"recall@{k}"] > figures["bm25"][f"recall@{k}"]]
        print(f"hybrid beats bm25 on recall@k for k in {wins} (of {list(KS)})")


if __name__ == "__main__":
    main()
