"""Build and incrementally update a persistent local index (see index_store.py for the layout).

A file whose size and mtime are what the store recorded (and that was not modified within a second of
being read, when the same size could hide a change) is skipped without being read; any other file is
hashed, and an unchanged hash is skipped too. In a changed file each document is compared with the one
stored under its id (a digest of title, source and text): unchanged documents are kept as they are, so
editing one record of a large JSONL re-chunks and re-embeds that record only. Documents the file no
longer has, and files that are gone (or no longer found under a root being indexed), are removed.

Small files are committed one transaction each. JSONL and Parquet corpora are streamed in batches of
records, each committed with the position after it, so a killed run resumes at the last batch and every
record lands exactly once; such files are exempt from `max_file_bytes`. search/ (BM25 and vectors)
follows the store incrementally (search_sync.py): after every `commit_chunks` changed chunks, so a long
ingestion is searchable throughout, and at the end.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepsearch.agent.config import IndexSettings
from deepsearch.agent.errors import UsageError
from pydantic import BaseModel, Field

from . import index_store as store
from .chunking import ChunkingOptions, chunk_text
from .corpus_readers import (
    OUTSIDE,
    STREAMED_SUFFIXES,
    CorpusFields,
    Skipped,
    SourceDocument,
    discover_files,
    read_documents,
    stream_records,
)
from .search_sync import open_writer, sync, text_for_retrieval

__all__ = ["IndexOptions", "IndexReport", "Progress", "text_for_retrieval", "update_index"]

STEMMER_LANGUAGE = "english"
_RACY_NS = 1_000_000_000  # a file modified within this of being read may change again without changing its mtime
_HASH_BLOCK = 4 * 2**20


class IndexOptions(BaseModel):
    chunking: ChunkingOptions = ChunkingOptions()
    max_file_bytes: int = Field(64 * 2**20, description="files read whole (not jsonl/parquet) over this are skipped")
    fields: CorpusFields = CorpusFields()
    dense: bool = True
    follow_external_symlinks: bool = False
    html_timeout_s: float = Field(20.0, gt=0, description="hard limit per HTML extraction; the worker is killed")
    commit_chunks: int = Field(50_000, ge=1, description="changed chunks between two syncs of search/")
    batch_records: int = Field(2_000, ge=1, description="records of a streamed corpus per transaction")

    @classmethod
    def from_settings(cls, s: IndexSettings) -> IndexOptions:
        return cls(
            chunking=ChunkingOptions(max_tokens=s.chunk_tokens, overlap_tokens=s.overlap_tokens),
            max_file_bytes=int(s.max_file_mb * 2**20),
            fields=CorpusFields(id=s.id_field, title=s.title_field, text=s.text_field),
            dense=s.dense,
            follow_external_symlinks=s.follow_external_symlinks,
            commit_chunks=s.commit_chunks,
        )


class IndexReport(BaseModel):
    index_dir: str
    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    documents_kept: int = Field(0, description="documents of changed files that were unchanged, so not re-read")
    syncs: int = Field(0, description="times search/ was brought up to the store")
    skipped: list[Skipped] = Field(default_factory=list)
    counts: store.IndexCounts = store.IndexCounts()
    dense_model: str | None = None
    seconds: float = 0.0

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s.reason.split(":")[0] for s in self.skipped))


@dataclass
class Progress:
    """Where a run is, for a progress bar: bytes of all the files to look at, and documents read."""

    bytes_done: int
    bytes_total: int
    documents: int
    path: str


def stemmer(name: str | None):
    if name is None:
        return None
    import Stemmer

    return Stemmer.Stemmer(name)


def _default_stemmer() -> str | None:
    try:
        import Stemmer  # noqa: F401
    except ImportError:
        return None
    return STEMMER_LANGUAGE


ProgressFn = Callable[[int, int, str], None]
TickFn = Callable[[Progress], None]


def update_index(
    index_dir: Path,
    paths: list[Path],
    options: IndexOptions | None = None,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    tick: TickFn | None = None,
) -> IndexReport:
    """Index `paths` into `index_dir`, creating it if needed; `rebuild` builds a new index beside the old one and
    swaps it in whole. Only a folder holding a deepsearch index is ever replaced, and one writer at a time.
    `progress(n, total, path)` is called per file, `tick` after each file and each batch of a streamed one."""
    started = time.perf_counter()
    options = options or IndexOptions()
    store.check_target(index_dir, rebuild)  # before anything is read, created, locked or deleted
    files, skipped = discover_files(paths, options.follow_external_symlinks)
    run = _Run(paths, files, skipped, options, progress, tick)
    try:
        with store.write_lock(index_dir):
            if rebuild and any(p.name != store.LOCK for p in index_dir.iterdir()):
                report = _rebuild_beside(index_dir, run)
            else:
                report = run.update(index_dir)
    except (OSError, sqlite3.OperationalError) as e:  # read-only folder, disk full: nothing half-written is used
        raise store.unwritable(index_dir, e) from None
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _rebuild_beside(index_dir: Path, run: _Run) -> IndexReport:
    """Build into a hidden sibling folder, then swap it in whole: searchers keep the old index until that moment,
    and a build that fails leaves it as it was."""
    target = index_dir.resolve()  # through a symlink: swap the folder it names, not the link
    fresh = store.rebuild_folder(target)
    with store.write_lock(fresh):  # the lock of index_dir once swapped in, so a second writer meets it either way
        try:
            report = run.update(fresh)
            store.swap_dirs(fresh, target)
        finally:
            store.remove_index(fresh)  # the half-built index on failure, the previous one after the swap
    return report.model_copy(update={"index_dir": str(index_dir)})


@dataclass
class _Known:
    sha256: str
    size: int
    mtime_ns: int
    read_ns: int

    def unchanged(self, st) -> bool:
        """Same size and mtime, and the mtime was already old when the file was read (else it could have changed
        again within the file system's timestamp granularity)."""
        return (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns) and self.mtime_ns < self.read_ns - _RACY_NS


class _Run:
    def __init__(self, paths, files, skipped, options, progress, tick):
        self.paths, self.files, self.skipped, self.options = paths, files, skipped, options
        self.progress, self.tick = progress, tick

    def update(self, index_dir: Path) -> IndexReport:
        self.index_dir = index_dir
        self.roots = [p.resolve() for p in self.paths if p.is_dir()]
        manifest = self.manifest = _open_or_create(index_dir, self.options)
        self.embedder = _embedder_for(manifest, index_dir)
        self.chunking = ChunkingOptions(max_tokens=manifest.chunk_tokens, overlap_tokens=manifest.overlap_tokens)
        report = self.report = IndexReport(
            index_dir=str(index_dir), skipped=list(self.skipped), dense_model=manifest.dense_model
        )
        self.unsynced, self.writer = 0, None
        # Set before the store changes, cleared once search/ and the manifest match it: a run cut short (kill,
        # disk full) leaves it, and the next run syncs search/ even when every file is then unchanged.
        stale = index_dir / store.STALE
        was_stale = stale.exists()
        stale.touch()
        conn = self.conn = store.connect(index_dir, create=True)
        try:
            known = {
                path: _Known(*rest)
                for path, *rest in conn.execute("SELECT path, sha256, size, mtime_ns, read_ns FROM sources")
            }
            self._remove_gone(known)
            self.sizes = {}
            for file in self.files:
                try:
                    self.sizes[file] = file.stat().st_size
                except OSError:
                    self.sizes[file] = 0
            self.bytes_total, self.bytes_done, self.documents = sum(self.sizes.values()), 0, 0
            for n, file in enumerate(self.files, 1):
                if self.progress:
                    self.progress(n, len(self.files), str(file))
                self._index_file(file, known.get(str(file)))
                self.bytes_done += self.sizes[file]
                self._tick(str(file), 0)
            given = {str(p.resolve() if p.is_dir() else p.resolve().parent) for p in self.paths}
            manifest.roots = sorted(set(manifest.roots) | given)
            synced = (index_dir / store.SEARCH_DIR / store.SEARCH_META).is_file()
            if self.unsynced or was_stale or not manifest.search_id or not synced:
                self._publish()
            else:
                manifest.counts, manifest.updated_at = store.count(conn), store.now_iso()
                store.write_manifest(index_dir, manifest)
            report.counts = manifest.counts
            if self.writer is not None:
                self.writer.close()  # waits for tantivy's merges: the next run starts with few segments
        except BaseException:
            if self.writer is not None:
                self.writer.abandon()
            raise
        finally:
            conn.close()
        stale.unlink()
        return report

    def _tick(self, path: str, bytes_in_file: int) -> None:
        if self.tick:
            self.tick(Progress(self.bytes_done + bytes_in_file, self.bytes_total, self.documents, path))

    def _remove_gone(self, known: dict[str, _Known]) -> None:
        found = {str(f) for f in self.files}
        # Files once read through a link that now leads outside the folders (see discover_files) go too.
        outside = [Path(s.path).resolve() for s in self.skipped if s.reason == OUTSIDE]
        for path in known:
            if path not in found and (
                not Path(path).exists() or any(Path(path).is_relative_to(r) for r in [*self.roots, *outside])
            ):
                with self.conn:
                    n = _remove_source(self.conn, path)
                self._changed(n)
                self.report.files_removed += 1

    def _changed(self, chunks: int) -> None:
        """Count chunks added or removed; sync search/ once enough have piled up."""
        self.unsynced += chunks
        if self.unsynced >= self.options.commit_chunks:
            self._publish()

    def _publish(self) -> None:
        """Sync search/ to the store as a new generation, then point the manifest at it."""
        manifest = self.manifest
        manifest.counts, manifest.updated_at = store.count(self.conn), store.now_iso()
        manifest.build_id = manifest.build_id or store.new_id()
        manifest.search_id, manifest.generation = store.new_id(), manifest.generation + 1
        new_manifest = store.prepare_manifest(self.index_dir, manifest)
        try:
            self.writer = self.writer or open_writer(self.index_dir, manifest)
            sync(self.index_dir, self.conn, manifest, self.embedder, self.writer)
        except BaseException:
            new_manifest.unlink(missing_ok=True)
            self.writer = None  # sync abandoned it
            raise
        store.commit_manifest(self.index_dir, new_manifest)  # renames only from the sync's commit on: no space needed
        self.unsynced = 0
        self.report.syncs += 1

    def _index_file(self, file: Path, known: _Known | None) -> None:
        report, options = self.report, self.options
        read_ns = time.time_ns()
        try:
            st = file.stat()
        except OSError as e:
            report.skipped.append(Skipped(path=str(file), reason=f"unreadable: {e.strerror or e}"))
            return
        if known is not None and known.unchanged(st):
            report.files_unchanged += 1
            return
        streamed = file.suffix.lower() in STREAMED_SUFFIXES
        if not streamed and st.st_size > options.max_file_bytes:
            report.skipped.append(Skipped(path=str(file), reason=f"oversized: {st.st_size / 2**20:.1f} MiB"))
            return
        try:
            data = None if streamed else file.read_bytes()
            digest = _sha256_file(file) if streamed else hashlib.sha256(data).hexdigest()
        except OSError as e:
            report.skipped.append(Skipped(path=str(file), reason=f"unreadable: {e.strerror or e}"))
            return
        source_row = (digest, st.st_size, store.now_iso(), st.st_mtime_ns, read_ns, str(file))
        if known is not None and digest == known.sha256:  # touched, not changed: remember the new mtime
            with self.conn:
                self.conn.execute(
                    "UPDATE sources SET sha256 = ?, size = ?, indexed_at = ?, mtime_ns = ?, read_ns = ? WHERE path = ?",
                    source_row,
                )
            report.files_unchanged += 1
            return
        if streamed:
            found = self._stream_file(file, st, digest, read_ns)
        else:
            root = next((r for r in self.roots if file.is_relative_to(r)), None)
            docs, doc_skips = read_documents(file, data, root, options.fields, options.html_timeout_s)
            report.skipped.extend(doc_skips)
            self.documents += len(docs)
            found = bool(docs)
            if docs:
                pass_id = time.time_ns()
                with self.conn:  # one transaction per file: its documents, chunks and hash land together
                    n = _apply_documents(self.conn, str(file), docs, pass_id, self.chunking, report)
                    n += self._finish_file(str(file), source_row, pass_id)
                self._changed(n)
        if not found:  # nothing usable (binary, empty, all records bad): not recorded, so it is re-checked next run
            if known is not None:
                with self.conn:
                    n = _remove_source(self.conn, str(file))
                self._changed(n)
                report.files_removed += 1
            return
        if known is None:
            report.files_added += 1
        else:
            report.files_updated += 1

    def _finish_file(self, path: str, source_row: tuple, pass_id: int) -> int:
        """Within the file's last transaction: drop what it no longer holds, record its hash; returns chunks dropped."""
        removed = _remove_unseen(self.conn, path, pass_id)
        self.conn.execute("DELETE FROM partial WHERE path = ?", (path,))
        self.conn.execute(
            "INSERT OR REPLACE INTO sources(sha256, size, indexed_at, mtime_ns, read_ns, path) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            source_row,
        )
        return removed

    def _stream_file(self, file: Path, st, digest: str, read_ns: int) -> bool:
        """Read a jsonl/parquet corpus batch by batch from where a killed run stopped; True if it had documents."""
        conn, report, path = self.conn, self.report, str(file)
        resume = conn.execute(
            "SELECT offset, record, pass FROM partial WHERE path = ? AND size = ? AND mtime_ns = ?",
            (path, st.st_size, st.st_mtime_ns),
        ).fetchone()
        offset, record, pass_id = resume or (0, 0, time.time_ns())
        found = resume is not None  # documents of the batches before the kill are in the store
        for batch in stream_records(file, self.options.fields, offset, record, self.options.batch_records):
            report.skipped.extend(batch.skipped)
            found = found or bool(batch.docs)
            with conn:  # the batch and the position after it land together: a kill re-reads at most one batch
                n = _apply_documents(conn, path, batch.docs, pass_id, self.chunking, report)
                conn.execute(
                    "INSERT OR REPLACE INTO partial(path, size, mtime_ns, offset, record, pass) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (path, st.st_size, st.st_mtime_ns, batch.offset, batch.record, pass_id),
                )
            self.documents += len(batch.docs)
            self._changed(n)
            self._tick(path, batch.bytes_read)
        if not found:
            if not any(s.path.startswith(path) for s in report.skipped):
                report.skipped.append(Skipped(path=path, reason="no records"))
            with conn:
                conn.execute("DELETE FROM partial WHERE path = ?", (path,))
            return False
        with conn:
            n = self._finish_file(path, (digest, st.st_size, store.now_iso(), st.st_mtime_ns, read_ns, path), pass_id)
        self._changed(n)
        return True


def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _open_or_create(index_dir: Path, options: IndexOptions) -> store.Manifest:
    if (index_dir / store.MANIFEST).exists():
        return store.read_manifest(index_dir)
    if any(p.name != store.LOCK for p in index_dir.iterdir()):  # check_target let it through: a race, or a bug
        raise UsageError(f"{index_dir} is a non-empty folder that is not a deepsearch index; choose another --index")
    from .dense import MODEL_NAME, dense_installed, load_embedder

    use_dense = options.dense and dense_installed()
    manifest = store.Manifest(
        created_at=store.now_iso(),
        updated_at=store.now_iso(),
        chunk_tokens=options.chunking.max_tokens,
        overlap_tokens=options.chunking.overlap_tokens,
        stemmer=_default_stemmer(),
        dense_model=MODEL_NAME if use_dense else None,
        dense_dim=load_embedder().dim if use_dense else None,
        build_id=store.new_id(),
        tantivy_version=_tantivy_version(),
    )
    store.write_manifest(index_dir, manifest)  # first: from now on the folder says it is an index
    return manifest


def _tantivy_version() -> str:
    from importlib.metadata import version

    return version("tantivy")


def _embedder_for(manifest: store.Manifest, index_dir: Path):
    if manifest.dense_model is None:
        return None
    from .dense import MODEL_NAME, DenseUnavailable, load_embedder

    if manifest.dense_model != MODEL_NAME:
        raise store.corrupt(index_dir, f"built with dense model {manifest.dense_model}, this version has {MODEL_NAME}")
    try:
        return load_embedder()
    except DenseUnavailable:
        raise UsageError(
            f"index {index_dir} has dense vectors ({manifest.dense_model}) but the dense extra is not installed: "
            "pip install 'deepsearch[dense]', or re-run with --rebuild --no-dense"
        ) from None


def _digest(doc: SourceDocument) -> str:
    return hashlib.blake2b(f"{doc.title}\0{doc.source}\0{doc.text}".encode(), digest_size=16).hexdigest()


def _drop_rows(conn: sqlite3.Connection, where: str, args: tuple) -> int:
    """Delete chunks (of documents matching `where`), remembering their rows for search/; returns how many."""
    chunk_rows = f"SELECT row FROM chunks WHERE doc_id IN (SELECT doc_id FROM documents WHERE {where})"
    cur = conn.execute(f"INSERT OR IGNORE INTO dropped(row) {chunk_rows}", args)
    conn.execute(f"DELETE FROM chunks WHERE doc_id IN (SELECT doc_id FROM documents WHERE {where})", args)
    conn.execute(f"DELETE FROM documents WHERE {where}", args)
    return cur.rowcount


def _remove_source(conn: sqlite3.Connection, path: str) -> int:
    removed = _drop_rows(conn, "source_path = ?", (path,))
    conn.execute("DELETE FROM sources WHERE path = ?", (path,))
    conn.execute("DELETE FROM partial WHERE path = ?", (path,))
    return removed


def _remove_unseen(conn: sqlite3.Connection, path: str, pass_id: int) -> int:
    return _drop_rows(conn, "source_path = ? AND pass != ?", (path, pass_id))


def _apply_documents(
    conn: sqlite3.Connection,
    path: str,
    docs: list[SourceDocument],
    pass_id: int,
    chunking: ChunkingOptions,
    report: IndexReport,
) -> int:
    """Keep the file's unchanged documents, replace its changed ones, insert new ones; returns chunks changed."""
    changed = 0
    fresh: list[tuple[str, SourceDocument, str]] = []
    pending: set[str] = set()
    for doc in docs:
        digest = _digest(doc)
        for candidate in (doc.doc_id, *doc.alt_ids):
            held = conn.execute(
                "SELECT source_path, digest, pass FROM documents WHERE doc_id = ?", (candidate,)
            ).fetchone()
            if held is None:
                if candidate in pending:  # an earlier record of this batch has the id
                    continue
                pending.add(candidate)
                fresh.append((candidate, doc, digest))
                break
            if held[0] == path and held[2] != pass_id:  # this file's document from an earlier pass
                if held[1] == digest:
                    conn.execute("UPDATE documents SET pass = ? WHERE doc_id = ?", (pass_id, candidate))
                    report.documents_kept += 1
                else:
                    changed += _drop_rows(conn, "doc_id = ?", (candidate,))
                    fresh.append((candidate, doc, digest))
                break
        else:
            held = conn.execute("SELECT source_path FROM documents WHERE doc_id = ?", (doc.doc_id,)).fetchone()
            owner = held[0] if held else path
            report.skipped.append(Skipped(path=doc.source, reason=f"duplicate id: '{doc.doc_id}' from {owner}"))
    return changed + _insert_documents(conn, path, fresh, pass_id, chunking, report)


def _insert_documents(
    conn: sqlite3.Connection,
    path: str,
    docs: list[tuple[str, SourceDocument, str]],
    pass_id: int,
    chunking: ChunkingOptions,
    report: IndexReport,
) -> int:
    """Insert (doc id, document, digest) and their chunks; returns how many chunks."""
    doc_rows, chunk_rows = [], []
    for doc_id, doc, digest in docs:
        chunks = chunk_text(doc_id, doc.text, chunking)
        doc_rows.append((doc_id, path, doc.title, doc.source, len(chunks), digest, pass_id))
        chunk_rows.extend(
            (c.chunk_id, c.doc_id, c.ordinal, c.text, c.start, c.end, c.tokens, c.prev_id, c.next_id) for c in chunks
        )
    conn.executemany(
        "INSERT INTO documents(doc_id, source_path, title, source, n_chunks, digest, pass) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        doc_rows,
    )
    conn.executemany(
        'INSERT INTO chunks(chunk_id, doc_id, ordinal, text, start, "end", tokens, prev_id, next_id) '
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        chunk_rows,
    )
    report.chunks_added += len(chunk_rows)
    return len(chunk_rows)
