"""Web snapshots: every search answer and page a run saw, stored content-addressed, so a run can be replayed.

The store (`snapshot.dir`) holds objects, `objects/ab/<sha256>.json`: the canonical JSON of one recorded
outcome (the request, the outcome as the tool returned it, and for pages the extractor version), written
once and never evicted by a cache TTL. A run's trajectory references each object by hash from its
`tool_call` steps. A snapshot is a manifest of entries (kind, request key, object hash); its id is the hash
of those entries, so the same web seen twice is the same snapshot. Manifests live in `manifests/<id>.json`;
`export` packs one with its objects into a zip file (see snapshot_archive.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..agent.errors import UsageError

Kind = Literal["search", "fetch"]
MANIFEST_FORMAT = "deepsearch-snapshot"
MANIFEST_VERSION = 1
VOLATILE = {"from_cache", "elapsed_ms", "cache_degraded"}  # how an answer was served, not what it was


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def search_key(query: str, region: str, time_range: str, safe_search: str, max_results: int) -> str:
    """A search request, normalised: what a replayed search must match exactly."""
    return canonical({"query": " ".join(query.split()), "region": region, "time_range": time_range,
                      "safe_search": safe_search, "max_results": max_results}).decode()  # fmt: skip


def query_key(query: str) -> str:
    """A search by its query alone (`--replay-match query`): case and spacing do not count."""
    return " ".join(query.lower().split())


def fetch_key(url: str, text_format: str) -> str:
    return canonical({"url": url.strip(), "format": text_format}).decode()


class RecordedRef(BaseModel):
    """What a trajectory's tool call holds of its recorded outcome."""

    kind: Kind
    key: str = Field(description="the normalised request")
    object: str = Field(description="sha256 of the object in the snapshot store")
    status: str = Field(description="the outcome: ok, no_results, unavailable, timeout, robots_disallowed, …")
    recorded_at: datetime | None = None
    replayed: bool = Field(False, description="served from a snapshot, not from the web")


class Entry(BaseModel):
    kind: Kind
    key: str
    query: str | None = Field(None, description="searches: the query alone, for matching by query")
    object: str
    size: int
    status: str


class Manifest(BaseModel):
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION
    id: str
    created: datetime
    recorded_by: dict[str, Any] = Field(default_factory=dict, description="deepsearch version, runs, source")
    entries: list[Entry]

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


def snapshot_id(entries: list[Entry]) -> str:
    return digest(canonical(sorted([e.kind, e.key, e.object] for e in entries)))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SnapshotStore:
    def __init__(self, root: Path):
        self.root = Path(root).expanduser()

    def object_path(self, object_hash: str) -> Path:
        if len(object_hash) != 64 or any(c not in "0123456789abcdef" for c in object_hash):
            raise UsageError(f"not a snapshot object hash: {object_hash[:80]!r}")
        return self.root / "objects" / object_hash[:2] / f"{object_hash}.json"

    def put(self, value: dict[str, Any]) -> tuple[str, int]:
        """Store an object once; (its hash, its size)."""
        data = canonical(value)
        object_hash = digest(data)
        path = self.object_path(object_hash)
        if not path.exists():
            _atomic_write(path, data)
        return object_hash, len(data)

    def put_bytes(self, object_hash: str, data: bytes) -> None:
        if digest(data) != object_hash:
            raise UsageError(f"snapshot object {object_hash[:12]} does not match its hash (tampered or damaged)")
        path = self.object_path(object_hash)
        if not path.exists():
            _atomic_write(path, data)

    def read(self, object_hash: str) -> bytes | None:
        try:
            return self.object_path(object_hash).read_bytes()
        except FileNotFoundError:
            return None

    def record(self, kind: Kind, key: str, value: dict[str, Any], status: str) -> RecordedRef:
        object_hash, _ = self.put({"kind": kind, "key": key, **value})
        return RecordedRef(kind=kind, key=key, object=object_hash, status=status, recorded_at=datetime.now(UTC))

    # ---- manifests -----------------------------------------------------------------------------

    def manifest_path(self, sid: str) -> Path:
        return self.root / "manifests" / f"{sid}.json"

    def save_manifest(self, entries: list[Entry], recorded_by: dict[str, Any]) -> Manifest:
        # One answer per request: runs of a batch may have met the same page twice (once timed out, once read);
        # an ok outcome wins over a failure, otherwise the last one recorded.
        chosen: dict[tuple[str, str], Entry] = {}
        for e in entries:
            held = chosen.get((e.kind, e.key))
            if held is None or held.status != "ok":
                chosen[(e.kind, e.key)] = e
        unique = list(chosen.values())
        manifest = Manifest(id=snapshot_id(unique), created=datetime.now(UTC), recorded_by=recorded_by,
                            entries=unique)  # fmt: skip
        path = self.manifest_path(manifest.id)
        if not path.exists():
            _atomic_write(path, manifest.model_dump_json(indent=1).encode())
        return Manifest.model_validate_json(path.read_bytes())

    def manifests(self) -> list[Manifest]:
        folder = self.root / "manifests"
        found = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                found.append(Manifest.model_validate_json(path.read_bytes()))
            except ValueError:
                continue  # a damaged manifest is left out of the list; `verify` names it
        return sorted(found, key=lambda m: m.created, reverse=True)

    def find(self, prefix: str) -> Manifest | None:
        prefix = prefix.strip().lower()
        if len(prefix) < 4 or any(c not in "0123456789abcdef" for c in prefix):
            return None
        folder = self.root / "manifests"
        matches = sorted(folder.glob(f"{prefix}*.json")) if folder.is_dir() else []
        if len(matches) > 1:
            raise UsageError(f"snapshot id {prefix!r} is ambiguous: {', '.join(p.stem[:12] for p in matches[:5])}")
        if not matches:
            return None
        try:
            return Manifest.model_validate_json(matches[0].read_bytes())
        except ValueError as e:
            raise UsageError(f"snapshot manifest {matches[0]} is damaged: {str(e).splitlines()[0]}") from None


def entry_for(ref: RecordedRef, store: SnapshotStore) -> Entry | None:
    """The manifest entry of a trajectory's recorded outcome (None when its object is not in this store)."""
    data = store.read(ref.object)
    if data is None:
        return None
    query = None
    if ref.kind == "search":
        query = query_key(json.loads(ref.key).get("query", ""))
    return Entry(kind=ref.kind, key=ref.key, query=query, object=ref.object, size=len(data), status=ref.status)
