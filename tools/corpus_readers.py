"""Find the files to index and turn each into documents: txt, md, html, pdf (with the `pdf` extra), json/jsonl.

Bad input never stops a run: binary, oversized, unreadable and unsupported files come back as a
`Skipped` with a reason, and the caller counts them. Text that is not UTF-8 is decoded with
replacement characters. Symlinks are followed, but each real directory is walked once, so a link
loop ends. A symlink inside a folder that leads outside every folder being indexed is skipped
("symlink outside the indexed folders") unless `follow_external_symlinks`: indexing ~/notes must not
read ~/.ssh through a link someone left there. A file named on the command line is always read.
HTML is extracted in the hard-timeout worker pool (worker_pool.py), as fetched pages are: a page that
sends trafilatura into a loop costs `timeout_s` and a worker, not the whole run.
JSONL and Parquet corpora are streamed (`stream_records`): read in batches of records from a position
(a byte offset, a record number), never whole, so a Wikipedia-sized dump of one file needs no more memory
than a batch, and a run that was killed resumes at the last committed batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from deepsearch.agent.errors import UsageError
from pydantic import BaseModel, Field

from .extract import extract_document
from .worker_pool import WorkerCrashed, WorkerTimeout, shared_pool

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
STREAMED_SUFFIXES = {".jsonl", ".parquet"}
CORPUS_SUFFIXES = {".json"} | STREAMED_SUFFIXES
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | CORPUS_SUFFIXES | PDF_SUFFIXES
_BINARY_SNIFF_BYTES = 8192
_HTML_WORKERS = 1  # files are read one at a time


class CorpusFields(BaseModel):
    """Which keys of a json/jsonl record hold the document id, title and text."""

    id: str = "id"
    title: str = "title"
    text: str = "text"


class SourceDocument(BaseModel):
    doc_id: str
    title: str
    text: str
    source: str = Field(description="the file path, or the record's url field when it has one")
    alt_ids: list[str] = Field(
        default_factory=list, description="ids to use, in order, when another file already holds doc_id"
    )


class Skipped(BaseModel):
    path: str
    reason: str


OUTSIDE = "symlink outside the indexed folders"


def discover_files(paths: list[Path], follow_external_symlinks: bool = False) -> tuple[list[Path], list[Skipped]]:
    """Every supported file under `paths` (sorted, each once) and the files passed over with why."""
    found: dict[Path, None] = {}
    skipped: list[Skipped] = []
    roots = None if follow_external_symlinks else [p.resolve() for p in paths if p.is_dir()]
    for path in paths:
        if not path.exists():
            what = "broken symlink" if path.is_symlink() else "no such file or directory"
            raise UsageError(f"cannot index {path}: {what}")
        if path.is_dir():
            for file in _walk(path, skipped, roots):
                found.setdefault(file, None)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            found.setdefault(path.resolve(), None)
        else:
            skipped.append(Skipped(path=str(path), reason=f"unsupported file type '{path.suffix or path.name}'"))
    return sorted(found), skipped


def _inside(real: Path, roots: list[Path] | None) -> bool:
    return roots is None or any(real.is_relative_to(r) for r in roots)


def _walk(root: Path, skipped: list[Skipped], roots: list[Path] | None) -> Iterator[Path]:
    """Files under `root`; with `roots`, links leading outside all of them are skipped, not followed."""
    seen_dirs: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = Path(dirpath).resolve()
        if real in seen_dirs:  # a symlink back to a directory already walked: stop here
            dirnames.clear()
            continue
        seen_dirs.add(real)
        kept = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            sub = Path(dirpath) / d
            if sub.is_symlink() and not _inside(sub.resolve(), roots):
                skipped.append(Skipped(path=str(sub), reason=OUTSIDE))
            else:
                kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            file = Path(dirpath) / name
            if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if not file.exists():
                skipped.append(Skipped(path=str(file), reason="unreadable: broken symlink"))
            elif not _inside(target := file.resolve(), roots):
                skipped.append(Skipped(path=str(file), reason=OUTSIDE))
            elif file.is_file():
                yield target


def read_documents(
    path: Path, data: bytes, root: Path | None, fields: CorpusFields, html_timeout_s: float = 20.0
) -> tuple[list[SourceDocument], list[Skipped]]:
    """Documents of one file's bytes. `root` makes file doc ids relative (stable when the folder moves); when
    another root's file already has that id, the root folder's name is put in front, else the full path."""
    suffix = path.suffix.lower()
    if suffix in STREAMED_SUFFIXES:  # callers stream these; read whole only when asked to
        batches = list(stream_records(path, fields, source=data))
        return [d for b in batches for d in b.docs], [s for b in batches for s in b.skipped]
    if suffix == ".json":
        return _read_corpus(path, data, fields)
    if suffix == ".pdf":
        try:
            text, title = _read_pdf(data)
        except PdfUnavailable as e:
            return [], [Skipped(path=str(path), reason=str(e))]
        except Exception as e:  # noqa: BLE001 - pypdf raises many types on damaged files
            return [], [Skipped(path=str(path), reason=f"unreadable PDF: {type(e).__name__}")]
    elif b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        return [], [Skipped(path=str(path), reason="binary content")]
    elif suffix in HTML_SUFFIXES:
        html = _read_html(path, data, html_timeout_s)
        if isinstance(html, Skipped):
            return [], [html]
        text, title = html
    else:
        text = data.decode("utf-8", errors="replace")
        title = _markdown_title(text) if suffix in {".md", ".markdown"} else ""
    if not text.strip():
        return [], [Skipped(path=str(path), reason="no text")]
    alt_ids: list[str] = []
    if root and path.is_relative_to(root):
        doc_id = path.relative_to(root).as_posix()
        alt_ids = [f"{root.name}/{doc_id}", str(path)]
    else:
        doc_id = str(path)
    return [SourceDocument(doc_id=doc_id, title=title or path.stem, text=text, source=str(path), alt_ids=alt_ids)], []


def _markdown_title(text: str) -> str:
    for line in text.splitlines()[:50]:
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def _read_html(path: Path, data: bytes, timeout_s: float) -> tuple[str, str] | Skipped:
    """Main text and title, as fetch_page extracts them: trafilatura, then the plain lxml pass alone on a timeout."""
    pool = shared_pool(_HTML_WORKERS)
    args = (data, "html", None, path.as_uri(), "text")
    try:
        try:
            doc = pool.call_sync(extract_document, *args, timeout_s=timeout_s)
        except WorkerTimeout:
            doc = pool.call_sync(extract_document, *args, use_trafilatura=False, timeout_s=timeout_s)
    except WorkerTimeout:
        return Skipped(path=str(path), reason=f"extraction timed out: HTML, {timeout_s:g} s hard limit")
    except WorkerCrashed as e:
        return Skipped(path=str(path), reason=f"unreadable HTML: {e}")
    return doc.text, doc.title


class PdfUnavailable(Exception):
    pass


def _read_pdf(data: bytes) -> tuple[str, str]:
    try:
        import pypdf
    except ImportError:
        raise PdfUnavailable("no PDF parser installed (pip install 'deepsearch[pdf]')") from None
    import io

    reader = pypdf.PdfReader(io.BytesIO(data))
    pages = [page.extract_text() or "" for page in reader.pages]
    title = str((reader.metadata or {}).get("/Title") or "")
    return "\n\n".join(pages), title


def _read_corpus(path: Path, data: bytes, fields: CorpusFields) -> tuple[list[SourceDocument], list[Skipped]]:
    """A .json file: one record or a list of them."""
    try:
        loaded = json.loads(data.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as e:
        return [], [Skipped(path=str(path), reason=f"invalid JSON: {_json_problem(e)}")]
    items = loaded if isinstance(loaded, list) else [loaded]
    docs, skipped = _documents([(f"{path}[{i}]", item) for i, item in enumerate(items)], fields, str(path))
    if not docs and not skipped:
        skipped.append(Skipped(path=str(path), reason="no records"))
    return docs, skipped


def _documents(
    records: list[tuple[str, object]], fields: CorpusFields, default_source: str
) -> tuple[list[SourceDocument], list[Skipped]]:
    docs: list[SourceDocument] = []
    skipped: list[Skipped] = []
    for where, record in records:
        doc = _record_document(record, fields, default_source)
        if isinstance(doc, str):
            skipped.append(Skipped(path=where, reason=doc))
        else:
            docs.append(doc)
    return docs, skipped


class RecordBatch(BaseModel):
    """Documents of consecutive records, and where the next batch starts."""

    docs: list[SourceDocument]
    skipped: list[Skipped]
    offset: int = Field(description="jsonl: byte offset after the batch; parquet: records read")
    record: int = Field(description="records (jsonl: lines) read so far, for messages")
    bytes_read: int = Field(description="for progress: bytes of the file behind this batch (parquet: estimated)")


def stream_records(
    path: Path,
    fields: CorpusFields,
    offset: int = 0,
    record: int = 0,
    batch_records: int = 2000,
    source: bytes | None = None,
) -> Iterator[RecordBatch]:
    """Batches of a .jsonl or .parquet corpus from `offset` on (`source`: the file's bytes, already read)."""
    if path.suffix.lower() == ".parquet":
        yield from _stream_parquet(path, fields, offset, batch_records)
        return
    import io

    with io.BytesIO(source) if source is not None else path.open("rb") as f:
        f.seek(offset)
        records: list[tuple[str, object]] = []
        skipped: list[Skipped] = []
        for line in f:
            record += 1
            if line.strip():
                try:
                    records.append((f"{path}:{record}", json.loads(line.decode("utf-8", errors="replace"))))
                except (ValueError, RecursionError) as e:
                    skipped.append(Skipped(path=f"{path}:{record}", reason=f"invalid JSON: {_json_problem(e)}"))
            if len(records) + len(skipped) >= batch_records:
                docs, bad = _documents(records, fields, str(path))
                position = f.tell()
                yield RecordBatch(docs=docs, skipped=skipped + bad, offset=position, record=record, bytes_read=position)
                records, skipped = [], []
        docs, bad = _documents(records, fields, str(path))
        position = f.tell()
        yield RecordBatch(docs=docs, skipped=skipped + bad, offset=position, record=record, bytes_read=position)


def _stream_parquet(path: Path, fields: CorpusFields, start: int, batch_records: int) -> Iterator[RecordBatch]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"cannot read {path}: Parquet needs pyarrow (pip install 'deepsearch[parquet]')") from None
    try:
        reader = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError and more on a damaged file
        yield RecordBatch(docs=[], skipped=[Skipped(path=str(path), reason=f"unreadable Parquet: {e}")], offset=0,
                          record=0, bytes_read=0)  # fmt: skip
        return
    names = set(reader.schema_arrow.names)
    columns = [c for c in dict.fromkeys([fields.id, fields.title, fields.text, "url"]) if c in names]
    total, size, seen = max(reader.metadata.num_rows, 1), path.stat().st_size, 0
    for batch in reader.iter_batches(batch_size=batch_records, columns=columns):
        first, seen = seen, seen + batch.num_rows
        if seen <= start:
            continue
        skip = max(0, start - first)
        records = [(f"{path}[{first + skip + i}]", r) for i, r in enumerate(batch.to_pylist()[skip:])]
        docs, skipped = _documents(records, fields, str(path))
        yield RecordBatch(docs=docs, skipped=skipped, offset=seen, record=seen, bytes_read=size * seen // total)


def _json_problem(e: ValueError | RecursionError) -> str:
    """Why json.loads refused: a syntax error with its line, nesting too deep, or a number too long."""
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} at line {e.lineno}"
    return "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]


def _record_document(record: object, fields: CorpusFields, default_source: str) -> SourceDocument | str:
    """The record as a document, or why it cannot be one."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    missing = [f for f in (fields.id, fields.text) if record.get(f) in (None, "")]
    if missing:
        return f"record lacks field(s) {', '.join(missing)} (set --id-field/--text-field)"
    text = record[fields.text]
    if isinstance(text, list):  # e.g. a list of sentences
        text = " ".join(str(t) for t in text)
    url = record.get("url")
    return SourceDocument(
        doc_id=str(record[fields.id]),
        title=str(record.get(fields.title) or ""),
        text=str(text),
        source=url if isinstance(url, str) and url else default_source,
    )
