"""A snapshot as one file: a zip holding `manifest.json` and `objects/<sha256>.json`, deflated.

Zip, not tar: a replay reads the objects it needs in any order. Reading an archive trusts nothing in it:
only those two kinds of member name are accepted (no folders, links, `..` or absolute paths), sizes are
capped, and every object must match its hash — or the whole archive is refused with one line.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from ..agent.errors import UsageError
from .replay import Snapshot, verified
from .snapshots import Manifest, SnapshotStore, digest, snapshot_id

MANIFEST = "manifest.json"
_OBJECT = re.compile(r"objects/([0-9a-f]{64})\.json")
MAX_MEMBER_BYTES = 256 << 20  # one page's outcome is far below this; a larger member is a zip bomb


def write_archive(manifest: Manifest, store: SnapshotStore, path: Path) -> Path:
    """Pack `manifest` and its objects into `path` (written beside it, then renamed: never half a file)."""
    path = Path(path).expanduser()
    tmp = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            z.writestr(MANIFEST, manifest.model_dump_json(indent=1))
            for object_hash in sorted({e.object for e in manifest.entries}):
                data = store.read(object_hash)
                if data is None:
                    raise UsageError(f"snapshot {manifest.id[:12]}: object {object_hash[:12]} is not in {store.root}")
                z.writestr(f"objects/{object_hash}.json", data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _members(z: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in z.infolist():
        name = info.filename
        if name != MANIFEST and not _OBJECT.fullmatch(name):
            raise UsageError(f"{path}: refused: unexpected member {name[:80]!r} (only manifest.json and objects/)")
        if info.file_size > MAX_MEMBER_BYTES:
            raise UsageError(f"{path}: refused: member {name[:80]!r} is {info.file_size} bytes")
        if name in members:
            raise UsageError(f"{path}: refused: member {name[:80]!r} appears twice")
        members[name] = info
    if MANIFEST not in members:
        raise UsageError(f"{path}: not a snapshot archive (no manifest.json)")
    return members


def read_archive(path: Path) -> Snapshot:
    """The archive's snapshot, every object checked against its hash."""
    try:
        with zipfile.ZipFile(path) as z:
            members = _members(z, path)
            try:
                manifest = Manifest.model_validate_json(z.read(MANIFEST))
            except ValueError as e:
                raise UsageError(f"{path}: damaged manifest: {str(e).splitlines()[0]}") from None

            def read(object_hash: str) -> bytes | None:
                info = members.get(f"objects/{object_hash}.json")
                return z.read(info) if info is not None else None

            return verified(manifest, read, str(path))
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # a damaged member's deflate stream: zlib.error
        raise UsageError(f"{path}: not a snapshot archive, or damaged: {e}") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None


def import_archive(path: Path, store: SnapshotStore) -> Manifest:
    """Copy a verified archive into the store; returns its manifest."""
    snapshot = read_archive(path)
    for object_hash, data in snapshot.objects.items():
        store.put_bytes(object_hash, data)
    return store.save_manifest(snapshot.manifest.entries, snapshot.manifest.recorded_by)


def verify_store_manifest(manifest: Manifest, store: SnapshotStore) -> list[str]:
    """What is wrong with a snapshot in the store: missing or altered objects, an id that does not match."""
    problems = []
    if manifest.id != snapshot_id(manifest.entries):
        problems.append("the manifest's id does not match its entries")
    for e in manifest.entries:
        data = store.read(e.object)
        if data is None:
            problems.append(f"object {e.object[:12]} ({e.kind} {e.key[:60]}) is missing")
        elif digest(data) != e.object:
            problems.append(f"object {e.object[:12]} ({e.kind} {e.key[:60]}) does not match its hash")
    return problems

