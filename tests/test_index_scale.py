"""Indexes that grow: updates touch only what changed, streamed corpora, kill -9 and resume, dense segments."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from deepsearch.agent.config import IndexSettings
from deepsearch.tools import dense_store
from deepsearch.tools import index_store as store
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

BM25_ONLY = IndexOptions(dense=False)
HOUR_AGO = time.time() - 3600


def _old(path: Path) -> Path:
    """As a file is on a real disk: last changed long before it is indexed (so size+mtime may be trusted)."""
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


def _records(n: int, start: int = 0) -> str:
    return "".join(
        json.dumps({"id": f"r{i}", "title": f"Record {i}", "text": f"Passage {i} tells of item{i} and the river."})
        + "\n"
        for i in range(start, start + n)
    )


def _stored(idx: Path) -> tuple[int, int, int]:
    with sqlite3.connect(idx / store.STORE) as conn:
        docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        distinct = conn.execute("SELECT count(DISTINCT chunk_id) FROM chunks").fetchone()[0]
    return docs, chunks, distinct


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in [("a.txt", "Aardvarks dig burrows."), ("b.txt", "Badgers live in setts."),
                       ("c.md", "# Cats\n\nCats sleep all day.")]:  # fmt: skip
        (docs / name).write_text(text)
        _old(docs / name)
    return docs


def test_adding_one_file_reads_only_that_file_and_adds_one_lexical_segment(folder: Path, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    update_index(idx, [folder], BM25_ONLY)
    before = LocalSearcher(idx)._current().lexical
    assert (before.num_docs, before.num_segments) == (3, 1)
    (folder / "d.txt").write_text("Dormice sleep through the winter.")
    read: list[str] = []
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real_read(self))
    report = update_index(idx, [folder], BM25_ONLY)
    assert [name for name in read if name.endswith((".txt", ".md"))] == ["d.txt"]  # a, b, c: not read, not hashed
    assert (report.files_unchanged, report.files_added, report.chunks_added) == (3, 1, 1)
    after = LocalSearcher(idx)._current().lexical
    assert (after.num_docs, after.num_segments) == (4, 2)  # the old segment as it was, one new one
    assert LocalSearcher(idx).search("dormice", k=1)[0].doc_id == "d.txt"


def test_a_file_touched_recently_is_hashed_not_trusted(folder: Path, tmp_path):
    """Same size, mtime within the timestamp granularity of the read: the content decides."""
    idx = tmp_path / "idx"
    (folder / "a.txt").write_text("Aardvarks eat termites.")  # recent mtime
    update_index(idx, [folder], BM25_ONLY)
    (folder / "a.txt").write_text("Aardvarks eat ants too.")  # same size
    os.utime(folder / "a.txt", ns=(os.stat(folder / "a.txt").st_atime_ns, _mtime_in_store(idx, "a.txt")))
    report = update_index(idx, [folder], BM25_ONLY)
    assert report.files_updated == 1
    assert LocalSearcher(idx).search("ants", k=1)[0].doc_id == "a.txt"


def _mtime_in_store(idx: Path, name: str) -> int:
    with sqlite3.connect(idx / store.STORE) as conn:
        return conn.execute("SELECT mtime_ns FROM sources WHERE path LIKE ?", (f"%/{name}",)).fetchone()[0]


def test_deleted_and_edited_documents_vanish_from_results(folder: Path, tmp_path):
    idx = tmp_path / "idx"
    update_index(idx, [folder], BM25_ONLY)
    searcher = LocalSearcher(idx)
    assert searcher.search("badgers", k=1)[0].doc_id == "b.txt"
    (folder / "b.txt").unlink()
    (folder / "a.txt").write_text("Anteaters have long tongues.")
    report = update_index(idx, [folder], BM25_ONLY)
    assert (report.files_removed, report.files_updated) == (1, 1)
    assert searcher.search("badgers") == [] and searcher.search("aardvarks burrows") == []
    assert searcher.search("anteaters", k=1)[0].doc_id == "a.txt"
    assert searcher._current().lexical.num_docs == 2 and _stored(idx)[1] == 2
    with sqlite3.connect(idx / store.STORE) as conn:  # both halves of search/ have forgotten the old rows
        assert conn.execute("SELECT count(*) FROM dropped").fetchone()[0] == 0


def test_a_large_jsonl_is_streamed_past_the_size_limit_and_one_record_edit_redoes_one(tmp_path, monkeypatch):
    corpus = tmp_path / "dump.jsonl"
    corpus.write_text(_records(3000))
    big_txt = tmp_path / "big.txt"
    big_txt.write_text("word " * 400)
    real_read = Path.read_bytes

    def never_whole(self: Path) -> bytes:
        assert self.suffix != ".jsonl", "a jsonl corpus must be streamed, not read whole"
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", never_whole)
    options = IndexOptions(dense=False, max_file_bytes=1000, batch_records=400, commit_chunks=1000)
    idx = tmp_path / "idx"
    report = update_index(idx, [corpus, big_txt], options)
    assert corpus.stat().st_size > 100 * options.max_file_bytes
    assert report.counts.documents == 3000 and report.skipped_by_reason() == {"oversized": 1}
    assert report.syncs >= 3  # searchable along the way, not only at the end
    searcher = LocalSearcher(idx, IndexSettings(per_doc=1))
    assert searcher.search("item2999", k=1)[0].doc_id == "r2999"

    lines = corpus.read_text().splitlines(keepends=True)
    lines[1234] = json.dumps({"id": "r1234", "title": "Record 1234", "text": "Now about zeppelins."}) + "\n"
    corpus.write_text("".join(lines[:2000] + lines[2001:]))  # one record edited, one removed
    report = update_index(idx, [corpus], options)
    assert (report.files_updated, report.chunks_added, report.documents_kept) == (1, 1, 2998)
    assert report.counts.documents == 2999
    assert searcher.search("zeppelins", k=1)[0].doc_id == "r1234"
    assert searcher.search("item2000") == [] and searcher.search("item1234") == []


def test_parquet_corpora_are_streamed_too(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"id": f"q{i}", "title": f"T{i}", "text": f"Parquet row {i} mentions gadget{i}."} for i in range(50)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet", row_group_size=16)
    report = update_index(tmp_path / "idx", [tmp_path / "rows.parquet"], IndexOptions(dense=False, batch_records=10))
    assert report.counts.documents == 50
    assert LocalSearcher(tmp_path / "idx").search("gadget37", k=1)[0].doc_id == "q37"


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from deepsearch.tools import search_sync
    from deepsearch.tools.local_index import IndexOptions, update_index

    corpus, idx, where, after = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    batches, syncs = [], []

    def die_after_batches(progress):
        batches.append(progress)
        if where == "batch" and len(batches) == after:
            os.kill(os.getpid(), signal.SIGKILL)

    real_replace = os.replace

    def die_before_meta(src, dst):  # tantivy has committed; meta.json still names the previous generation
        if str(dst).endswith("search/meta.json") and where == "sync":
            syncs.append(dst)
            if len(syncs) == after:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    search_sync.os.replace = die_before_meta
    update_index(idx, [corpus], IndexOptions(dense=False, batch_records=250, commit_chunks=1000),
                 tick=die_after_batches)
    """
)


@pytest.mark.parametrize("where, after", [("batch", 9), ("sync", 2)], ids=["mid-batches", "tantivy-committed"])
def test_kill_9_mid_ingestion_then_resume_indexes_every_passage_once(tmp_path, cli_env, where, after):
    corpus = tmp_path / "dump.jsonl"
    corpus.write_text(_records(4000))
    _old(corpus)
    idx = tmp_path / "idx"
    cmd = [sys.executable, "-c", KILLED_RUN, str(corpus), str(idx), where, str(after)]
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr
    docs, chunks, _ = _stored(idx)
    assert 0 < docs < 4000
    searcher = LocalSearcher(idx, IndexSettings(per_doc=1))  # searchable while the writer is dead
    assert searcher.search("item10", k=1)[0].doc_id == "r10"

    report = update_index(idx, [corpus], IndexOptions(dense=False, batch_records=250, commit_chunks=1000))
    assert report.chunks_added == 4000 - docs  # resumed at the last committed batch, nothing read twice
    assert _stored(idx) == (4000, 4000, 4000)
    gen = searcher._current()
    assert gen.lexical.num_docs == 4000  # the redone sync deleted what the killed one had half-added
    assert {h.doc_id for h in searcher.search("item3999 item7", k=5)[:2]} == {"r3999", "r7"}


def test_an_index_of_the_previous_format_says_to_rebuild(folder: Path, tmp_path, cli_env):
    idx = tmp_path / "idx"
    update_index(idx, [folder], BM25_ONLY)
    manifest = json.loads((idx / store.MANIFEST).read_text())
    (idx / store.MANIFEST).write_text(json.dumps(manifest | {"version": 1}))
    cmd = [sys.executable, "-m", "deepsearch.agent", "search", "cats", "--index", str(idx)]
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and "format version 1" in lines[0] and "--rebuild" in lines[0]
    report = update_index(idx, [folder], BM25_ONLY, rebuild=True)
    assert report.counts.documents == 3 and LocalSearcher(idx).search("cats", k=1)[0].doc_id == "c.md"


def _exact(vectors: np.ndarray, rows: np.ndarray, q: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """The search before segments: the whole float16 matrix as float32, one product, ties by position."""
    scores = np.asarray(vectors.astype(np.float16), dtype=np.float32) @ q
    part = np.argpartition(-scores, depth - 1)[:depth]
    order = part[np.lexsort((part, -scores[part]))]
    return [(int(rows[i]), float(scores[i])) for i in order]


def test_dense_segments_search_equals_the_full_matrix_product_and_compaction_keeps_them_few(tmp_path, monkeypatch):
    monkeypatch.setattr(dense_store, "BLOCK_ROWS", 37)  # many blocks per segment
    rng = np.random.default_rng(7)
    dim, folder = 16, tmp_path / "dense"
    all_rows, all_vectors, segments, dead = [], [], [], np.zeros(0, dtype=np.int64)
    next_row = 1
    for size in [300, 5, 3, 8, 2, 4, 1, 6, 90, 2]:  # one bulk load, then small updates
        rows = np.arange(next_row, next_row + size, dtype=np.int64)
        vectors = rng.standard_normal((size, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        next_row += size
        segments.append(dense_store.write_segment(folder, size, dim, [(rows, vectors)]))
        all_rows.append(rows)
        all_vectors.append(vectors)
        dead = np.union1d(dead, rng.choice(np.concatenate(all_rows), size=3, replace=False))
        segments, dead = dense_store.compact(folder, segments, dead, dim)
    assert len(segments) < 6  # ten updates, merged as they came
    rows, vectors = np.concatenate(all_rows), np.concatenate(all_vectors)
    live = ~np.isin(rows, dead)
    index = dense_store.DenseIndex(folder, segments, dense_store.write_dead(folder, dead))
    assert index.size == int(live.sum())
    for _ in range(5):
        q = rng.standard_normal(dim).astype(np.float32)
        assert index.search(q, 25) == _exact(vectors[live], rows[live], q, 25)
    monkeypatch.setattr(dense_store, "APPROX_MIN_ROWS", 100)  # large segments: signs first, then rescored
    approximate = dense_store.DenseIndex(folder, segments, dense_store.write_dead(folder, dead))
    assert approximate.approximate and approximate.size == index.size
    q = rng.standard_normal(dim).astype(np.float32)
    monkeypatch.setattr(dense_store, "RESCORE_MIN", 10_000)  # every row a candidate: the exact answer
    assert approximate.search(q, 25) == _exact(vectors[live], rows[live], q, 25)
    monkeypatch.setattr(dense_store, "RESCORE_MIN", 60)
    found = approximate.search(q, 25)
    assert len(found) == 25 and not {r for r, _ in found} & set(dead.tolist())


def test_dense_index_matches_the_exact_ranking_through_the_search_api(tmp_path):
    pytest.importorskip("wordllama")
    from deepsearch.tools.dense import load_embedder
    from deepsearch.tools.search_sync import text_for_retrieval

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(["Volcanoes erupt lava.", "Glaciers carve valleys.", "Rivers reach the sea."]):
        (docs / f"{i}.txt").write_text(text)
    idx = tmp_path / "idx"
    update_index(idx, [docs], IndexOptions(dense=True))
    (docs / "3.txt").write_text("Deserts are dry and hot.")  # a second segment
    (docs / "1.txt").unlink()  # a dead row in the first
    update_index(idx, [docs], IndexOptions(dense=True))
    searcher = LocalSearcher(idx, IndexSettings(per_doc=0))
    with sqlite3.connect(idx / store.STORE) as conn:
        rows_texts = conn.execute(
            "SELECT c.row, d.title, c.text FROM chunks c JOIN documents d USING (doc_id) ORDER BY c.row"
        ).fetchall()
    rows = np.array([r for r, _, _ in rows_texts])
    vectors = load_embedder().embed([text_for_retrieval(t, x) for _, t, x in rows_texts])
    for query in ("hot sand", "ice", "lava"):
        q = load_embedder().embed([query])[0]
        got, want = searcher._dense_ranking(searcher._current(), query, 3), _exact(vectors, rows, q, 3)
        assert [r for r, _ in got] == [r for r, _ in want]  # BLAS sums a block in another order: scores to 1e-6
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-6, atol=1e-7)
    assert len(store.read_search_meta(idx / "search").dense_segments) == 2


def test_updating_a_dense_index_embeds_only_the_new_chunks(folder: Path, tmp_path, monkeypatch):
    pytest.importorskip("wordllama")
    from deepsearch.tools.dense import load_embedder

    idx = tmp_path / "idx"
    update_index(idx, [folder], IndexOptions(dense=True))
    embedded: list[int] = []
    embedder = load_embedder()
    real_embed = type(embedder).embed
    monkeypatch.setattr(
        type(embedder), "embed", lambda self, texts: embedded.append(len(texts)) or real_embed(self, texts)
    )
    (folder / "d.txt").write_text("Dormice sleep through the winter.")
    update_index(idx, [folder], IndexOptions(dense=True))
    assert embedded == [1]
    assert LocalSearcher(idx).search("dormice winter", k=1, mode="dense")[0].doc_id == "d.txt"
