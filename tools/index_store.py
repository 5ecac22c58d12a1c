"""The on-disk layout of a local index and its integrity checks.

    <index dir>/manifest.json   format, version, settings, counts, build and search ids (written last)
    <index dir>/chunks.sqlite   sources (path, sha256, size, mtime), documents, chunks (text, offsets, neighbours),
                                dropped (rows deleted from the store, until the search files forget them),
                                partial (how far a streamed file has been read, so a killed run resumes there),
                                lexical_terms (each chunk's analysed length and term counts, for exact BM25)
                                and lexical_totals (their count and summed lengths, kept by triggers)
    <index dir>/search/         lexical/ (tantivy), dense/ (vector segments) and meta.json, which names the dense
                                segments and the last row each half of search/ covers (see search_sync.py)
    <index dir>/search.stale    present while the store may be ahead of search/: the next update catches up
    <index dir>/write.lock      flock()ed by the one writer at a time (see write_lock)

Chunk row ids are AUTOINCREMENT: a row id in some generation's search files names that chunk or none,
never a later one. Anything missing, unparsable or from another format version raises IndexCorrupt,
whose message says to run with --rebuild (indexes of format 1, whose search files were rebuilt whole on
every change, are refused that way).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from deepsearch.agent.errors import DeepsearchError, UsageError
from pydantic import BaseModel, ValidationError

FORMAT = "deepsearch-local-index"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
STORE = "chunks.sqlite"
SEARCH_DIR = "search"
STALE = "search.stale"
LOCK = "write.lock"
SEARCH_META = "meta.json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL, indexed_at TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL, read_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source_path TEXT NOT NULL, title TEXT NOT NULL, source TEXT NOT NULL,
    n_chunks INTEGER NOT NULL, digest TEXT NOT NULL, pass INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped (row INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS partial (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, offset INTEGER NOT NULL,
    record INTEGER NOT NULL, pass INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0), documents INTEGER NOT NULL, chunks INTEGER NOT NULL, tokens INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0, 0);
CREATE TABLE IF NOT EXISTS lexical_terms (row INTEGER PRIMARY KEY, length INTEGER NOT NULL, terms TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lexical_totals (
    id INTEGER PRIMARY KEY CHECK (id = 0), docs INTEGER NOT NULL, tokens INTEGER NOT NULL
);
INSERT OR IGNORE INTO lexical_totals VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS lexical_in AFTER INSERT ON lexical_terms BEGIN
    UPDATE lexical_totals SET docs = docs + 1, tokens = tokens + NEW.length; END;
CREATE TRIGGER IF NOT EXISTS lexical_out AFTER DELETE ON lexical_terms BEGIN
    UPDATE lexical_totals SET docs = docs - 1, tokens = tokens - OLD.length; END;
CREATE TRIGGER IF NOT EXISTS documents_in AFTER INSERT ON documents BEGIN
    UPDATE totals SET documents = documents + 1; END;
CREATE TRIGGER IF NOT EXISTS documents_out AFTER DELETE ON documents BEGIN
    UPDATE totals SET documents = documents - 1; END;
CREATE TRIGGER IF NOT EXISTS chunks_in AFTER INSERT ON chunks BEGIN
    UPDATE totals SET chunks = chunks + 1, tokens = tokens + NEW.tokens; END;
CREATE TRIGGER IF NOT EXISTS chunks_out AFTER DELETE ON chunks BEGIN
    UPDATE totals SET chunks = chunks - 1, tokens = tokens - OLD.tokens; END;
CREATE INDEX IF NOT EXISTS documents_by_source ON documents(source_path);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
"""
_CHUNKS = """CREATE TABLE IF NOT EXISTS {name} (
    row INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    tokens INTEGER NOT NULL, prev_id TEXT, next_id TEXT
)"""


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
    # New per build (creation or --rebuild) and per rewrite of search/; searchers reload when search_id changes.
    # Empty in indexes written before they existed.
    build_id: str = ""
    search_id: str = ""
    generation: int = 0  # search/ rewrites in this build, for people reading the manifest
    tantivy_version: str | None = None  # tantivy wrote search/lexical in its own format
    # The folders indexed (a file's own folder when a file was given): what exports make local paths relative to.
    roots: list[str] = []


class DenseSegment(BaseModel):
    name: str
    rows: int


class SearchMeta(BaseModel):
    """search/meta.json: which build and generation search/ is at, read before and after loading it; it names the
    dense segments (and the dead rows still in them) and the last chunk row each of lexical/ and dense/ covers."""

    build_id: str
    search_id: str
    chunks: int
    lexical_row: int = 0
    dense_row: int = 0
    dense_segments: list[DenseSegment] = []
    dense_dead: str | None = None  # file of row ids deleted from the store but still in a segment
    # Documents in lexical/ and their summed analysed lengths (avgdl for exact BM25). None: search/ was written
    # before the store kept term counts, and is ranked by tantivy's own BM25 until a --rebuild.
    lexical_docs: int = 0
    lexical_tokens: int | None = None


def new_id() -> str:
    return uuid.uuid4().hex


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


def manifest_stamp(index_dir: Path) -> tuple[int, int, int] | None:
    """Changes whenever the manifest is replaced (a new inode each time); None while there is none."""
    try:
        st = os.stat(index_dir / MANIFEST)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def read_search_meta(search_dir: Path) -> SearchMeta | None:
    try:
        return SearchMeta.model_validate_json((search_dir / SEARCH_META).read_bytes())
    except (OSError, ValueError):
        return None


def prepare_search_meta(search_dir: Path, meta: SearchMeta) -> Path:
    """Write meta.json beside the current one (the step that needs disk space); os.replace swaps it in."""
    tmp = search_dir / (SEARCH_META + ".tmp")
    try:
        tmp.write_text(meta.model_dump_json(), encoding="utf-8")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def connect(index_dir: Path, create: bool = False) -> sqlite3.Connection:
    path = index_dir / STORE
    if not create and not path.is_file():
        raise corrupt(index_dir, f"{STORE} is missing")
    try:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: a crash loses at most the last commits, never the store
        if create:  # a searcher never writes, not even a schema that is already there
            conn.executescript(_CHUNKS.format(name="chunks") + ";" + _SCHEMA)
            _never_reuse_rows(conn, index_dir)
        conn.execute("SELECT count(*) FROM totals").fetchone()
    except sqlite3.OperationalError as e:
        if create:  # cannot create or write it (read-only folder, disk full), not a damaged file
            raise unwritable(index_dir, e) from None
        return _connect_read_only(index_dir, path, e)
    except sqlite3.DatabaseError as e:
        raise corrupt(index_dir, f"{STORE}: {e}") from None
    return conn


def _never_reuse_rows(conn: sqlite3.Connection, index_dir: Path) -> None:
    """Give a store from before AUTOINCREMENT (same format otherwise) the keyword, keeping every row id.

    Without it SQLite hands the highest deleted row id to the next insert, and a searcher still holding the
    previous search files would return the new chunk for the old one's rank.
    """
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'chunks'").fetchone()
    if "AUTOINCREMENT" in sql.upper():
        return
    floor = conn.execute("SELECT coalesce(max(row), 0) FROM chunks").fetchone()[0]
    meta = read_search_meta(index_dir / SEARCH_DIR)  # search files may name rows already gone (an update cut short)
    if meta is not None:
        floor = max(floor, meta.lexical_row, meta.dense_row)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_CHUNKS.format(name="chunks_v2"))  # same columns, in the same order
        conn.execute("INSERT INTO chunks_v2 SELECT * FROM chunks")
        conn.execute("DROP TABLE chunks")
        conn.execute("ALTER TABLE chunks_v2 RENAME TO chunks")
        conn.execute("CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id)")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'chunks'")
        conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('chunks', ?)", (floor,))
        conn.commit()
        conn.executescript(_SCHEMA)  # the triggers went with the old table
    except BaseException:
        conn.rollback()
        raise


def _connect_read_only(index_dir: Path, path: Path, error: sqlite3.OperationalError) -> sqlite3.Connection:
    """Searching an index on a read-only mount: SQLite cannot make its WAL files there, so open it immutable."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False)
        conn.execute("SELECT count(*) FROM totals").fetchone()
    except sqlite3.DatabaseError:
        raise corrupt(index_dir, f"{STORE}: {error}") from None
    return conn


def count(conn: sqlite3.Connection) -> IndexCounts:
    """From the totals the store's triggers keep: no scan of a million rows per update."""
    docs, chunks, tokens = conn.execute("SELECT documents, chunks, tokens FROM totals").fetchone()
    sources = conn.execute("SELECT count(*) FROM sources").fetchone()[0]
    return IndexCounts(documents=docs, chunks=chunks, tokens=tokens, sources=sources)


def size_on_disk(index_dir: Path) -> int:
    return sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())


# --- Guarding writes: what may be replaced or deleted, one writer at a time, whole-folder swaps ---------------

_OWNED = {
    MANIFEST, MANIFEST + ".tmp", STORE, STORE + "-wal", STORE + "-shm", STORE + "-journal",
    SEARCH_DIR, SEARCH_DIR + ".new", SEARCH_DIR + ".old", SEARCH_DIR + ".new.old", STALE, LOCK,
}  # fmt: skip


class IndexBusy(DeepsearchError):
    """Another writer holds the index's lock."""


def holds_index(index_dir: Path) -> bool:
    """Whether `index_dir` may be replaced or deleted: its manifest says it is a deepsearch index, or (a damaged
    index) it holds only names an index writes and its chunk store has our tables. Empty folders hold nothing."""
    try:
        names = {p.name for p in index_dir.iterdir()}
    except OSError:
        return False
    if not names - {LOCK}:
        return True
    try:
        data = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return True
    except (OSError, ValueError):
        pass
    return names <= _OWNED and _is_store(index_dir / STORE)


def _is_store(path: Path) -> bool:
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except (OSError, sqlite3.Error):
        return False
    return {"sources", "documents", "chunks"} <= tables


def check_target(index_dir: Path, rebuild: bool) -> None:
    """Refuse an --index folder that is not a deepsearch index, before anything in it is created, locked or deleted."""
    if not index_dir.exists():
        return
    if not index_dir.is_dir():
        raise UsageError(f"--index {index_dir} is a file, not an index folder")
    if rebuild and not holds_index(index_dir):
        raise UsageError(
            f"refusing to --rebuild {index_dir}: it holds no deepsearch index manifest, so nothing was deleted; "
            "give the index folder, or a new or empty one"
        )
    if not rebuild and not (index_dir / MANIFEST).exists() and any(p.name != LOCK for p in index_dir.iterdir()):
        if holds_index(index_dir):
            raise corrupt(index_dir, "no manifest.json")
        raise UsageError(f"{index_dir} is a non-empty folder that is not a deepsearch index; choose another --index")


def remove_index(index_dir: Path) -> None:
    """The one way this package deletes an index folder; anything else is left alone and reported."""
    import shutil

    if not index_dir.exists():
        return
    if not holds_index(index_dir):
        raise DeepsearchError(f"not deleting {index_dir}: it holds no deepsearch index manifest")
    shutil.rmtree(index_dir)


def rebuild_folder(index_dir: Path) -> Path:
    """A new hidden folder beside `index_dir` (same file system, so it can be swapped in), holding a manifest as soon
    as the caller writes one. Leftovers of a rebuild cut short are removed first: the caller holds the lock."""
    prefix = f".{index_dir.name}.rebuild-"
    for leftover in index_dir.parent.glob(prefix + "*"):
        remove_index(leftover)
    folder = index_dir.parent / f"{prefix}{new_id()[:8]}"
    folder.mkdir()
    return folder


def swap_dirs(new: Path, current: Path) -> None:
    """Put `new` at `current` and the previous `current` at `new`: one atomic exchange where the OS has it
    (Linux renameat2), else two renames with a moment in between when `current` is absent."""
    if _exchange(new, current):
        return
    aside = new.with_name(new.name + ".old")
    os.rename(current, aside)
    try:
        os.rename(new, current)
    except OSError:
        os.rename(aside, current)
        raise
    os.rename(aside, new)


def _exchange(a: Path, b: Path) -> bool:
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a C library without it
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # an old kernel, or a file system without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


class write_lock:  # noqa: N801 - used as a context manager, like open()
    """An exclusive flock on <index dir>/write.lock, held while one writer changes the index.

    A second writer is refused at once with a one-line IndexBusy, never queued or let in. The kernel drops
    the lock when the holder exits, so a killed indexer leaves nothing to clean up. A rebuild swaps in a
    folder with its own lock file (which it holds too), so a lock taken on a file no longer at the path is
    retried on the one that is.
    """

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.fd: int | None = None

    def __enter__(self) -> write_lock:
        import fcntl

        self.index_dir.mkdir(parents=True, exist_ok=True)
        path = self.index_dir / LOCK
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                by = f" (pid {holder})" if holder.isdigit() else ""
                raise IndexBusy(
                    f"index {self.index_dir} is being written by another `deepsearch index`{by}; "
                    "wait for it to finish, then re-run"
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None
