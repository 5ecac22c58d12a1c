"""Replay: serve every search and fetch of a run from a snapshot, never from the network.

`load_snapshot(SPEC)` opens what `--replay` names: a snapshot archive (.zip), a manifest (.json), an id (or a
unique prefix) in the store, a trace id or a batch output (.jsonl) whose runs' recorded outcomes make the
snapshot. Every object is checked against its hash when the snapshot is opened: a tampered snapshot is
refused before the run starts. `ReplaySearch` / `ReplayFetcher` stand in for WebSearch / PageFetcher; a
request the snapshot does not hold is a `not_recorded` outcome, never a live call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from ..agent.errors import UsageError
from .page_models import PageOutcome
from .search_models import SearchOutcome
from .search_normalize import guard_query
from .snapshots import (
    Entry,
    Manifest,
    RecordedRef,
    SnapshotStore,
    digest,
    fetch_key,
    query_key,
    search_key,
    snapshot_id,
)

Match = Literal["exact", "query"]


class Snapshot:
    """A verified snapshot in memory: its manifest and every object's bytes, looked up by request."""

    def __init__(self, manifest: Manifest, objects: dict[str, bytes], source: str):
        self.manifest, self.source = manifest, source
        self.objects = objects
        self.by_key = {(e.kind, e.key): e for e in manifest.entries}
        # By query alone: from the request key itself (covered by the snapshot id), never from the manifest's
        # own `query` field, which an edited manifest could point at another search's answer.
        self.by_query: dict[str, Entry] = {}
        for e in manifest.entries:
            if e.kind == "search":
                self.by_query.setdefault(query_key(json.loads(e.key).get("query", "")), e)

    @property
    def id(self) -> str:
        return self.manifest.id

    def lookup(self, kind: str, key: str, query: str | None = None) -> tuple[Entry, dict] | None:
        entry = self.by_key.get((kind, key)) or (self.by_query.get(query) if query is not None else None)
        if entry is None:
            return None
        return entry, json.loads(self.objects[entry.object])


def verified(manifest: Manifest, read, source: str) -> Snapshot:
    """`manifest` with every object read through `read(hash) -> bytes | None` and checked against its hash."""
    if manifest.id != snapshot_id(manifest.entries):
        raise UsageError(f"snapshot {source}: refused: the manifest's id does not match its entries (tampered)")
    objects: dict[str, bytes] = {}
    for e in manifest.entries:
        if e.object in objects:
            continue
        data = read(e.object)
        if data is None:
            raise UsageError(f"snapshot {source}: object {e.object[:12]} is missing")
        if digest(data) != e.object:
            raise UsageError(f"snapshot {source}: object {e.object[:12]} does not match its hash (tampered or damaged)")
        objects[e.object] = data
    return Snapshot(manifest, objects, source)


def load_snapshot(spec: str, store: SnapshotStore, traces_dir: Path | None = None) -> Snapshot:
    """The snapshot SPEC names (see the module docstring), verified; a one-line UsageError otherwise."""
    from .snapshot_archive import read_archive
    from .snapshot_sources import snapshot_of_runs, trace_ids_in

    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".zip":
        return read_archive(path)
    if path.is_file() and path.suffix == ".json":
        try:
            manifest = Manifest.model_validate_json(path.read_bytes())
        except ValueError as e:
            raise UsageError(f"{path}: not a snapshot manifest: {str(e).splitlines()[0]}") from None
        return verified(manifest, store.read, str(path))
    if path.is_file() and path.suffix == ".jsonl":
        manifest = snapshot_of_runs(trace_ids_in(path), store, traces_dir, source=str(path))
        return verified(manifest, store.read, str(path))
    if path.exists():
        raise UsageError(f"{path}: --replay takes a snapshot .zip or .json, a batch output .jsonl, an id or a trace id")
    manifest = store.find(spec)
    if manifest is not None:
        return verified(manifest, store.read, spec)
    return verified(snapshot_of_runs([spec], store, traces_dir, source=spec), store.read, spec)


_LOADED: dict[tuple[str, str, str], Snapshot] = {}


def cached_snapshot(spec: str, store_dir: Path, traces_dir: Path | None) -> Snapshot:
    """load_snapshot, once per process for the same SPEC (a batch replays one snapshot for every question)."""
    key = (spec, str(store_dir), str(traces_dir))
    if key not in _LOADED:
        _LOADED[key] = load_snapshot(spec, SnapshotStore(store_dir), traces_dir)
    return _LOADED[key]


class _Off:
    """What research_tools asks of a cache: replay has none."""

    degraded = None


class ReplaySearch:
    """WebSearch's interface, answered from a snapshot."""

    def __init__(self, snapshot: Snapshot, settings, match: Match = "exact"):
        self.snapshot, self.settings, self.match = snapshot, settings, match
        self.cache = self.brief_cache = _Off()
        self.engines: list = []

    async def search(self, query: str, **_: object) -> SearchOutcome:
        guarded, _truncated = guard_query(query)
        s = self.settings
        key = search_key(guarded, s.region, s.time_range, s.safe_search, s.max_results)
        found = self.snapshot.lookup("search", key, query_key(guarded) if self.match == "query" else None)
        if found is None:
            return SearchOutcome(status="not_recorded", query=guarded, provider="snapshot",
                                 message=f"not in snapshot {self.snapshot.id[:12]}")  # fmt: skip
        entry, value = found
        return SearchOutcome.model_validate(value["outcome"]).model_copy(update={"recorded": ref(entry)})


class ReplayFetcher:
    """PageFetcher's interface, answered from a snapshot."""

    def __init__(self, snapshot: Snapshot, settings):
        self.snapshot, self.settings = snapshot, settings
        self.cache = _Off()

    async def fetch(self, url: str, **_: object) -> PageOutcome:
        fmt = self.settings.output_format
        found = self.snapshot.lookup("fetch", fetch_key(url, fmt))
        if found is None:
            return PageOutcome(status="not_recorded", url=url, text_format=fmt,
                               message=f"not in snapshot {self.snapshot.id[:12]}")  # fmt: skip
        entry, value = found
        return PageOutcome.model_validate(value["outcome"]).model_copy(update={"recorded": ref(entry)})


def ref(entry: Entry) -> RecordedRef:
    return RecordedRef(kind=entry.kind, key=entry.key, object=entry.object, status=entry.status, replayed=True)
