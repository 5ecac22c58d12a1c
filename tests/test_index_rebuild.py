"""`--rebuild` never deletes what is not an index, builds beside the old index and swaps it in whole."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from deepsearch.agent import cli
from deepsearch.agent.errors import DeepsearchError
from deepsearch.tools import index_store as store
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

BM25_ONLY = IndexOptions(dense=False)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["deepsearch", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Aardvarks dig burrows at night.\n")
    (docs / "b.txt").write_text("Badgers live in setts under woodland.\n")
    return docs


def test_rebuild_of_a_folder_of_user_files_is_refused_by_the_real_cli(cli_env, docs: Path, tmp_path: Path):
    """The data-loss case of issue 13: `--index ~/Documents --rebuild` used to rmtree the documents."""
    documents = tmp_path / "Documents"
    (documents / "letters").mkdir(parents=True)
    (documents / "letters" / "mum.txt").write_text("Dear Mum, the garden is lovely this year.\n")
    (documents / "taxes-2023.pdf").write_bytes(b"%PDF-1.4 not really, but precious")
    (documents / "notes.md").write_text("# Notes\n\nCall the plumber.\n")
    before = snapshot(documents)
    cmd = [sys.executable, "-m", "deepsearch.agent", "index", str(docs), "--index", str(documents), "--rebuild"]
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0] == (
        f"deepsearch: error: refusing to --rebuild {documents}: it holds no deepsearch index manifest, so nothing "
        "was deleted; give the index folder, or a new or empty one"
    )
    assert snapshot(documents) == before  # not a file deleted, added (no lock file) or changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Documents", "docs"]  # no sibling build either


@pytest.mark.parametrize(
    "lookalike",
    [
        lambda d: (d / "manifest.json").write_text(json.dumps({"format": "some-other-app", "version": 1})),
        lambda d: ((d / "search").mkdir(), (d / "chunks.sqlite").write_bytes(b"my own file, not a database")),
        lambda d: (d / "manifest.json").write_text("{half a manifest"),  # and a photo beside it (below)
    ],
    ids=["other-apps-manifest", "our-file-names-not-our-store", "broken-manifest-with-user-file"],
)
def test_folders_that_only_look_like_an_index_are_not_rebuilt(monkeypatch, capsys, docs, tmp_path, lookalike):
    folder = tmp_path / "lookalike"
    folder.mkdir()
    lookalike(folder)
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8 pixels")
    before = snapshot(folder)
    code, err = run_cli(monkeypatch, capsys, "index", str(docs), "--index", str(folder), "--rebuild", "--no-dense")
    assert code == 2 and "refusing to --rebuild" in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(folder) == before
    with pytest.raises(DeepsearchError, match="not deleting"):  # the package's one delete refuses it too
        store.remove_index(folder)
    assert snapshot(folder) == before


def test_rebuild_of_a_damaged_index_still_works(docs: Path, tmp_path: Path):
    """No manifest at all, but every name is the index's own and chunks.sqlite is our store: it is an index."""
    idx = tmp_path / "idx"
    update_index(idx, [docs], BM25_ONLY)
    (idx / store.MANIFEST).unlink()
    with pytest.raises(store.IndexCorrupt, match="--rebuild"):
        update_index(idx, [docs], BM25_ONLY)
    report = update_index(idx, [docs], BM25_ONLY, rebuild=True)
    assert report.counts.documents == 2 and report.index_dir == str(idx)
    assert LocalSearcher(idx).search("badgers", k=1)[0].doc_id == "b.txt"


def test_old_index_answers_during_the_rebuild_and_the_new_one_after(docs: Path, tmp_path: Path):
    idx = tmp_path / "idx"
    update_index(idx, [docs], BM25_ONLY)
    old_manifest = store.read_manifest(idx)
    long_lived = LocalSearcher(idx)
    (docs / "a.txt").unlink()
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    seen: list[tuple] = []

    def during(n: int, total: int, path: str) -> None:  # called while the new index is being written
        fresh = LocalSearcher(idx)
        seen.append(
            (
                [h.doc_id for h in long_lived.search("aardvarks burrows", k=1)],
                [h.doc_id for h in fresh.search("aardvarks burrows", k=1)],
                fresh.search("capybaras"),
                [p.name.startswith(".idx.rebuild-") for p in tmp_path.iterdir() if p.name.startswith(".")],
            )
        )
        fresh.close()

    report = update_index(idx, [docs], BM25_ONLY, rebuild=True, progress=during)
    assert seen and all(s == (["a.txt"], ["a.txt"], [], [True]) for s in seen), seen
    assert (report.files_added, report.counts.documents) == (2, 2)
    assert long_lived.search("capybaras", k=1)[0].doc_id == "c.txt"  # the long-lived searcher moved over
    assert long_lived.search("aardvarks burrows") == []
    assert store.read_manifest(idx).build_id != old_manifest.build_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "idx"]  # the old index is gone, nothing left


def test_rebuild_that_fails_leaves_the_old_index_and_no_sibling(docs: Path, tmp_path: Path):
    idx = tmp_path / "idx"
    update_index(idx, [docs], BM25_ONLY)
    before = snapshot(idx)
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")

    def interrupt(n: int, total: int, path: str) -> None:
        if n == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        update_index(idx, [docs], BM25_ONLY, rebuild=True, progress=interrupt)
    after = snapshot(idx)
    assert {k: v for k, v in after.items() if "sqlite-" not in k} == {
        k: v for k, v in before.items() if "sqlite-" not in k
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "idx"]
    assert LocalSearcher(idx).search("aardvarks", k=1)[0].doc_id == "a.txt"


def test_rebuild_without_an_atomic_exchange_swaps_by_renames(monkeypatch, docs: Path, tmp_path: Path):
    idx = tmp_path / "idx"
    update_index(idx, [docs], BM25_ONLY)
    used: list[tuple[str, str]] = []
    monkeypatch.setattr(store, "_exchange", lambda a, b: used.append((a.name, b.name)) or False)  # e.g. macOS
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    report = update_index(idx, [docs], BM25_ONLY, rebuild=True)
    assert [b for _, b in used] == ["idx"] and report.counts.documents == 3  # the fresh build had no search/ yet
    assert LocalSearcher(idx).search("capybaras", k=1)[0].doc_id == "c.txt"
    (docs / "d.txt").write_text("Dormice sleep through the winter.\n")
    update_index(idx, [docs], BM25_ONLY)  # an update changes search/ in place: nothing is swapped
    assert [b for _, b in used] == ["idx"]
    assert LocalSearcher(idx).search("dormice", k=1)[0].doc_id == "d.txt"
    assert sorted(p.name for p in idx.iterdir() if p.name.startswith("search")) == ["search"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "idx"]


def test_a_rebuild_removes_the_leftovers_of_one_that_was_killed(docs: Path, tmp_path: Path):
    idx = tmp_path / "idx"
    update_index(idx, [docs], BM25_ONLY)
    killed = tmp_path / ".idx.rebuild-deadbeef"
    update_index(killed, [docs], BM25_ONLY)  # what a rebuild killed before its swap leaves behind
    update_index(idx, [docs], BM25_ONLY, rebuild=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "idx"]


def test_rebuild_of_a_new_or_empty_folder_builds_in_place(docs: Path, tmp_path: Path):
    for idx in (tmp_path / "new", tmp_path / "empty"):
        if idx.name == "empty":
            idx.mkdir()
        report = update_index(idx, [docs], BM25_ONLY, rebuild=True)
        assert report.counts.documents == 2
    with sqlite3.connect(tmp_path / "new" / store.STORE) as conn:
        assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 2


def test_rebuild_through_a_symlink_replaces_the_folder_it_names(docs: Path, tmp_path: Path):
    real = tmp_path / "disk" / "idx"
    update_index(real, [docs], BM25_ONLY)
    link = tmp_path / "idx"
    link.symlink_to(real, target_is_directory=True)
    (docs / "c.txt").write_text("Capybaras are the largest rodents.\n")
    update_index(link, [docs], BM25_ONLY, rebuild=True)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert LocalSearcher(link).search("capybaras", k=1)[0].doc_id == "c.txt"
    assert sorted(p.name for p in real.parent.iterdir()) == ["idx"]
