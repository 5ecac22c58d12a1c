"""Indexing throughput (chunks/s) and query latency (p50/p95) of the local index, on real HTML and at scale.

Corpora:
- the HTML manual of Debian's python3.11-doc package (about 500 pages). Set-up, once, as root:
      apt-get update && apt-get install -y python3.11-doc      # pages land in /usr/share/doc/python3.11/html
- a synthetic corpus of N chunk-sized passages (default 100,000) from a fixed-seed vocabulary, for scaling.

Each corpus is indexed from scratch, then re-indexed unchanged (the incremental no-op), then queried.

    .venv/bin/python -m bench.index_speed [--html /usr/share/doc/python3.11/html] [--synthetic 100000] [--no-dense]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from deepsearch.agent.config import IndexSettings
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

from bench.stats import print_table

DEFAULT_HTML = Path("/usr/share/doc/python3.11/html")
HTML_QUERIES = [
    "asyncio wait_for timeout cancel task",
    "how to read a file line by line",
    "dataclass field default factory",
    "regular expression named group",
    "subprocess capture output text",
    "decimal rounding modes",
    "pathlib glob recursive",
    "json dump indent sort keys",
    "context manager exit exception",
    "thread pool executor map",
]


def synthetic_corpus(path: Path, n: int, seed: int = 0) -> list[str]:
    """n passages of 60-120 words drawn from a Zipf-like vocabulary of 20k made-up words; returns queries."""
    rng = random.Random(seed)
    vocab = [f"w{i:05d}" for i in range(20_000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    with path.open("w") as f:
        for i in range(n):
            words = rng.choices(vocab, weights, k=rng.randint(60, 120))
            f.write(json.dumps({"id": f"s{i}", "title": f"passage {i}", "text": " ".join(words) + "."}) + "\n")
    return [" ".join(rng.choices(vocab[100:5000], k=4)) for _ in range(50)]


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] if len(samples) > 1 else samples[0]


def measure(paths: list[Path], queries: list[str], dense: bool, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        first = update_index(index_dir, paths, IndexOptions(dense=dense))
        again = update_index(index_dir, paths, IndexOptions(dense=dense))
        searcher = LocalSearcher(index_dir, IndexSettings())
        searcher.search(queries[0], 10, mode)  # warm-up: loads the embedder and the dense matrix
        latencies = []
        for _ in range(3):
            for q in queries:
                started = time.perf_counter()
                searcher.search(q, 10, mode)
                latencies.append(1000 * (time.perf_counter() - started))
        searcher.close()
    c = first.counts
    return {
        "files": c.sources,
        "documents": c.documents,
        "chunks": c.chunks,
        "tokens": c.tokens,
        "skipped": len(first.skipped),
        "index_seconds": first.seconds,
        "throughput_chunks_per_s": round(c.chunks / first.seconds, 1),
        "reindex_unchanged_seconds": again.seconds,
        "mode": mode,
        "query_p50_ms": round(_percentile(latencies, 50), 2),
        "query_p95_ms": round(_percentile(latencies, 95), 2),
    }


def run(html: Path | None = DEFAULT_HTML, synthetic: int = 100_000, dense: bool = True) -> dict:
    mode = "hybrid" if dense else "bm25"
    figures: dict = {}
    if html is not None and html.is_dir():
        figures["python_docs_html"] = measure([html], HTML_QUERIES, dense, mode)
    if synthetic:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "synthetic.jsonl"
            queries = synthetic_corpus(corpus, synthetic)
            figures[f"synthetic_{synthetic}"] = measure([corpus], queries, dense, mode)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=DEFAULT_HTML, help="folder of HTML pages (python3.11-doc)")
    parser.add_argument("--synthetic", type=int, default=100_000, help="synthetic passages; 0 to skip")
    parser.add_argument("--no-dense", action="store_true", help="BM25 only")
    args = parser.parse_args()
    if not args.html.is_dir():
        print(f"{args.html} not found: apt-get install -y python3.11-doc (skipping the HTML corpus)")
    for name, f in run(args.html, args.synthetic, not args.no_dense).items():
        print_table(name, [(k, str(v)) for k, v in f.items()])


if __name__ == "__main__":
    main()
