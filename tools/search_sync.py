"""Bring search/ up to the chunk store: only the rows added or deleted since the last sync are touched.

The store (chunks.sqlite) is the truth; lexical/ and dense/ follow it. search/meta.json records the last
chunk row each of them covers (rows are AUTOINCREMENT, so "added since" is "row above that mark"), and
the store's `dropped` table the rows deleted since. One sync:

1. lexical: delete every document with a row above the mark (a sync cut short after tantivy's commit may
   have left some; deleting first makes the redo exact), delete the dropped rows, add the new rows; the same
   in the store's lexical_terms (each row's analysed length and term counts, for exact BM25 at query time),
   whose triggers keep the count and summed length that meta.json records for avgdl (committed before tantivy);
2. dense: embed the new rows into one new segment, add the dropped rows it held to the dead set, merge;
3. write meta.json.tmp (the step that needs space), commit tantivy, rename meta.json.tmp over meta.json;
4. forget the dropped rows both halves now cover.

A kill at any point leaves the previous meta.json naming files that are still there, and the next sync
redoes the work from its marks: every chunk is in each half exactly once. Dense files that no meta.json
names (a sync cut short, or the generation before the current one) are deleted at the start of a sync.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from . import dense_store
from . import index_store as store
from .lexical import LexicalWriter, encode_counts

LEXICAL_DIR, DENSE_DIR = "lexical", "dense"
_READ_BATCH = 1024
_TEXTS = "SELECT c.row, d.title, c.text FROM chunks c JOIN documents d USING (doc_id) WHERE c.row > ? ORDER BY c.row"


def text_for_retrieval(title: str, text: str) -> str:
    """What BM25 and the embedder see: the title carries the entity a passage is about."""
    return f"{title}. {text}" if title else text


def _texts(conn: sqlite3.Connection, after: int) -> Iterator[list[tuple[int, str]]]:
    cursor = conn.execute(_TEXTS, (after,))
    while batch := cursor.fetchmany(_READ_BATCH):
        yield [(row, text_for_retrieval(title, text)) for row, title, text in batch]


def _vectors(conn: sqlite3.Connection, after: int, embedder) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for batch in _texts(conn, after):
        yield np.array([r for r, _ in batch], dtype=np.int64), embedder.embed([t for _, t in batch])


def _collect_garbage(dense_dir: Path, meta: store.SearchMeta | None) -> None:
    if not dense_dir.is_dir():
        return
    keep = set()
    if meta is not None:
        keep = {f for s in meta.dense_segments for f in dense_store.segment_files(s.name)}
        keep |= {f"{meta.dense_dead}.npy"} if meta.dense_dead else set()
    for path in dense_dir.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


def open_writer(index_dir: Path, manifest: store.Manifest) -> LexicalWriter:
    """The lexical writer for a run's syncs: kept open between them so tantivy merges in the background."""
    (index_dir / store.SEARCH_DIR).mkdir(exist_ok=True)
    return LexicalWriter(index_dir / store.SEARCH_DIR / LEXICAL_DIR, manifest.stemmer)


def sync(
    index_dir: Path, conn: sqlite3.Connection, manifest: store.Manifest, embedder, writer: LexicalWriter
) -> store.SearchMeta:
    """Make search/ cover every chunk of the store, as generation `manifest.search_id`. On failure the writer's
    uncommitted work is dropped and the writer released; the caller closes it after its last sync."""
    search_dir = index_dir / store.SEARCH_DIR
    search_dir.mkdir(exist_ok=True)
    dense_dir = search_dir / DENSE_DIR
    current = store.read_search_meta(search_dir)
    if current is not None and current.build_id != manifest.build_id:  # cannot happen: a rebuild is a new folder
        raise store.corrupt(index_dir, "search/meta.json belongs to another build")
    _collect_garbage(dense_dir, current)
    current = current or store.SearchMeta(build_id=manifest.build_id, search_id="", chunks=0, lexical_tokens=0)
    exact = current.lexical_row == 0 or current.lexical_tokens is not None  # else: written before term counts
    top = conn.execute("SELECT coalesce(max(row), 0) FROM chunks").fetchone()[0]
    top = max(top, current.lexical_row, current.dense_row)
    dropped = np.array([r for (r,) in conn.execute("SELECT row FROM dropped ORDER BY row")], dtype=np.int64)

    try:
        writer.delete_rows_from(current.lexical_row + 1)
        conn.execute("DELETE FROM lexical_terms WHERE row > ?", (current.lexical_row,))
        for row in dropped[dropped <= current.lexical_row]:
            writer.delete_row(int(row))
        conn.execute("DELETE FROM lexical_terms WHERE row IN (SELECT row FROM dropped)")
        for batch in _texts(conn, current.lexical_row):
            counted = []
            for row, text in batch:
                writer.add(row, text)
                if exact:
                    counts = writer.term_counts(text)
                    counted.append((row, sum(counts.values()), encode_counts(counts)))
            conn.executemany("INSERT INTO lexical_terms VALUES (?, ?, ?)", counted)
        conn.commit()
        lexical_docs, lexical_tokens = conn.execute("SELECT docs, tokens FROM lexical_totals").fetchone()
        segments, dead_name = current.dense_segments, current.dense_dead
        if manifest.dense_dim is not None:
            segments, dead_name = _sync_dense(dense_dir, conn, current, dropped, manifest.dense_dim, embedder)
        meta = store.SearchMeta(
            build_id=manifest.build_id,
            search_id=manifest.search_id,
            chunks=store.count(conn).chunks,
            lexical_row=top,
            dense_row=top if manifest.dense_dim is not None else 0,
            dense_segments=segments,
            dense_dead=dead_name,
            lexical_docs=lexical_docs,
            lexical_tokens=lexical_tokens if exact else None,
        )
        tmp = store.prepare_search_meta(search_dir, meta)
        writer.commit()
    except BaseException:
        conn.rollback()
        writer.abandon()
        raise
    os.replace(tmp, search_dir / store.SEARCH_META)  # readers now load this generation
    with conn:
        conn.execute("DELETE FROM dropped WHERE row <= ?", (top,))
    return meta


def _sync_dense(
    dense_dir: Path, conn: sqlite3.Connection, current: store.SearchMeta, dropped: np.ndarray, dim: int, embedder
) -> tuple[list[store.DenseSegment], str | None]:
    new_rows = conn.execute("SELECT count(*) FROM chunks WHERE row > ?", (current.dense_row,)).fetchone()[0]
    segment = dense_store.write_segment(dense_dir, new_rows, dim, _vectors(conn, current.dense_row, embedder))
    segments = current.dense_segments + ([segment] if segment else [])
    dead = np.union1d(dense_store.load_dead(dense_dir, current.dense_dead), dropped[dropped <= current.dense_row])
    segments, dead = dense_store.compact(dense_dir, segments, dead, dim)
    return segments, dense_store.write_dead(dense_dir, dead)
