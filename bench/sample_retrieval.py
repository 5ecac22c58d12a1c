"""Retrieval on the bundled sample corpus (40 HotpotQA paragraphs, 4 questions): recall@2/5 of the gold
paragraphs for BM25 and hybrid. Tiny and always available; `bench.retrieval_quality DATA` gives the real
figures on the 500-question pool.

    .venv/bin/python -m bench.sample_retrieval
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from deepsearch.agent.config import IndexSettings
from deepsearch.tools.local_index import update_index
from deepsearch.tools.local_search import LocalSearcher

from bench.stats import print_table

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sample_corpus"


def run(ks: tuple[int, ...] = (2, 5)) -> dict:
    questions = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    figures: dict = {"questions": len(questions)}
    with tempfile.TemporaryDirectory() as d:
        update_index(Path(d) / "index", [SAMPLE / "hotpot_sample.jsonl"])
        for mode in ("bm25", "hybrid"):
            searcher = LocalSearcher(Path(d) / "index", IndexSettings(mode=mode, per_doc=1))
            for k in ks:
                found = [
                    len({h.title for h in searcher.search(q["question"], k=k)} & set(q["supporting_titles"])) / 2
                    for q in questions
                ]
                figures[f"{mode}_recall@{k}"] = sum(found) / len(found)
            searcher.close()
    return figures


def main() -> None:
    figures = run()
    print_table(f"Sample-corpus retrieval ({figures.pop('questions')} questions)",
                [(name, f"{value:.3f}") for name, value in figures.items()])  # fmt: skip


if __name__ == "__main__":
    main()
