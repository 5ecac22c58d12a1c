"""One writer at a time; searchers follow new generations; a row id never names another chunk."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from deepsearch.tools import index_store as store
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

BM25_ONLY = IndexOptions(dense=False)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Aardvarks dig burrows at night.\n")
    (docs / "z.txt").write_text("Zebras have black and white stripes.\n")
    idx = tmp_path / "idx"
    update_index(idx, [docs], BM25_ONLY)
    return docs, idx


def test_second_writer_gets_one_line_at_once_and_changes_nothing(built, cli_env):
    docs, idx = built
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    before = (idx / store.STORE).read_bytes(), (idx / store.MANIFEST).read_bytes()
    cmd = [sys.executable, "-m", "deepsearch.agent", "index", str(docs), "--index", str(idx), "--no-dense"]
    with open(idx / "write.lock", "w") as held:  # this test process is the first writer, holding the lock file
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write(f"{os.getpid()}\n")
        held.flush()
        started = time.monotonic()
        done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
        waited = time.monotonic() - started
        rebuild = subprocess.run([*cmd, "--rebuild"], env=cli_env, capture_output=True, text=True, timeout=120)
    for result in (done, rebuild):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0] == (
            f"deepsearch: error: index {idx} is being written by another `deepsearch index` (pid {os.getpid()}); "
            "wait for it to finish, then re-run"
        )
    assert waited < 60  # refused, not queued behind the lock (the CLI's start-up is most of it)
    assert ((idx / store.STORE).read_bytes(), (idx / store.MANIFEST).read_bytes()) == before
    assert not [p for p in idx.parent.iterdir() if p.name.startswith(".")]  # the rebuild did not start either
    assert LocalSearcher(idx).search("capybaras") == []

    again = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)  # lock released
    assert again.returncode == 0 and "1 added" in again.stdout, again.stderr


def test_lock_taken_on_a_file_swapped_away_is_taken_again(built, monkeypatch):
    """A writer that opened the lock file just before a rebuild swapped the folder must not think it holds it."""
    docs, idx = built
    real_open, swapped = os.open, []

    def open_then_swap(path, *a, **kw):
        fd = real_open(path, *a, **kw)
        if str(path).endswith(store.LOCK) and not swapped:  # as if a rebuild swapped idx/ right now
            swapped.append(True)
            os.replace(path, str(path) + ".gone")
            Path(path).touch()
        return fd

    monkeypatch.setattr(os, "open", open_then_swap)
    with store.write_lock(idx) as lock:
        monkeypatch.undo()
        assert os.path.samestat(os.fstat(lock.fd), os.stat(idx / store.LOCK))
    assert swapped


def test_long_lived_searcher_sees_a_re_index(built):
    docs, idx = built
    searcher = LocalSearcher(idx)
    assert searcher.search("capybaras") == []
    first = store.read_manifest(idx)
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    update_index(idx, [docs], BM25_ONLY)
    assert searcher.search("capybaras", k=1)[0].doc_id == "c.txt"
    assert searcher.manifest.counts.documents == 3
    second = store.read_manifest(idx)
    assert (second.build_id, second.generation) == (first.build_id, first.generation + 1)
    assert second.search_id != first.search_id
    update_index(idx, [docs], BM25_ONLY)  # nothing changed: same search files, nothing to reload
    assert store.read_manifest(idx).search_id == second.search_id


def test_a_deleted_chunks_row_id_is_never_given_to_a_new_chunk(built):
    """A searcher ranking with the previous search files while the store changes under it (an update under
    way) must not return the chunk that took a deleted chunk's row id."""
    docs, idx = built
    searcher = LocalSearcher(idx)
    assert searcher.search("zebras stripes", k=1)[0].doc_id == "z.txt"
    (docs / "z.txt").unlink()  # the highest row ids: SQLite would hand them out again without AUTOINCREMENT
    (docs / "y.txt").write_text("Yaks grow long wool in the Himalaya.\n")
    (docs / "zz.txt").write_text("Zorillas are polecats that smell strongly.\n")
    during: list[list[str]] = []

    def probe(n: int, total: int, path: str) -> None:
        if path.endswith("zz.txt"):  # y.txt is in the store; search files are still the old ones
            during.append([h.doc_id for h in searcher.search("zebras stripes", k=3)])

    update_index(idx, [docs], BM25_ONLY, progress=probe)
    assert during == [[]]  # z.txt's chunk is gone and nothing else answers for it
    assert [h.doc_id for h in searcher.search("zebras stripes", k=3)] == []
    assert searcher.search("yaks wool", k=1)[0].doc_id == "y.txt"


def test_a_store_from_before_autoincrement_is_migrated_keeping_row_ids(built):
    docs, idx = built
    with sqlite3.connect(idx / store.STORE) as conn:  # the first release's table, same columns
        old_rows = conn.execute("SELECT row, chunk_id FROM chunks ORDER BY row").fetchall()
        conn.execute("ALTER TABLE chunks RENAME TO chunks_new")
        conn.execute(store._CHUNKS.format(name="chunks").replace(" AUTOINCREMENT", ""))
        conn.execute("INSERT INTO chunks SELECT * FROM chunks_new")
        conn.execute("DROP TABLE chunks_new")
        conn.execute("DELETE FROM chunks WHERE chunk_id = 'z.txt#0'")  # search/ still names its row
    assert "AUTOINCREMENT" not in _chunks_sql(idx)
    (docs / "b.txt").write_text("Badgers live in setts under woodland.\n")
    update_index(idx, [docs], BM25_ONLY)
    assert "AUTOINCREMENT" in _chunks_sql(idx)
    with sqlite3.connect(idx / store.STORE) as conn:
        rows = dict(conn.execute("SELECT chunk_id, row FROM chunks").fetchall())
    assert rows["a.txt#0"] == dict((c, r) for r, c in old_rows)["a.txt#0"]
    assert rows["b.txt#0"] > max(r for r, _ in old_rows)  # above the deleted z.txt#0 too


def _chunks_sql(idx: Path) -> str:
    with sqlite3.connect(idx / store.STORE) as conn:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks'").fetchone()[0]


def test_searcher_opening_while_search_files_are_swapped_retries(built, monkeypatch):
    """meta.json read before and after loading differs (a writer swapped search/ in between): load again."""
    docs, idx = built
    real_meta, calls = store.read_search_meta, []

    def swapped_once(search_dir: Path):
        calls.append(search_dir)
        meta = real_meta(search_dir)
        if len(calls) == 2 and meta is not None:  # the read after loading, the first time
            return meta.model_copy(update={"search_id": "another"})
        return meta

    monkeypatch.setattr(store, "read_search_meta", swapped_once)
    searcher = LocalSearcher(idx)
    assert len(calls) >= 4 and searcher.search("aardvarks", k=1)[0].doc_id == "a.txt"


def test_manifest_records_the_tantivy_version_and_a_mismatch_is_named(built):
    docs, idx = built
    manifest = store.read_manifest(idx)
    assert manifest.tantivy_version == version("tantivy")
    (idx / store.MANIFEST).write_text(manifest.model_copy(update={"tantivy_version": "0.0.1"}).model_dump_json())
    (idx / store.SEARCH_DIR / "lexical" / "meta.json").write_text('{"index_settings": "from the future"}')
    with pytest.raises(store.IndexCorrupt, match=rf"written by tantivy 0\.0\.1, this is tantivy {version('tantivy')}"):
        LocalSearcher(idx)


def test_search_meta_names_the_build_and_count(built):
    docs, idx = built
    meta = store.read_search_meta(idx / store.SEARCH_DIR)
    manifest = store.read_manifest(idx)
    assert (meta.build_id, meta.search_id, meta.chunks) == (manifest.build_id, manifest.search_id, 2)
    with sqlite3.connect(idx / store.STORE) as conn:
        assert meta.lexical_row == conn.execute("SELECT max(row) FROM chunks").fetchone()[0]
    assert LocalSearcher(idx)._current().lexical.num_docs == 2
