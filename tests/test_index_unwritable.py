"""An index folder that is read-only or on a full disk: one error line naming it, and the old index still searches."""

from __future__ import annotations

import errno
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from deepsearch.agent import cli
from deepsearch.tools import index_store as store
from deepsearch.tools import local_index
from deepsearch.tools.lexical import LexicalWriter
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

BM25_ONLY = IndexOptions(dense=False)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Aardvarks dig burrows at night.\n")
    (docs / "b.txt").write_text("Badgers live in setts under woodland.\n")
    idx = tmp_path / "idx"
    update_index(idx, [docs], BM25_ONLY)
    return docs, idx


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["deepsearch", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


def assert_previous_index_searches(idx: Path) -> None:
    searcher = LocalSearcher(idx)
    assert searcher.search("aardvarks burrows", k=1)[0].doc_id == "a.txt"
    assert searcher.search("badgers", k=1)[0].doc_id == "b.txt"
    assert not searcher.search("capybaras")  # the new file is not searchable: the old search files are in use
    searcher.close()
    assert not list(idx.glob("search.new")) and not list(idx.glob("manifest.json.tmp"))


def one_line(code: int, err: str, idx: Path, why: str) -> None:
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"deepsearch: error: cannot write to index {idx} ("), err
    assert why in lines[0] and "still searchable" in lines[0]


def test_disk_full_while_building_the_search_files(built, monkeypatch, capsys):
    docs, idx = built
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    real_commit = LexicalWriter.commit

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(idx / "search" / "lexical"))

    monkeypatch.setattr(LexicalWriter, "commit", full)
    code, err = run_cli(monkeypatch, capsys, "index", str(docs), "--index", str(idx), "--no-dense")
    one_line(code, err, idx, "No space left on device")
    assert_previous_index_searches(idx)
    assert (idx / store.STALE).exists()

    monkeypatch.setattr(LexicalWriter, "commit", real_commit)  # space freed: the next run syncs though nothing changed
    report = update_index(idx, [docs], BM25_ONLY)
    assert (report.files_unchanged, report.files_added) == (3, 0)
    assert LocalSearcher(idx).search("capybaras", k=1)[0].doc_id == "c.txt"
    assert not (idx / store.STALE).exists()


def test_disk_full_while_writing_the_chunk_store(built, monkeypatch, capsys):
    docs, idx = built
    (docs / "a.txt").write_text("Aardvarks eat ants and termites.\n")  # updated first, and committed
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")  # then the disk fills up
    real_insert = local_index._insert_documents

    def full(conn, path, *a, **kw):
        rows = real_insert(conn, path, *a, **kw)
        if path.endswith("c.txt"):
            raise sqlite3.OperationalError("database or disk is full")
        return rows

    monkeypatch.setattr(local_index, "_insert_documents", full)
    code, err = run_cli(monkeypatch, capsys, "index", str(docs), "--index", str(idx), "--no-dense")
    one_line(code, err, idx, "database or disk is full")
    with sqlite3.connect(idx / store.STORE) as conn:  # c.txt's transaction was rolled back whole
        assert conn.execute("SELECT count(*) FROM documents WHERE doc_id = 'c.txt'").fetchone()[0] == 0
    searcher = LocalSearcher(idx)  # a.txt's old chunk is gone from the store: its stale hit is passed over
    assert searcher.search("badgers", k=1)[0].doc_id == "b.txt"
    assert all(h.doc_id != "a.txt" for h in searcher.search("aardvarks burrows", k=5))
    searcher.close()

    monkeypatch.setattr(local_index, "_insert_documents", real_insert)
    report = update_index(idx, [docs], BM25_ONLY)
    assert (report.files_added, report.files_unchanged) == (1, 2)
    searcher = LocalSearcher(idx)
    assert searcher.search("termites", k=1)[0].doc_id == "a.txt"
    assert searcher.search("capybaras", k=1)[0].doc_id == "c.txt"


def test_manifest_cannot_be_replaced(built, monkeypatch, capsys):
    docs, idx = built
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")

    def denied(path, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(Path, "write_text", denied)
    code, err = run_cli(monkeypatch, capsys, "index", str(docs), "--index", str(idx), "--no-dense")
    monkeypatch.undo()
    one_line(code, err, idx, "Permission denied")
    assert_previous_index_searches(idx)


def test_read_only_store_is_one_line(built, monkeypatch, capsys):
    """The chunk store refuses writes, as SQLite does on a read-only folder or file."""
    docs, idx = built
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda path, **kw: real_connect(f"file:{path}?mode=ro", uri=True, **kw))
    code, err = run_cli(monkeypatch, capsys, "index", str(docs), "--index", str(idx), "--no-dense")
    monkeypatch.undo()
    one_line(code, err, idx, "readonly database")
    assert_previous_index_searches(idx)


def test_read_only_mount(built, tmp_path, cli_env):
    """A real read-only bind mount, where the machine allows mounting (root in a container may not)."""
    docs, idx = built
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    ro = tmp_path / f"ro-{uuid.uuid4().hex[:8]}"
    ro.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(idx), str(ro)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        cmd = [sys.executable, "-m", "deepsearch.agent", "index", str(docs), "--index", str(ro), "--no-dense"]
        done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        line = done.stderr.strip().splitlines()
        assert len(line) == 1 and line[0].startswith(f"deepsearch: error: cannot write to index {ro} ("), done.stderr
        assert "Read-only file system" in line[0]
        assert_previous_index_searches(ro)
    finally:
        # lazy: the searcher's memory maps keep the mount busy until they are collected
        assert subprocess.run(["umount", "-l", str(ro)], capture_output=True).returncode == 0
    shutil.rmtree(ro, ignore_errors=True)
