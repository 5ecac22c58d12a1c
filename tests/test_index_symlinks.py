"""Indexing a folder never reads files outside the indexed folders through symlinks, unless allowed; loops end."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from deepsearch.agent.config import load_settings
from deepsearch.tools.corpus_readers import OUTSIDE, discover_files
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher

SECRET = "zebracorn private key material"


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ with its own notes, links out of it (a file and a folder), links inside it and two loops."""
    outside, root, other = tmp_path / "outside", tmp_path / "root", tmp_path / "other"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text(f"The {SECRET} lives here.\n")
    (outside / "dir" / "also.md").write_text(f"# Also\n\nMore {SECRET}.\n")
    (root / "sub").mkdir(parents=True)
    other.mkdir()
    (root / "notes.txt").write_text("Giraffes sleep standing up.\n")
    (root / "sub" / "deep.md").write_text("# Deep\n\nOctopuses have three hearts.\n")
    (other / "shared.txt").write_text("Otters hold hands while sleeping.\n")
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "outside-dir").symlink_to(outside / "dir", target_is_directory=True)
    (root / "same-notes.txt").symlink_to(root / "notes.txt")  # inside: fine, read once
    (root / "sub-again").symlink_to(root / "sub", target_is_directory=True)  # inside: fine
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)  # a loop back to the root
    (root / "self").symlink_to(root / "self")  # a link to itself: broken, never a hang
    (root / "to-other").symlink_to(other, target_is_directory=True)  # another root given on the command line
    return {"root": root, "outside": outside, "other": other}


def discover(paths: list[Path], follow: bool = False):
    """discover_files in a thread, failing rather than hanging if a loop is not cut."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(discover_files(paths, follow)), daemon=True)
    worker.start()
    worker.join(30)
    assert result, "discover_files did not finish: a symlink loop?"
    return result[0]


def test_links_leading_outside_the_folder_are_skipped_and_counted(tree):
    root = tree["root"]
    files, skipped = discover([root])
    assert files == sorted([(root / "notes.txt").resolve(), (root / "sub" / "deep.md").resolve()])
    outside = sorted(Path(s.path).name for s in skipped if s.reason == OUTSIDE)
    assert outside == ["outside-dir", "secret-link.txt", "to-other"]


def test_a_link_to_another_indexed_folder_is_followed(tree):
    files, skipped = discover([tree["root"], tree["other"]])
    assert (tree["other"] / "shared.txt").resolve() in files
    assert sorted(Path(s.path).name for s in skipped if s.reason == OUTSIDE) == ["outside-dir", "secret-link.txt"]


def test_allowed_by_setting_the_links_are_followed(tree):
    files, skipped = discover([tree["root"]], follow=True)
    outside = tree["outside"].resolve()
    assert {outside / "secret.txt", outside / "dir" / "also.md"} <= set(files)
    assert not [s for s in skipped if s.reason == OUTSIDE]


def test_a_file_named_on_the_command_line_is_read_even_through_a_link(tree):
    files, skipped = discover([tree["root"] / "secret-link.txt"])
    assert files == [(tree["outside"] / "secret.txt").resolve()] and not skipped


def test_index_cli_skips_reports_and_never_indexes_the_outside_text(tree, tmp_path, cli_env):
    index = tmp_path / "idx"
    cmd = [sys.executable, "-m", "deepsearch.agent", "index", str(tree["root"]), "--index", str(index), "--no-dense"]
    done = subprocess.run([*cmd, "--json"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files_added"] == 2
    assert sum(s["reason"] == OUTSIDE for s in report["skipped"]) == 3
    assert SECRET.encode() not in (index / "chunks.sqlite").read_bytes()
    shown = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and f"3 {OUTSIDE}" in shown.stdout, shown.stdout + shown.stderr

    allowed = subprocess.run([*cmd, "--follow-external-symlinks", "--json"], env=cli_env, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["files_added"] == 3  # secret.txt, also.md, shared.txt
    assert SECRET.encode() in (index / "chunks.sqlite").read_bytes()


def test_files_indexed_through_an_allowed_link_go_when_links_are_no_longer_followed(tree, tmp_path):
    index = tmp_path / "idx"
    update_index(index, [tree["root"]], IndexOptions(dense=False, follow_external_symlinks=True))
    settings = load_settings().settings.index
    assert any(SECRET in h.text for h in LocalSearcher(index, settings).search("zebracorn", k=5))
    report = update_index(index, [tree["root"]], IndexOptions(dense=False))
    assert report.files_removed == 3
    assert not any(SECRET in h.text for h in LocalSearcher(index, settings).search("zebracorn", k=5))


def test_the_setting_is_read_from_env(monkeypatch):
    monkeypatch.setenv("DEEPSEARCH_INDEX_FOLLOW_EXTERNAL_SYMLINKS", "true")
    settings = load_settings().settings.index
    assert settings.follow_external_symlinks and IndexOptions.from_settings(settings).follow_external_symlinks
    assert not IndexOptions.from_settings(load_settings(environ={}).settings.index).follow_external_symlinks
