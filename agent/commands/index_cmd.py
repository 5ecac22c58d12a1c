"""`deepsearch index PATH...`: build or update a persistent local index (BM25, plus dense vectors with the extra)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import UsageError
from .options import ConfigOpt, JsonOpt, settings_from_cli

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

IndexOpt = Annotated[
    str | None,
    typer.Option("--index", help="Index name (a folder under index.dir) or a path to an index folder."),
]


def index_dir_from(settings, name: str | None, index: str | None) -> Path:
    from ...tools.local_search import resolve_index_dir

    if name and index:
        raise UsageError("give --name or --index, not both")
    if name is not None and not _NAME.match(name):
        raise UsageError(f"bad index name {name!r}: use letters, digits, '.', '_' and '-' (or --index DIR)")
    return resolve_index_dir(settings.index, name or index)


def index(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders: .txt .md .html .pdf (pdf extra), .json/.jsonl.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Index name (default: 'default').")] = None,
    index_opt: IndexOpt = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Build the index from scratch beside the old one, then swap it in (the old one answers searches "
            "until then). Refused for a folder that is not a deepsearch index.",
        ),
    ] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Print documents, chunks, tokens and size on disk.")] = False,
    id_field: Annotated[str | None, typer.Option(help="json/jsonl: key of the document id.")] = None,
    title_field: Annotated[str | None, typer.Option(help="json/jsonl: key of the title.")] = None,
    text_field: Annotated[str | None, typer.Option(help="json/jsonl: key of the text.")] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="Max tokens per chunk (new or rebuilt index).")] = None,
    overlap_tokens: Annotated[int | None, typer.Option(help="Overlap between chunks in tokens.")] = None,
    max_file_mb: Annotated[
        float | None,
        typer.Option(help="Skip files larger than this (MiB); .jsonl and .parquet corpora are streamed, any size."),
    ] = None,
    commit_chunks: Annotated[
        int | None,
        typer.Option(
            help="Update the search files after this many changed chunks (default 50,000), so a long run is "
            "searchable as it goes; a killed run resumes at its last committed batch of records.",
        ),
    ] = None,
    no_dense: Annotated[bool, typer.Option("--no-dense", help="BM25 only, even with the dense extra.")] = False,
    follow_external_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-external-symlinks",
            help="Also read files that symlinks inside the folders lead to outside them (skipped by default).",
        ),
    ] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Index documents for `deepsearch search` and the agent's local_search tool.

    Re-running is incremental: files whose size and mtime (else content hash) are unchanged are skipped,
    in changed files only the changed documents are re-chunked and re-embedded, and files deleted from
    disk are dropped; the search files are updated, not rebuilt. .jsonl and .parquet corpora of any size
    are streamed, and a run that was killed resumes where it stopped. Binary, oversized and unreadable
    files are skipped and counted. Chunking and the dense model are fixed when an index is created;
    change them with --rebuild. One writer at a time: a second `deepsearch index` on the same index is
    refused.

    Example: deepsearch index ~/papers notes.md --name work   |   deepsearch index --stats --name work
    """
    from ...tools.local_index import IndexOptions, update_index

    settings = settings_from_cli(
        config,
        {
            "index.id_field": id_field,
            "index.title_field": title_field,
            "index.text_field": text_field,
            "index.chunk_tokens": chunk_tokens,
            "index.overlap_tokens": overlap_tokens,
            "index.max_file_mb": max_file_mb,
            "index.dense": False if no_dense else None,
            "index.follow_external_symlinks": True if follow_external_symlinks else None,
            "index.commit_chunks": commit_chunks,
        },
    ).settings
    index_dir = index_dir_from(settings, name, index_opt)
    if not paths:
        if not stats:
            raise UsageError("nothing to index: give one or more paths (or --stats to describe an index)")
        _print_stats(index_dir, as_json)
        return
    try:
        options = IndexOptions.from_settings(settings.index)
    except ValueError as e:  # e.g. overlap >= chunk size
        raise UsageError(f"bad chunking options: {e.errors()[0]['msg'] if hasattr(e, 'errors') else e}") from None
    with _ProgressBar() as bar:
        report = update_index(index_dir, paths, options, rebuild=rebuild, tick=bar.tick)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        _print_report(report)
    if stats and not as_json:
        _print_stats(index_dir, as_json=False)


class _ProgressBar:
    """Bytes of the files looked at (what the ETA is from), documents read and documents/s, on stderr."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("indexing"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%  {task.fields[documents]:,} docs  {task.fields[rate]:,.0f} docs/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[name]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("index", total=None, documents=0, rate=0.0, name="")
        self._live = self._progress.console.is_terminal  # nothing on a pipe: stderr keeps one line per error

    def __enter__(self) -> _ProgressBar:
        import time

        self._started = time.monotonic()
        if self._live:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._progress.stop()

    def tick(self, p) -> None:
        import time

        if not self._live:
            return
        rate = p.documents / max(time.monotonic() - self._started, 1e-6)
        self._progress.update(
            self._task,
            total=max(p.bytes_total, 1),
            completed=p.bytes_done,
            documents=p.documents,
            rate=rate,
            name=escape(Path(p.path).name),
        )


def _print_report(report) -> None:
    console = Console()
    c = report.counts
    console.print(
        f"[bold]{escape(report.index_dir)}[/bold]: {report.files_added} added, {report.files_updated} updated, "
        f"{report.files_unchanged} unchanged, {report.files_removed} removed; {report.chunks_added} new chunks "
        f"in {report.seconds:.1f} s"
    )
    console.print(
        f"index holds {c.documents} documents, {c.chunks} chunks, {c.tokens} tokens from {c.sources} files; "
        f"dense: {report.dense_model or 'off (BM25 only)'}"
    )
    if report.skipped:
        by_reason = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped_by_reason().items()))
        console.print(f"[yellow]skipped {len(report.skipped)}: {escape(by_reason)}[/yellow]")
        for s in report.skipped[:10]:
            console.print(f"  [dim]{escape(s.path)}: {escape(s.reason)}[/dim]", highlight=False)
        if len(report.skipped) > 10:
            console.print(f"  [dim]… {len(report.skipped) - 10} more (see --json)[/dim]")


def _print_stats(index_dir: Path, as_json: bool) -> None:
    import json

    from ...tools import index_store as store

    if not index_dir.exists():
        raise UsageError(f"no index at {index_dir}")
    manifest = store.read_manifest(index_dir)
    data = {
        "index": str(index_dir),
        **manifest.counts.model_dump(),
        "size_bytes": store.size_on_disk(index_dir),
        "chunk_tokens": manifest.chunk_tokens,
        "overlap_tokens": manifest.overlap_tokens,
        "stemmer": manifest.stemmer,
        "dense_model": manifest.dense_model,
        "updated_at": manifest.updated_at,
        "generation": manifest.generation,
        "tantivy_version": manifest.tantivy_version,
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    Console().print(
        f"{escape(str(index_dir))}\n  documents {data['documents']}  chunks {data['chunks']}  tokens {data['tokens']}  "
        f"files {data['sources']}\n  size on disk {data['size_bytes'] / 2**20:.1f} MiB  chunking "
        f"{data['chunk_tokens']}/{data['overlap_tokens']} tokens  stemmer {data['stemmer']}  "
        f"dense {data['dense_model'] or 'off'}\n  updated {data['updated_at']}  generation {data['generation']}  "
        f"tantivy {data['tantivy_version']}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("index")(index)
