"""`deepsearch snapshot create|ls|show|export|import|verify`: the web as runs recorded it, as files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UsageError
from .options import ConfigOpt, JsonOpt, TracesDirOpt, settings_from_cli

app = typer.Typer(
    name="snapshot",
    help="Web snapshots: every search answer and page runs saw, to replay a run, batch or eval offline "
    "(`--replay`). Create one from runs, list, show, export as one file, import, verify.",
    no_args_is_help=True,
)
StoreOpt = Annotated[Path | None, typer.Option("--store", help="The snapshot store folder (snapshot.dir).")]


def _settings(store: Path | None, traces_dir: Path | None, config: Path | None):
    return settings_from_cli(config, {"snapshot.dir": store, "traces.dir": traces_dir}).settings


def _store(settings):
    from deepsearch.tools.snapshots import SnapshotStore

    return SnapshotStore(settings.snapshot.dir)


def _manifest(spec: str, settings):
    """A manifest in the store by id (prefix), or the snapshot of a trace id / batch output."""
    from deepsearch.tools.replay import load_snapshot

    return load_snapshot(spec, _store(settings), settings.traces.dir).manifest


def _describe(m) -> str:
    kinds = {k: sum(e.kind == k for e in m.entries) for k in ("search", "fetch")}
    return f"{m.id[:12]}  {kinds['search']} searches, {kinds['fetch']} pages, {m.size / 1024:.1f} KiB"


@app.command("create")
def create_cmd(
    trace_ids: Annotated[list[str] | None, typer.Argument(help="Runs whose web to gather (trace ids).")] = None,
    batch: Annotated[Path | None, typer.Option("--batch", help="A batch/eval output .jsonl: its runs.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also export it to this .zip.")] = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Gather the search answers and pages some runs recorded into one snapshot (saved in the store).

    Example: deepsearch snapshot create --batch answers.jsonl -o web-2026-12-01.zip
    """
    from deepsearch.tools.snapshot_archive import write_archive
    from deepsearch.tools.snapshot_sources import snapshot_of_runs, trace_ids_in

    settings = _settings(store, traces_dir, config)
    ids = list(trace_ids or []) + (trace_ids_in(batch) if batch is not None else [])
    if not ids:
        raise UsageError("give trace ids or --batch FILE (see `deepsearch traces ls`)")
    manifest = snapshot_of_runs(ids, _store(settings), settings.traces.dir, source=str(batch or ", ".join(ids)))
    if output is not None:
        write_archive(manifest, _store(settings), output)
    if as_json:
        print(json.dumps({"id": manifest.id, "entries": len(manifest.entries), "bytes": manifest.size,
                          "file": str(output) if output else None}))  # fmt: skip
    else:
        print(f"snapshot {_describe(manifest)}" + (f" → {output}" if output else ""))


@app.command("ls")
def ls_cmd(as_json: JsonOpt = False, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """List the snapshots in the store, newest first.

    Example: deepsearch snapshot ls
    """
    manifests = _store(_settings(store, None, config)).manifests()
    if as_json:
        print(json.dumps([{"id": m.id, "created": m.created.isoformat(), "entries": len(m.entries), "bytes": m.size,
                           "recorded_by": m.recorded_by} for m in manifests], indent=2))  # fmt: skip
        return
    table = Table("id", "created (UTC)", "searches", "pages", "KiB", "from", title_justify="left")
    for m in manifests:
        searches = sum(e.kind == "search" for e in m.entries)
        table.add_row(m.id[:12], m.created.strftime("%Y-%m-%d %H:%M:%S"), str(searches),
                      str(len(m.entries) - searches), f"{m.size / 1024:.1f}",
                      str(m.recorded_by.get("source", ""))[:50])  # fmt: skip
    Console().print(table)


@app.command("show")
def show_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id (prefix), .zip, .json, trace id or batch output.")],
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What a snapshot holds: each recorded search and page with its outcome and size.

    Example: deepsearch snapshot show 3fa2c1
    """
    manifest = _manifest(snapshot, _settings(store, traces_dir, config))
    if as_json:
        print(manifest.model_dump_json(indent=2))
        return
    table = Table("kind", "status", "request", "bytes", "object", title=_describe(manifest), title_justify="left")
    for e in manifest.entries:
        request = json.loads(e.key)
        table.add_row(e.kind, e.status, str(request.get("query") or request.get("url"))[:70], str(e.size),
                      e.object[:12])  # fmt: skip
    Console().print(table)


@app.command("export")
def export_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id (prefix), trace id or batch output.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .zip to write.")],
    store: StoreOpt = None,
    traces_dir: TracesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Pack a snapshot into one compressed file (manifest of hashes and sizes, and every object) to ship beside a
    data set or a trace export; `--replay FILE` and `snapshot import FILE` read it.

    Example: deepsearch snapshot export 3fa2c1 -o hotpot-web.zip
    """
    from deepsearch.tools.snapshot_archive import write_archive

    if output.suffix != ".zip":
        raise UsageError(f"{output}: a snapshot file ends in .zip")
    settings = _settings(store, traces_dir, config)
    manifest = _manifest(snapshot, settings)
    write_archive(manifest, _store(settings), output)
    print(f"snapshot {_describe(manifest)} → {output} ({output.stat().st_size / 1024:.1f} KiB)")


@app.command("import")
def import_cmd(
    archive: Annotated[Path, typer.Argument(help="A snapshot .zip (from `snapshot export`).")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check a snapshot file (every object against its hash, no member outside its folders) and copy it into the
    store; refused whole, with one line, if anything is wrong.

    Example: deepsearch snapshot import hotpot-web.zip
    """
    from deepsearch.tools.snapshot_archive import import_archive

    if not archive.is_file():
        raise UsageError(f"no such file: {archive}")
    manifest = import_archive(archive, _store(_settings(store, None, config)))
    print(f"imported snapshot {_describe(manifest)}")


@app.command("verify")
def verify_cmd(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id (prefix) in the store, or a .zip file.")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check every object of a snapshot against its hash; exit 1 and name what is wrong otherwise.

    Example: deepsearch snapshot verify hotpot-web.zip
    """
    from deepsearch.tools.snapshot_archive import read_archive, verify_store_manifest

    settings = _settings(store, None, config)
    path = Path(snapshot).expanduser()
    if path.is_file():
        manifest = read_archive(path).manifest  # raises (one line) on the first problem
        print(f"ok: snapshot {_describe(manifest)}: every object matches its hash")
        return
    found = _store(settings).find(snapshot)
    if found is None:
        raise UsageError(f"no snapshot {snapshot!r} in {settings.snapshot.dir} (see `deepsearch snapshot ls`)")
    problems = verify_store_manifest(found, _store(settings))
    if problems:
        console = Console(stderr=True, highlight=False)
        for p in problems:
            console.print(f"error: snapshot {found.id[:12]}: {p}", markup=False)
        raise typer.Exit(1)
    print(f"ok: snapshot {_describe(found)}: every object matches its hash")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="snapshot")
