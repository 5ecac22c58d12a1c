"""`local_search`: ranked chunks from a local index by BM25, dense similarity, or both fused (RRF).

`LocalSearcher` opens an index once and answers many queries (thread-safe; `asearch` runs the work
in a worker thread so the event loop never blocks). Before each query it stats the manifest, and when
a writer has put new search files in place (a new search_id) it loads them; every query runs against
one loaded generation as a whole, so a row id is only ever looked up in the store it was ranked with.
`local_search_tool` wraps it as a langchain-core tool with a typed input schema for the graph.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from deepsearch.agent.config import IndexSettings
from deepsearch.agent.errors import UsageError
from pydantic import BaseModel, Field

from . import index_store as store
from .dense_store import DenseIndex
from .fusion import reciprocal_rank_fusion
from .lexical import LexicalReader, count_keys, decode_counts
from .search_sync import DENSE_DIR, LEXICAL_DIR

if TYPE_CHECKING:
    from langchain_core.tools import StructuredTool

SearchMode = Literal["hybrid", "bm25", "dense"]
_MIN_CANDIDATES = 50
_LOAD_TRIES = 8  # a writer swapping files in mid-load costs a retry; 8 spans about 2.5 s of backoff


class Neighbours(BaseModel):
    prev: str | None = Field(None, description="chunk id before this one in the document")
    next: str | None = Field(None, description="chunk id after this one in the document")


class LocalHit(BaseModel):
    rank: int
    doc_id: str
    chunk_id: str
    title: str
    text: str
    source: str
    score: float = Field(description="bm25 score, cosine similarity, or fused RRF score, by mode")
    start: int
    end: int
    neighbours: Neighbours
    ranks: dict[str, int] = Field(default_factory=dict, description="rank in each retriever's list (1 = best)")


class LocalSearchInput(BaseModel):
    """Search the local document index."""

    query: str = Field(min_length=1, description="what to look for, in natural language or keywords")
    k: int = Field(5, ge=1, le=100, description="how many chunks to return")
    mode: SearchMode | None = Field(None, description="hybrid (default), bm25 or dense")


def resolve_index_dir(settings: IndexSettings, name_or_dir: str | None) -> Path:
    """`--index` takes a name (a folder under index.dir) or a path to an index folder."""
    value = name_or_dir or "default"
    if "/" in value or value.startswith(".") or Path(value, store.MANIFEST).is_file():
        return Path(value).expanduser().resolve()
    return settings.dir / value


MAX_FALLBACK_ROOTS = 50


class _Moving(Exception):
    """The index changed while it was being opened; try again."""


@dataclass(eq=False)  # hashed by identity: bench/retrieval_quality.py caches rankings per generation
class _Generation:
    """Everything one generation of search files needs; a query uses one of these throughout."""

    key: str  # search_id of the files
    manifest: store.Manifest
    conn: sqlite3.Connection
    chunks: int
    lexical: LexicalReader | None
    dense: DenseIndex | None
    lock: threading.Lock
    avgdl: float | None = None  # for exact BM25; None: search/ predates stored term counts (tantivy's scores)

    @classmethod
    def open(cls, index_dir: Path) -> _Generation:
        """Load search/ between two reads of its meta.json: equal reads mean no sync finished in between. The
        tantivy snapshot may be one commit ahead of meta.json (a sync between its commit and the rename): its
        extra rows are in the store, and rows it no longer has are ones the store deleted."""
        manifest = store.read_manifest(index_dir)
        search_dir = index_dir / store.SEARCH_DIR
        before = store.read_search_meta(search_dir)
        if before is None:  # search/ is being written for the first time, or was lost
            raise _Moving("search/meta.json is missing")
        conn = store.connect(index_dir)
        try:
            lexical_dir = search_dir / LEXICAL_DIR
            lexical = LexicalReader(lexical_dir, manifest.stemmer) if before.lexical_row else None
            dense = None
            if manifest.dense_model is not None:
                dense = DenseIndex(search_dir / DENSE_DIR, before.dense_segments, before.dense_dead)
            if store.read_search_meta(search_dir) != before or before.build_id != manifest.build_id:
                raise _Moving("search files were replaced while loading")
        except (OSError, ValueError, KeyError, TypeError) as e:
            conn.close()
            if store.read_search_meta(search_dir) != before:
                raise _Moving(str(e)) from None
            raise store.corrupt(index_dir, f"search files unreadable: {e}{_tantivy_note(manifest)}") from None
        except _Moving:
            conn.close()
            raise
        if dense is not None and dense.size != before.chunks:
            conn.close()
            raise store.corrupt(index_dir, "search files do not match the chunk store")
        conn.row_factory = sqlite3.Row
        avgdl = before.lexical_tokens / before.lexical_docs if before.lexical_tokens and before.lexical_docs else None
        return cls(before.search_id, manifest, conn, before.chunks, lexical, dense, threading.Lock(), avgdl)


def _tantivy_note(manifest: store.Manifest) -> str:
    from importlib.metadata import version

    built, here = manifest.tantivy_version, version("tantivy")
    return f" (written by tantivy {built}, this is tantivy {here})" if built and built != here else ""


def _open_generation(index_dir: Path) -> _Generation:
    for attempt in range(_LOAD_TRIES):
        try:
            return _Generation.open(index_dir)
        except _Moving as e:
            last = e
            time.sleep(0.01 * 2**attempt)
    raise store.corrupt(index_dir, f"search files unreadable: {last}")


class LocalSearcher:
    def __init__(self, index_dir: Path, settings: IndexSettings | None = None):
        self.index_dir = index_dir
        self.settings = settings or IndexSettings()
        if not index_dir.exists():
            raise UsageError(f"no index at {index_dir}; build one with `deepsearch index PATH --index {index_dir}`")
        self._stamp = store.manifest_stamp(index_dir)
        self._gen = _open_generation(index_dir)
        self._reload_lock = threading.Lock()

    @property
    def manifest(self) -> store.Manifest:
        return self._gen.manifest

    def _current(self) -> _Generation:
        """The loaded generation, after loading the one on disk if a writer has replaced it (one stat when not)."""
        stamp = store.manifest_stamp(self.index_dir)
        if stamp is None or stamp == self._stamp:  # None: a rebuild's two-rename swap is under way
            return self._gen
        with self._reload_lock:
            if stamp != self._stamp:
                if store.read_manifest(self.index_dir).search_id != self._gen.key:
                    self._gen = _open_generation(self.index_dir)  # the old one closes when its last query ends
                self._stamp = stamp
            return self._gen

    def _moved_on(self, gen: _Generation) -> bool:
        try:
            return store.read_manifest(self.index_dir).search_id != gen.key
        except store.IndexCorrupt:
            return True

    def close(self) -> None:
        self._gen.conn.close()

    def source_roots(self) -> list[str]:
        """The folders this index's files lie under: what a training export makes local paths relative to, so
        shared data does not carry the machine's file layout. An index written before it recorded its roots
        gives its files' common folder, or (when that is `/`) their folders."""
        if self.manifest.roots:
            return list(self.manifest.roots)
        gen = self._current()
        with gen.lock:
            folders = sorted({os.path.dirname(row[0]) for row in gen.conn.execute("SELECT path FROM sources")})
        common = os.path.commonpath(folders) if folders else "/"
        return [common] if common != "/" else folders[:MAX_FALLBACK_ROOTS]

    def default_mode(self) -> SearchMode:
        mode = self.settings.mode
        return "bm25" if mode == "hybrid" and self._current().dense is None else mode

    def search(self, query: str, k: int = 5, mode: SearchMode | None = None) -> list[LocalHit]:
        query = " ".join(query.split())
        if not query:
            raise UsageError("the search query is empty")
        gen = self._current()
        mode = mode or self.default_mode()
        if mode in ("dense", "hybrid") and gen.dense is None:
            raise UsageError(
                f"index {self.index_dir} has no dense vectors; use --mode bm25, or install the dense extra and "
                "re-run `deepsearch index` with --rebuild"
            )
        if not gen.chunks:
            return []
        depth = min(gen.chunks, max(_MIN_CANDIDATES, 4 * k * max(1, self.settings.per_doc)))
        lists: dict[str, list[tuple[int, float]]] = {}
        if mode in ("bm25", "hybrid"):
            lists["bm25"] = self._bm25_ranking(gen, query, depth)
        if mode in ("dense", "hybrid"):
            lists["dense"] = self._dense_ranking(gen, query, depth)
        if mode == "hybrid":
            fused = reciprocal_rank_fusion(
                [[i for i, _ in lists["bm25"]], [i for i, _ in lists["dense"]]],
                weights=[1.0, self.settings.dense_weight],
                k=self.settings.rrf_k,
            )
        else:
            fused = lists[mode]
        ranks = {name: {i: r for r, (i, _) in enumerate(ranking, 1)} for name, ranking in lists.items()}
        return self._hits(gen, fused, ranks, k)

    async def asearch(self, query: str, k: int = 5, mode: SearchMode | None = None) -> list[LocalHit]:
        return await asyncio.to_thread(self.search, query, k, mode)

    def _bm25_ranking(self, gen: _Generation, query: str, depth: int) -> list[tuple[int, float]]:
        if gen.lexical is None:  # an empty index
            return []
        if gen.avgdl is None:
            return gen.lexical.search(query, depth)  # no query word in the corpus: nothing, not arbitrary chunks
        return gen.lexical.search(query, depth, lambda rows, terms: self._term_counts(gen, rows, terms), gen.avgdl)

    @staticmethod
    def _term_counts(gen: _Generation, rows: list[int], terms: list[str]) -> dict[int, tuple[int, dict[str, int]]]:
        marks = ",".join("?" * len(rows))
        keys = count_keys(terms)
        with gen.lock:
            cursor = gen.conn.cursor()
            cursor.row_factory = None  # plain tuples: faster than sqlite3.Row for a few hundred rows
            found = cursor.execute(f"SELECT row, length, terms FROM lexical_terms WHERE row IN ({marks})", rows)
            return {row: (length, decode_counts(counts, keys)) for row, length, counts in found}

    def _dense_ranking(self, gen: _Generation, query: str, depth: int) -> list[tuple[int, float]]:
        from .dense import load_embedder

        return gen.dense.search(load_embedder().embed([query])[0], depth)

    def _hits(
        self, gen: _Generation, ranked: list[tuple[int, float]], ranks: dict[str, dict[int, int]], k: int
    ) -> list[LocalHit]:
        hits: list[LocalHit] = []
        per_doc: dict[str, int] = {}
        for position, score in ranked:  # a position is a chunk row
            row = self._chunk_row(gen, position)
            if row is None:
                # Row ids are never reused: a missing one was deleted by an update that is under way (stale
                # marker) or done (new search files, loaded on the next query). Otherwise the index is damaged.
                if (self.index_dir / store.STALE).exists() or self._moved_on(gen):
                    continue
                raise store.corrupt(self.index_dir, "a ranked chunk is missing from the chunk store")
            doc_id = row["doc_id"]
            if self.settings.per_doc and per_doc.get(doc_id, 0) >= self.settings.per_doc:
                continue
            per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
            hits.append(
                LocalHit(
                    rank=len(hits) + 1,
                    score=round(float(score), 6),
                    neighbours=Neighbours(prev=row["prev_id"], next=row["next_id"]),
                    ranks={name: r[position] for name, r in ranks.items() if position in r},
                    **{key: row[key] for key in ("doc_id", "chunk_id", "title", "text", "source", "start", "end")},
                )
            )
            if len(hits) == k:
                break
        return hits

    @staticmethod
    def _chunk_row(gen: _Generation, row: int) -> sqlite3.Row | None:
        query = (
            'SELECT c.doc_id, c.chunk_id, d.title, c.text, d.source, c.start, c."end", c.prev_id, c.next_id '
            "FROM chunks c JOIN documents d USING (doc_id) WHERE c.row = ?"
        )
        with gen.lock:
            return gen.conn.execute(query, (row,)).fetchone()

    def get_chunks(self, chunk_ids: list[str]) -> dict[str, str]:
        """Texts of chunks by id, e.g. a hit's neighbours for more context."""
        gen = self._current()
        marks = ",".join("?" * len(chunk_ids))
        with gen.lock:
            rows = gen.conn.execute(f"SELECT chunk_id, text FROM chunks WHERE chunk_id IN ({marks})", chunk_ids)
            return {r["chunk_id"]: r["text"] for r in rows}


def local_search_tool(searcher: LocalSearcher) -> StructuredTool:
    """The langchain-core tool the graph calls; results are plain dicts of LocalHit."""
    from langchain_core.tools import StructuredTool  # here, not at the top: ~0.4 s of every CLI start

    def run(query: str, k: int = 5, mode: SearchMode | None = None) -> list[dict]:
        return [h.model_dump() for h in searcher.search(query, k, mode)]

    async def arun(query: str, k: int = 5, mode: SearchMode | None = None) -> list[dict]:
        return [h.model_dump() for h in await searcher.asearch(query, k, mode)]

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name="local_search",
        description="Search the local document index; returns ranked chunks with doc_id, chunk_id, title, "
        "text, source, score and neighbour chunk ids.",
        args_schema=LocalSearchInput,
    )
