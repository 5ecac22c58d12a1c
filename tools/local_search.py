"""`local_search`: ranked chunks from a local index by BM25, dense similarity, or both fused (RRF).

`LocalSearcher` opens an index once and answers many queries (thread-safe; `asearch` runs the work
in a worker thread so the event loop never blocks). `local_search_tool` wraps it as a langchain-core
tool with a typed input schema for the graph.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Literal

import numpy as np
from deepsearch.agent.config import IndexSettings
from deepsearch.agent.errors import UsageError
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from . import index_store as store
from .fusion import reciprocal_rank_fusion
from .local_index import stemmer

SearchMode = Literal["hybrid", "bm25", "dense"]
_MIN_CANDIDATES = 50


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


class LocalSearcher:
    def __init__(self, index_dir: Path, settings: IndexSettings | None = None):
        self.index_dir = index_dir
        self.settings = settings or IndexSettings()
        if not index_dir.exists():
            raise UsageError(f"no index at {index_dir}; build one with `deepsearch index PATH --index {index_dir}`")
        self.manifest = store.read_manifest(index_dir)
        self._conn = store.connect(index_dir)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._stemmer = stemmer(self.manifest.stemmer)
        self._matrix: np.ndarray | None = None
        search_dir = index_dir / store.SEARCH_DIR
        try:
            self._rows = np.load(search_dir / "rows.npy")
            self._bm25 = self._load_bm25(search_dir) if (search_dir / "bm25").exists() else None
            has_vectors = self.manifest.dense_model is not None and len(self._rows)
            self._vectors = np.load(search_dir / "vectors.npy", mmap_mode="r") if has_vectors else None
        except (OSError, ValueError, KeyError) as e:
            raise store.corrupt(index_dir, f"search files unreadable: {e}") from None
        if len(self._rows) != self.manifest.counts.chunks or (
            self._vectors is not None and self._vectors.shape[0] != len(self._rows)
        ):
            raise store.corrupt(index_dir, "search files do not match the chunk store")

    @staticmethod
    def _load_bm25(search_dir: Path):
        import bm25s

        return bm25s.BM25.load(str(search_dir / "bm25"), mmap=True)

    def close(self) -> None:
        self._conn.close()

    def default_mode(self) -> SearchMode:
        mode = self.settings.mode
        return "bm25" if mode == "hybrid" and self._vectors is None else mode

    def search(self, query: str, k: int = 5, mode: SearchMode | None = None) -> list[LocalHit]:
        query = " ".join(query.split())
        if not query:
            raise UsageError("the search query is empty")
        mode = mode or self.default_mode()
        if mode in ("dense", "hybrid") and self._vectors is None:
            raise UsageError(
                f"index {self.index_dir} has no dense vectors; use --mode bm25, or install the dense extra and "
                "re-run `deepsearch index` with --rebuild"
            )
        if not len(self._rows):
            return []
        depth = min(len(self._rows), max(_MIN_CANDIDATES, 4 * k * max(1, self.settings.per_doc)))
        lists: dict[str, list[tuple[int, float]]] = {}
        if mode in ("bm25", "hybrid"):
            lists["bm25"] = self._bm25_ranking(query, depth)
        if mode in ("dense", "hybrid"):
            lists["dense"] = self._dense_ranking(query, depth)
        if mode == "hybrid":
            fused = reciprocal_rank_fusion(
                [[i for i, _ in lists["bm25"]], [i for i, _ in lists["dense"]]],
                weights=[1.0, self.settings.dense_weight],
                k=self.settings.rrf_k,
            )
        else:
            fused = lists[mode]
        ranks = {name: {i: r for r, (i, _) in enumerate(ranking, 1)} for name, ranking in lists.items()}
        return self._hits(fused, ranks, k)

    async def asearch(self, query: str, k: int = 5, mode: SearchMode | None = None) -> list[LocalHit]:
        return await asyncio.to_thread(self.search, query, k, mode)

    def _bm25_ranking(self, query: str, depth: int) -> list[tuple[int, float]]:
        import bm25s

        if self._bm25 is None:  # an empty index, or one whose chunks hold no indexable word
            return []
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)
        known = self._bm25.get_tokens_ids(tokens[0])
        if not known:  # no query word occurs in the corpus: nothing matches, rather than arbitrary chunks
            return []
        scores = self._bm25.get_scores(known)
        return _top(scores, depth, positive_only=True)

    def _dense_ranking(self, query: str, depth: int) -> list[tuple[int, float]]:
        from .dense import load_embedder

        if self._matrix is None:  # float16 on disk; float32 once in memory so each query is one matmul
            self._matrix = np.asarray(self._vectors, dtype=np.float32)
        q = load_embedder().embed([query])[0]
        return _top(self._matrix @ q, depth)

    def _hits(self, ranked: list[tuple[int, float]], ranks: dict[str, dict[int, int]], k: int) -> list[LocalHit]:
        hits: list[LocalHit] = []
        per_doc: dict[str, int] = {}
        for position, score in ranked:
            row = self._chunk_row(int(self._rows[position]))
            if row is None:
                if (self.index_dir / store.STALE).exists():  # an update was cut short: its old chunks are gone
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

    def _chunk_row(self, row: int) -> sqlite3.Row | None:
        query = (
            'SELECT c.doc_id, c.chunk_id, d.title, c.text, d.source, c.start, c."end", c.prev_id, c.next_id '
            "FROM chunks c JOIN documents d USING (doc_id) WHERE c.row = ?"
        )
        with self._lock:
            return self._conn.execute(query, (row,)).fetchone()

    def get_chunks(self, chunk_ids: list[str]) -> dict[str, str]:
        """Texts of chunks by id, e.g. a hit's neighbours for more context."""
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = self._conn.execute(f"SELECT chunk_id, text FROM chunks WHERE chunk_id IN ({marks})", chunk_ids)
            return {r["chunk_id"]: r["text"] for r in rows}


def _top(scores: np.ndarray, depth: int, positive_only: bool = False) -> list[tuple[int, float]]:
    depth = min(depth, len(scores))
    part = np.argpartition(-scores, depth - 1)[:depth]
    order = part[np.lexsort((part, -scores[part]))]  # by score, ties by position: deterministic
    return [(int(i), float(scores[i])) for i in order if not positive_only or scores[i] > 0]


def local_search_tool(searcher: LocalSearcher) -> StructuredTool:
    """The langchain-core tool the graph calls; results are plain dicts of LocalHit."""

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
