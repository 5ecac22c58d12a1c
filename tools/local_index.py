"""Build and incrementally update a persistent local index (see index_store.py for the layout).

Each file is hashed; an unchanged hash is skipped, a changed file's documents are replaced, and a
file that is gone (or no longer found under a root being indexed) is removed. Every file is committed
in its own transaction with its source hash, so an interrupted run resumes where it stopped. BM25
(bm25s, English stopwords and Snowball stemming) is rebuilt from the store after any change: it has
no incremental update, and rebuilding from stored text is cheap next to reading and embedding.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from deepsearch.agent.config import IndexSettings
from deepsearch.agent.errors import UsageError
from pydantic import BaseModel, Field

from . import index_store as store
from .chunking import ChunkingOptions, chunk_text
from .corpus_readers import OUTSIDE, CorpusFields, Skipped, SourceDocument, discover_files, read_documents

STEMMER_LANGUAGE = "english"
_EMBED_BATCH = 1024


class IndexOptions(BaseModel):
    chunking: ChunkingOptions = ChunkingOptions()
    max_file_bytes: int = 64 * 2**20
    fields: CorpusFields = CorpusFields()
    dense: bool = True
    follow_external_symlinks: bool = False
    html_timeout_s: float = Field(20.0, gt=0, description="hard limit per HTML extraction; the worker is killed")

    @classmethod
    def from_settings(cls, s: IndexSettings) -> IndexOptions:
        return cls(
            chunking=ChunkingOptions(max_tokens=s.chunk_tokens, overlap_tokens=s.overlap_tokens),
            max_file_bytes=int(s.max_file_mb * 2**20),
            fields=CorpusFields(id=s.id_field, title=s.title_field, text=s.text_field),
            dense=s.dense,
            follow_external_symlinks=s.follow_external_symlinks,
        )


class IndexReport(BaseModel):
    index_dir: str
    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    skipped: list[Skipped] = Field(default_factory=list)
    counts: store.IndexCounts = store.IndexCounts()
    dense_model: str | None = None
    seconds: float = 0.0

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s.reason.split(":")[0] for s in self.skipped))


def text_for_retrieval(title: str, text: str) -> str:
    """What BM25 and the embedder see: the title carries the entity a passage is about."""
    return f"{title}. {text}" if title else text


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


def update_index(
    index_dir: Path,
    paths: list[Path],
    options: IndexOptions | None = None,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
) -> IndexReport:
    """Index `paths` into `index_dir`, creating it if needed; `rebuild` builds a new index beside the old one and
    swaps it in whole. Only a folder holding a deepsearch index is ever replaced, and one writer at a time."""
    started = time.perf_counter()
    options = options or IndexOptions()
    store.check_target(index_dir, rebuild)  # before anything is read, created, locked or deleted
    files, skipped = discover_files(paths, options.follow_external_symlinks)
    try:
        with store.write_lock(index_dir):
            if rebuild and any(p.name != store.LOCK for p in index_dir.iterdir()):
                report = _rebuild_beside(index_dir, paths, files, skipped, options, progress)
            else:
                report = _update(index_dir, paths, files, skipped, options, progress)
    except (OSError, sqlite3.OperationalError) as e:  # read-only folder, disk full: nothing half-written is used
        raise store.unwritable(index_dir, e) from None
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _rebuild_beside(
    index_dir: Path,
    paths: list[Path],
    files: list[Path],
    skipped: list[Skipped],
    options: IndexOptions,
    progress: ProgressFn | None,
) -> IndexReport:
    """Build into a hidden sibling folder, then swap it in whole: searchers keep the old index until that moment,
    and a build that fails leaves it as it was."""
    target = index_dir.resolve()  # through a symlink: swap the folder it names, not the link
    fresh = store.rebuild_folder(target)
    with store.write_lock(fresh):  # the lock of index_dir once swapped in, so a second writer meets it either way
        try:
            report = _update(fresh, paths, files, skipped, options, progress)
            store.swap_dirs(fresh, target)
        finally:
            store.remove_index(fresh)  # the half-built index on failure, the previous one after the swap
    return report.model_copy(update={"index_dir": str(index_dir)})


def _update(
    index_dir: Path,
    paths: list[Path],
    files: list[Path],
    skipped: list[Skipped],
    options: IndexOptions,
    progress: ProgressFn | None,
) -> IndexReport:
    roots = [p.resolve() for p in paths if p.is_dir()]
    manifest = _open_or_create(index_dir, options)
    embedder = _embedder_for(manifest, index_dir)
    chunking = ChunkingOptions(max_tokens=manifest.chunk_tokens, overlap_tokens=manifest.overlap_tokens)
    report = IndexReport(index_dir=str(index_dir), skipped=list(skipped), dense_model=manifest.dense_model)

    # Set before the store changes, cleared once search/ and the manifest match it: a run cut short (kill,
    # disk full) leaves it, and the next run rebuilds search/ even when every file is then unchanged.
    stale = index_dir / store.STALE
    was_stale = stale.exists()
    stale.touch()
    conn = store.connect(index_dir, create=True)
    try:
        known = dict(conn.execute("SELECT path, sha256 FROM sources").fetchall())
        found = {str(f) for f in files}
        # Files once read through a link that now leads outside the folders (see discover_files) go too.
        outside = [Path(s.path).resolve() for s in skipped if s.reason == OUTSIDE]
        for path in known:
            if path not in found and (
                not Path(path).exists() or any(Path(path).is_relative_to(r) for r in [*roots, *outside])
            ):
                with conn:
                    _remove_source(conn, path)
                report.files_removed += 1
        for n, file in enumerate(files, 1):
            if progress:
                progress(n, len(files), str(file))
            _index_file(conn, file, known.get(str(file)), roots, options, chunking, embedder, report)
        changed = report.files_added or report.files_updated or report.files_removed
        # An index from before build and search ids gets search/meta.json now, so searchers can follow it.
        rewrite = changed or was_stale or not manifest.search_id or not (index_dir / store.SEARCH_DIR).is_dir()
        report.counts = store.count(conn)
        manifest.counts, manifest.updated_at = report.counts, store.now_iso()
        given = {str(p.resolve() if p.is_dir() else p.resolve().parent) for p in paths}
        manifest.roots = sorted(set(manifest.roots) | given)
        if rewrite:
            manifest.build_id = manifest.build_id or store.new_id()
            manifest.search_id, manifest.generation = store.new_id(), manifest.generation + 1
            manifest.bm25s_version = _bm25s_version()
        new_manifest = store.prepare_manifest(index_dir, manifest)
        try:
            if rewrite:
                build_search_artifacts(index_dir, conn, manifest)
        except BaseException:
            new_manifest.unlink(missing_ok=True)
            raise
        store.commit_manifest(index_dir, new_manifest)  # renames only from the swap of search/ on: no space needed
    finally:
        conn.close()
    stale.unlink()
    return report


def _bm25s_version() -> str:
    from importlib.metadata import version

    return version("bm25s")


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
    )
    store.write_manifest(index_dir, manifest)  # first: from now on the folder says it is an index
    return manifest


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


def _index_file(
    conn: sqlite3.Connection,
    file: Path,
    known_hash: str | None,
    roots: list[Path],
    options: IndexOptions,
    chunking: ChunkingOptions,
    embedder,
    report: IndexReport,
) -> None:
    try:
        size = file.stat().st_size
        if size > options.max_file_bytes:
            report.skipped.append(Skipped(path=str(file), reason=f"oversized: {size / 2**20:.1f} MiB"))
            return
        data = file.read_bytes()
    except OSError as e:
        report.skipped.append(Skipped(path=str(file), reason=f"unreadable: {e.strerror or e}"))
        return
    digest = hashlib.sha256(data).hexdigest()
    if digest == known_hash:
        report.files_unchanged += 1
        return
    root = next((r for r in roots if file.is_relative_to(r)), None)
    docs, doc_skips = read_documents(file, data, root, options.fields, options.html_timeout_s)
    report.skipped.extend(doc_skips)
    if not docs:  # nothing usable (binary, empty, all records bad): not recorded, so it is re-checked next run
        if known_hash is not None:
            with conn:
                _remove_source(conn, str(file))
            report.files_removed += 1
        return
    with conn:  # one transaction per file: its documents, chunks, vectors and hash land together
        _remove_source(conn, str(file))
        new_rows = _insert_documents(conn, str(file), docs, chunking, report)
        if embedder is not None and new_rows:
            _embed_rows(conn, new_rows, embedder)
        conn.execute(
            "INSERT INTO sources(path, sha256, size, indexed_at) VALUES (?, ?, ?, ?)",
            (str(file), digest, size, store.now_iso()),
        )
    if known_hash is None:
        report.files_added += 1
    else:
        report.files_updated += 1


def _remove_source(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("DELETE FROM chunks WHERE doc_id IN (SELECT doc_id FROM documents WHERE source_path = ?)", (path,))
    conn.execute("DELETE FROM documents WHERE source_path = ?", (path,))
    conn.execute("DELETE FROM sources WHERE path = ?", (path,))


def _insert_documents(
    conn: sqlite3.Connection, path: str, docs: list[SourceDocument], chunking: ChunkingOptions, report: IndexReport
) -> list[tuple[int, str]]:
    """Insert documents and their chunks; returns (row, retrieval text) of the new chunks."""
    new_rows: list[tuple[int, str]] = []
    for doc in docs:
        doc_id = _free_id(conn, doc)
        if doc_id is None:
            (owner,) = conn.execute("SELECT source_path FROM documents WHERE doc_id = ?", (doc.doc_id,)).fetchone()
            report.skipped.append(Skipped(path=doc.source, reason=f"duplicate id: '{doc.doc_id}' from {owner}"))
            continue
        chunks = chunk_text(doc_id, doc.text, chunking)
        conn.execute(
            "INSERT INTO documents(doc_id, source_path, title, source, n_chunks) VALUES (?, ?, ?, ?, ?)",
            (doc_id, path, doc.title, doc.source, len(chunks)),
        )
        for c in chunks:
            cur = conn.execute(
                'INSERT INTO chunks(chunk_id, doc_id, ordinal, text, start, "end", tokens, prev_id, next_id) '
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.chunk_id, c.doc_id, c.ordinal, c.text, c.start, c.end, c.tokens, c.prev_id, c.next_id),
            )
            new_rows.append((cur.lastrowid, text_for_retrieval(doc.title, c.text)))
        report.chunks_added += len(chunks)
    return new_rows


def _free_id(conn: sqlite3.Connection, doc: SourceDocument) -> str | None:
    """The document's id, or the first of its fallbacks no other document holds (README.md in a second root)."""
    for candidate in (doc.doc_id, *doc.alt_ids):
        if conn.execute("SELECT 1 FROM documents WHERE doc_id = ?", (candidate,)).fetchone() is None:
            return candidate
    return None


def _embed_rows(conn: sqlite3.Connection, rows: list[tuple[int, str]], embedder) -> None:
    for i in range(0, len(rows), _EMBED_BATCH):
        batch = rows[i : i + _EMBED_BATCH]
        vectors = embedder.embed([text for _, text in batch]).astype(np.float16)
        conn.executemany(
            "UPDATE chunks SET vector = ? WHERE row = ?",
            [(v.tobytes(), r) for (r, _), v in zip(batch, vectors, strict=True)],
        )


def build_search_artifacts(index_dir: Path, conn: sqlite3.Connection, manifest: store.Manifest) -> None:
    """Write bm25s, row ids, the dense matrix and meta.json to search.new/, then swap it in for search/."""
    new, current = index_dir / f"{store.SEARCH_DIR}.new", index_dir / store.SEARCH_DIR
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(index_dir / f"{store.SEARCH_DIR}.old", ignore_errors=True)  # from a version that swapped by renames
    new.mkdir()
    try:
        chunks = _write_search_files(new, conn, manifest.stemmer, manifest.dense_dim)
        meta = store.SearchMeta(build_id=manifest.build_id, search_id=manifest.search_id, chunks=chunks)
        store.write_search_meta(new, meta)
    except BaseException:  # e.g. disk full: search/ is untouched, and the partial copy gives its space back
        shutil.rmtree(new, ignore_errors=True)
        raise
    if current.exists():
        store.swap_dirs(new, current)  # a searcher opening search/ meets the old files or the new, never neither
    else:
        new.rename(current)
    shutil.rmtree(new, ignore_errors=True)


def _write_search_files(new: Path, conn: sqlite3.Connection, stemmer_name: str | None, dim: int | None) -> int:
    """The search files for every chunk in the store; returns how many chunks they cover."""
    import bm25s

    rows, texts, vectors = [], [], []
    query = "SELECT c.row, d.title, c.text, c.vector FROM chunks c JOIN documents d USING (doc_id) ORDER BY c.row"
    for row, title, text, vector in conn.execute(query):
        rows.append(row)
        texts.append(text_for_retrieval(title, text))
        if dim is not None:
            vectors.append(np.frombuffer(vector, dtype=np.float16) if vector else np.zeros(dim, dtype=np.float16))
    np.save(new / "rows.npy", np.asarray(rows, dtype=np.int64))
    words = stemmer(stemmer_name)
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=words, show_progress=False) if texts else None
    if tokens is not None and tokens.vocab:  # bm25s cannot index chunks without a single word (e.g. only "{}")
        model = bm25s.BM25()
        model.index(tokens, show_progress=False)
        model.save(str(new / "bm25"))
    if dim is not None:
        np.save(new / "vectors.npy", np.vstack(vectors) if vectors else np.zeros((0, dim), dtype=np.float16))
    return len(rows)
