"""The on-disk layout of a local index and its integrity checks.

    <index dir>/manifest.json   format, version, chunking and retrieval settings, counts (written last)
    <index dir>/chunks.sqlite   sources (path, sha256), documents, chunks (text, offsets, neighbours, vector)
    <index dir>/search/         bm25s index, row ids and the dense matrix, rebuilt from the SQLite store
    <index dir>/search.stale    present while the store may be ahead of search/: the next update rebuilds it

Anything missing, unparsable or from another format version raises IndexCorrupt, whose message says
to run with --rebuild.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from deepsearch.agent.errors import DeepsearchError
from pydantic import BaseModel, ValidationError

FORMAT = "deepsearch-local-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STORE = "chunks.sqlite"
SEARCH_DIR = "search"
STALE = "search.stale"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL, indexed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source_path TEXT NOT NULL, title TEXT NOT NULL, source TEXT NOT NULL,
    n_chunks INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_source ON documents(source_path);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, tokens INTEGER NOT NULL,
    prev_id TEXT, next_id TEXT, vector BLOB
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
"""


class IndexCorrupt(DeepsearchError):
    """The index cannot be read as this version writes it."""


class IndexCounts(BaseModel):
    documents: int = 0
    chunks: int = 0
    tokens: int = 0
    sources: int = 0


class Manifest(BaseModel):
    format: str = FORMAT
    version: int = FORMAT_VERSION
    created_at: str
    updated_at: str
    chunk_tokens: int
    overlap_tokens: int
    stemmer: str | None
    dense_model: str | None
    dense_dim: int | None = None
    counts: IndexCounts = IndexCounts()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def corrupt(index_dir: Path, why: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"index {index_dir} is unusable ({why}); re-run `deepsearch index PATH... --index {index_dir} --rebuild`"
    )


def unwritable(index_dir: Path, error: OSError | sqlite3.Error) -> DeepsearchError:
    """A write into the index failed (read-only folder, disk full): what is on disk is the previous index."""
    if isinstance(error, OSError):
        why = error.strerror or type(error).__name__
        if error.filename:
            why = f"{why}: {error.filename}"
    else:
        why = str(error)
    return DeepsearchError(
        f"cannot write to index {index_dir} ({why}); the previous index is still searchable — "
        "free space or make the folder writable, then re-run `deepsearch index`"
    )


def read_manifest(index_dir: Path) -> Manifest:
    path = index_dir / MANIFEST
    if not path.is_file():
        raise corrupt(index_dir, "no manifest.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise corrupt(index_dir, f"manifest.json unreadable: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise corrupt(index_dir, "manifest.json is not a deepsearch index manifest")
    if data.get("version") != FORMAT_VERSION:
        raise corrupt(index_dir, f"format version {data.get('version')}, this deepsearch reads {FORMAT_VERSION}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise corrupt(index_dir, f"manifest.json invalid: {e.errors()[0]['msg']}") from None


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    commit_manifest(index_dir, prepare_manifest(index_dir, manifest))


def prepare_manifest(index_dir: Path, manifest: Manifest) -> Path:
    """Write the manifest beside the current one (the step that needs disk space); `commit_manifest` swaps it in."""
    tmp = index_dir / (MANIFEST + ".tmp")
    try:
        tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def commit_manifest(index_dir: Path, tmp: Path) -> None:
    os.replace(tmp, index_dir / MANIFEST)  # atomic: a reader sees the old or the new manifest


def connect(index_dir: Path, create: bool = False) -> sqlite3.Connection:
    path = index_dir / STORE
    if not create and not path.is_file():
        raise corrupt(index_dir, f"{STORE} is missing")
    try:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        conn.execute("SELECT count(*) FROM chunks").fetchone()
    except sqlite3.OperationalError as e:
        if create:  # cannot create or write it (read-only folder, disk full), not a damaged file
            raise unwritable(index_dir, e) from None
        return _connect_read_only(index_dir, path, e)
    except sqlite3.DatabaseError as e:
        raise corrupt(index_dir, f"{STORE}: {e}") from None
    return conn


def _connect_read_only(index_dir: Path, path: Path, error: sqlite3.OperationalError) -> sqlite3.Connection:
    """Searching an index on a read-only mount: SQLite cannot make its WAL files there, so open it immutable."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False)
        conn.execute("SELECT count(*) FROM chunks").fetchone()
    except sqlite3.DatabaseError:
        raise corrupt(index_dir, f"{STORE}: {error}") from None
    return conn


def count(conn: sqlite3.Connection) -> IndexCounts:
    docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    chunks, tokens = conn.execute("SELECT count(*), coalesce(sum(tokens), 0) FROM chunks").fetchone()
    sources = conn.execute("SELECT count(*) FROM sources").fetchone()[0]
    return IndexCounts(documents=docs, chunks=chunks, tokens=tokens, sources=sources)


def size_on_disk(index_dir: Path) -> int:
    return sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
