"""The local index at scale: build time, peak RSS, disk, query latency, one-file updates and kill -9 resume.

    .venv/bin/python -m bench.index_scale 1000000 --work /tmp/scale [--no-dense] [--kill-test] [--hotpot DATA]
    .venv/bin/python -m bench.index_scale 100000 --work /tmp/scale --corpus my_passages.jsonl   # a real corpus

The synthetic corpus is one JSONL file (a Wikipedia-style dump: id, title, text) of N passages of
~100 words (normal, sd 25, 20..250), as wiki-18's passages are, with word ranks drawn Zipf-Mandelbrot
(exponent 1.07, shift 2.7) over a 400k-word vocabulary (see _vocabulary: ~1.3 tokens a word, so a passage
is one chunk, as a wiki-18 passage is); sentences of 8-30 words. Queries take 4-7 content words of a
random passage plus 2 stopwords, the shape of a short question. The corpus file's mtime is set an hour
back (a dump is old when it is indexed), so later runs skip it by size and mtime.

Phases, each with peak RSS above the process's RSS before it (VmHWM, reset through /proc/self/clear_refs):
build from scratch; re-run unchanged; queries (p50/p95 per mode); add, modify and delete one small file;
`--kill-test`: `deepsearch index` in a subprocess killed with SIGKILL mid-ingestion, a search while it is
dead, then a re-run that must resume (documents and lexical/dense entries each exactly N);
`--hotpot DATA`: recall on the pooled HotpotQA set, 400 held-out questions (bench/retrieval_quality.py).
`--compare-fts5`: the same queries against SQLite FTS5 (bm25() ranking) over the same tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from deepsearch.agent.config import IndexSettings
from deepsearch.tools import index_store as store
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

from bench.stats import print_table


def _vocabulary(size: int, seed: int) -> list[str]:
    """Stopwords first (the most frequent words), then the tokenizer's single-token English-looking words in merge
    order (roughly frequency order), then compounds of two of them for the rare tail (2-3 tokens each, as rare
    names and terms are): about 1.3 tokens a word, as in English prose."""
    import re

    from bm25s.stopwords import STOPWORDS_EN
    from deepsearch.agent.tokens import encoding

    enc, pattern = encoding(), re.compile(r"^ [a-z]{3,}$")
    words, seen = list(STOPWORDS_EN), set(STOPWORDS_EN)
    for i in range(enc.n_vocab):
        try:
            token = enc.decode_single_token_bytes(i).decode()
        except (KeyError, UnicodeDecodeError):
            continue
        if pattern.match(token) and token[1:] not in seen:
            seen.add(token[1:])
            words.append(token[1:])
    common, rng = words[len(STOPWORDS_EN) :], random.Random(seed)
    while len(words) < size:
        w = rng.choice(common) + rng.choice(common)
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def write_corpus(path: Path, n: int, seed: int = 0, vocab_size: int = 400_000) -> list[str]:
    """Write n passages to `path` (JSONL); returns 200 queries drawn from them."""
    from bm25s.stopwords import STOPWORDS_EN

    rng = np.random.default_rng(seed)
    vocab = np.array(_vocabulary(vocab_size, seed), dtype=object)
    ranks = np.arange(len(vocab), dtype=np.float64)
    cdf = np.cumsum(1.0 / (ranks + 2.7) ** 1.07)
    cdf /= cdf[-1]
    stop = len(STOPWORDS_EN)
    queries: list[str] = []
    query_at = set(rng.choice(n, size=min(200, n), replace=False).tolist())
    with path.open("w", encoding="utf-8") as f:
        for start in range(0, n, 10_000):
            count = min(10_000, n - start)
            lengths = np.clip(rng.normal(100, 25, count).astype(int), 20, 250).tolist()
            words_all = vocab[np.searchsorted(cdf, rng.random(sum(lengths)))].tolist()
            sentence_lengths = iter(rng.integers(8, 31, size=sum(lengths) // 8 + count).tolist())
            titles = vocab[rng.integers(stop + 2000, len(vocab), size=(count, 2))].tolist()
            pos = 0
            lines = []
            for i, length in enumerate(lengths):
                words = words_all[pos : pos + length]
                pos += length
                sentences, at = [], 0
                while at < length:
                    step = next(sentence_lengths)
                    sentence = " ".join(words[at : at + step])
                    sentences.append(sentence[:1].upper() + sentence[1:])
                    at += step
                text = ". ".join(sentences) + "."
                lines.append(json.dumps({"id": f"p{start + i}", "title": " ".join(titles[i]).title(), "text": text}))
                if start + i in query_at:
                    content = [w for w in words if w not in STOPWORDS_EN]
                    picked = rng.choice(content, size=min(len(content), int(rng.integers(4, 8))), replace=False)
                    queries.append(" ".join([*rng.choice(vocab[:stop], size=2), *picked]))
            f.write("\n".join(lines) + "\n")
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    return queries


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


class _Rss:
    """Peak RSS of this process during a phase, and how far above its RSS before the phase that peak was."""

    def __enter__(self) -> _Rss:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.before, self.started = _status("VmRSS"), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
        self.peak = _status("VmHWM")
        self.extra = self.peak - self.before


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100)
    return round(q[49], 1), round(q[94], 1)


def _latency(searcher: LocalSearcher, queries: list[str], mode: str) -> tuple[float, float]:
    searcher.search(queries[0], 10, mode)  # warm-up: the embedder, the first page faults
    times = []
    for q in queries:
        started = time.perf_counter()
        searcher.search(q, 10, mode)
        times.append(1000 * (time.perf_counter() - started))
    return _percentiles(times)


def run(n: int, work: Path, dense: bool, corpus: Path | None, kill_test: bool, hotpot: Path | None, fts5: bool):
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {"passages": f"{n:,}", "dense": str(dense)}
    folder = work / f"corpus-{n}"
    if corpus is None:
        folder.mkdir(exist_ok=True)
        corpus = folder / "passages.jsonl"
        queries_file = folder / "queries.json"
        if not queries_file.exists():
            started = time.perf_counter()
            queries_file.write_text(json.dumps(write_corpus(corpus, n)))
            figures["corpus written"] = f"{time.perf_counter() - started:.0f} s, {_mib(corpus.stat().st_size)}"
        queries = json.loads(queries_file.read_text())
    else:
        folder = corpus.parent
        queries = _queries_from(corpus)
    index_dir = work / f"index-{n}-{'dense' if dense else 'lexical'}"
    store.remove_index(index_dir)
    options = IndexOptions(dense=dense)

    with _Rss() as built:
        report = update_index(index_dir, [folder], options)
    chunks = report.counts.chunks
    figures |= {
        "index time": f"{built.seconds:.0f} s",
        "passages/s": f"{report.counts.documents / built.seconds:,.0f}",
        "chunks": f"{chunks:,}",
        "peak RSS (build)": _mib(built.peak),
        "disk size": _mib(store.size_on_disk(index_dir)),
        "syncs of search/": str(report.syncs),
    }
    with _Rss() as again:
        update_index(index_dir, [folder], options)
    figures["re-run, nothing changed"] = f"{again.seconds:.2f} s, +{_mib(again.extra)}"

    with _Rss() as opened:
        searcher = LocalSearcher(index_dir, IndexSettings())
    figures["searcher open"] = f"{opened.seconds * 1000:.0f} ms, +{_mib(opened.extra)}"
    for mode in ("bm25", "dense", "hybrid") if dense else ("bm25",):
        with _Rss() as q:
            p50, p95 = _latency(searcher, queries, mode)
        figures[f"query {mode} p50 / p95"] = f"{p50} / {p95} ms (+{_mib(q.extra)})"
    gen = searcher._current()
    figures["lexical segments"] = str(gen.lexical.num_segments)
    if gen.dense is not None:
        figures["dense segments"] = f"{len(gen.dense.parts)} ({[len(p[0]) for p in gen.dense.parts]} rows)"
        if gen.dense.approximate:
            figures |= _approximate_vs_exact(gen.dense, queries)

    extra = folder / "added-note.txt"
    steps = [
        ("add one file", lambda: extra.write_text("Zanzibar quokkas juggle marmalade at dawn. " * 20)),
        ("modify it", lambda: extra.write_text("Quokkas of Zanzibar prefer apricot jam. " * 25)),
        ("delete it", lambda: extra.unlink()),
    ]
    for name, change in steps:
        change()
        with _Rss() as step:
            r = update_index(index_dir, [folder], options)
        hits = [h.doc_id for h in searcher.search("Zanzibar quokkas", 3, "bm25")]
        figures[name] = (
            f"{step.seconds:.2f} s, +{_mib(step.extra)} RSS ({r.files_added} added, {r.files_updated} updated, "
            f"{r.files_removed} removed); found: {extra.name in ' '.join(hits)}"
        )
    searcher.close()
    if kill_test:
        figures |= _kill_test(folder, work / f"index-{n}-killed", dense, report.counts.documents, queries[0])
    if fts5:
        figures |= _compare_fts5(index_dir, queries)
    if hotpot is not None:
        figures |= _recall(hotpot, dense)
    return figures


def _approximate_vs_exact(dense, queries: list[str]) -> dict[str, str]:
    from deepsearch.tools.dense import load_embedder

    kept, exact_ms = [], []
    for q in queries:
        v = load_embedder().embed([q])[0]
        started = time.perf_counter()
        exact = {r for r, _ in dense.search(v, 50, exact=True)[:10]}
        exact_ms.append(1000 * (time.perf_counter() - started))
        kept.append(len(exact & {r for r, _ in dense.search(v, 50)[:10]}) / 10)
    p50, p95 = _percentiles(exact_ms)
    return {
        "dense approximate: exact top 10 kept": f"{statistics.mean(kept):.3f}",
        "dense exact (for comparison) p50 / p95": f"{p50} / {p95} ms",
    }


def _queries_from(corpus: Path) -> list[str]:
    """A real corpus: questions are its titles plus three words of its text (200 of the first 20k records)."""
    rng = random.Random(0)
    rows = []
    with corpus.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 20_000:
                break
            rows.append(json.loads(line))
    picked = rng.sample(rows, min(200, len(rows)))
    return [f"{r.get('title', '')} {' '.join(rng.sample(str(r['text']).split(), 3))}" for r in picked]


def _kill_test(folder: Path, index_dir: Path, dense: bool, expected: int, query: str) -> dict[str, str]:
    """Kill `deepsearch index` mid-ingestion, search while it is dead, re-run: every passage exactly once."""
    store.remove_index(index_dir)
    cmd = [sys.executable, "-m", "deepsearch.agent", "index", str(folder), "--index", str(index_dir)]
    cmd += ["--commit-chunks", str(max(2_000, min(50_000, expected // 20)))] + ([] if dense else ["--no-dense"])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = expected * 2 // 5
    while proc.poll() is None:
        time.sleep(0.5)
        meta = store.read_search_meta(index_dir / store.SEARCH_DIR)
        if meta is not None and meta.chunks >= target:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(index_dir / store.STORE) as conn:
        stored = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    searcher = LocalSearcher(index_dir, IndexSettings())
    searchable, answered = searcher._current().chunks, len(searcher.search(query, 5, "bm25"))
    searcher.close()
    started = time.perf_counter()
    report = update_index(index_dir, [folder], IndexOptions(dense=dense))
    resumed_s = time.perf_counter() - started
    searcher = LocalSearcher(index_dir, IndexSettings())
    gen = searcher._current()
    with sqlite3.connect(index_dir / store.STORE) as conn:
        docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        distinct = conn.execute("SELECT count(DISTINCT doc_id) FROM chunks").fetchone()[0]
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    lexical = gen.lexical.num_docs
    dense_rows = gen.dense.size if gen.dense is not None else chunks
    searcher.close()
    once = docs == expected == distinct and lexical == chunks == dense_rows
    return {
        "kill -9 at": f"{stored:,} of {expected:,} passages stored; while dead: {searchable:,} chunks searchable, "
        f"a query got {answered} hits",
        "resume": f"{resumed_s:.0f} s, {report.chunks_added:,} chunks added by the re-run",
        "after resume": f"{docs:,} documents, {chunks:,} chunks, lexical {lexical:,}, dense {dense_rows:,}: "
        f"{'every passage exactly once' if once else 'MISMATCH'}",
    }


def _compare_fts5(index_dir: Path, queries: list[str]) -> dict[str, str]:
    """SQLite FTS5 over the same analysed tokens (so only the engine differs): build time and query latency."""
    from deepsearch.tools.lexical import analyzer

    manifest = store.read_manifest(index_dir)
    words = analyzer(manifest.stemmer)
    path = index_dir.parent / "fts5-compare.sqlite"
    path.unlink(missing_ok=True)
    src = sqlite3.connect(index_dir / store.STORE)
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61')")
    started = time.perf_counter()
    rows = src.execute("SELECT c.row, d.title || '. ' || c.text FROM chunks c JOIN documents d USING (doc_id)")
    while batch := rows.fetchmany(5000):
        db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", [(r, " ".join(words.analyze(x))) for r, x in batch])
        db.commit()
    built = time.perf_counter() - started
    times = []
    for q in queries:
        terms = [t for t in words.analyze(q) if t.isalnum()]
        if not terms:
            continue
        started = time.perf_counter()
        db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank LIMIT 50", (" OR ".join(terms),)).fetchall()
        times.append(1000 * (time.perf_counter() - started))
    p50, p95 = _percentiles(times)
    size = path.stat().st_size
    db.close()
    path.unlink()
    return {"FTS5 (same tokens) build": f"{built:.0f} s, {_mib(size)}", "FTS5 query p50 / p95": f"{p50} / {p95} ms"}


def _recall(hotpot: Path, dense: bool) -> dict[str, str]:
    from bench.retrieval_quality import run as quality

    modes = ("bm25", "hybrid") if dense else ("bm25",)
    f = quality(hotpot, modes, exclude_ids=hotpot / "dev_ids.txt")
    return {
        f"HotpotQA {mode} recall@5 / @10 ({f['questions']} held out)": f"{f[mode]['recall@5']} / {f[mode]['recall@10']}"
        for mode in modes
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="passages in the synthetic corpus")
    parser.add_argument("--work", type=Path, required=True, help="folder for the corpus and the indexes")
    parser.add_argument("--corpus", type=Path, help="a real JSONL corpus (id/title/text) instead of the synthetic one")
    parser.add_argument("--no-dense", action="store_true", help="lexical only")
    parser.add_argument("--kill-test", action="store_true", help="kill -9 an ingestion of the corpus, then resume")
    parser.add_argument("--compare-fts5", action="store_true", help="also time SQLite FTS5 on the same tokens")
    parser.add_argument("--hotpot", type=Path, help="hotpotqa_dev_distractor_500 folder: held-out recall")
    args = parser.parse_args()
    figures = run(args.n, args.work, not args.no_dense, args.corpus, args.kill_test, args.hotpot, args.compare_fts5)
    print_table(f"index_scale {args.n:,} passages", list(figures.items()))


if __name__ == "__main__":
    main()
