"""`deepsearch snapshot …`, `traces diff` and `--replay` at the command line: help, listings, files, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from deepsearch.agent.cli import app
from deepsearch.tools.page_models import PageOutcome
from deepsearch.tools.search_models import SearchOutcome, SearchResult
from deepsearch.tools.snapshots import Entry, SnapshotStore, fetch_key, query_key, search_key
from deepsearch.traces.synthetic import record_synthetic_run
from typer.testing import CliRunner

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [*args], env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture
def store(tmp_path):
    """A store with one snapshot: a search and the page it led to."""
    s = SnapshotStore(tmp_path / "store")
    result = SearchResult(title="Lumeria", url="http://example.org/l", snippet="a harbour city", rank=1,
                          backend="searxng:local", retrieved_at=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    key = search_key("lumeria river", "wt-wt", "", "moderate", 10)
    search = {"kind": "search", "key": key, "request": {"query": "lumeria river"},
              "outcome": SearchOutcome(status="ok", query="lumeria river", results=[result]).model_dump(mode="json")}
    page_key = fetch_key("http://example.org/l", "markdown")
    outcome = PageOutcome(status="ok", url="http://example.org/l", text="The Velt flows through it.")
    page = {"kind": "fetch", "key": page_key, "outcome": outcome.model_dump(mode="json")}
    entries = []
    for value, kind, k in ((search, "search", key), (page, "fetch", page_key)):
        h, size = s.put(value)
        entries.append(Entry(kind=kind, key=k, query=query_key("lumeria river") if kind == "search" else None,
                             object=h, size=size, status="ok"))  # fmt: skip
    manifest = s.save_manifest(entries, {"source": "test"})
    return s, manifest


def test_every_snapshot_command_has_help_with_an_example():
    for cmd in ("create", "ls", "show", "export", "import", "verify"):
        result = invoke("snapshot", cmd, "--help")
        assert result.exit_code == 0 and "Example: deepsearch snapshot" in result.stdout
    assert "Example: deepsearch traces diff" in invoke("traces", "diff", "--help").stdout


def test_ls_show_export_import_verify(store, tmp_path):
    s, manifest = store
    listed = json.loads(invoke("snapshot", "ls", "--json", "--store", str(s.root)).stdout)
    assert [m["id"] for m in listed] == [manifest.id] and listed[0]["entries"] == 2
    shown = invoke("snapshot", "show", manifest.id[:8], "--store", str(s.root))
    assert shown.exit_code == 0 and "lumeria river" in shown.stdout and "http://example.org/l" in shown.stdout
    out = tmp_path / "web.zip"
    exported = invoke("snapshot", "export", manifest.id[:8], "-o", str(out), "--store", str(s.root))
    assert exported.exit_code == 0 and out.is_file() and manifest.id[:12] in exported.stdout
    assert invoke("snapshot", "verify", str(out), "--store", str(s.root)).exit_code == 0
    other = tmp_path / "other-store"
    imported = invoke("snapshot", "import", str(out), "--store", str(other))
    assert imported.exit_code == 0 and SnapshotStore(other).find(manifest.id) is not None
    assert invoke("snapshot", "verify", manifest.id[:8], "--store", str(other)).exit_code == 0


def test_verify_names_an_altered_object_and_exits_1(store):
    s, manifest = store
    s.object_path(manifest.entries[1].object).write_bytes(b'{"kind":"fetch","outcome":"changed"}')
    result = invoke("snapshot", "verify", manifest.id[:8], "--store", str(s.root))
    assert result.exit_code == 1 and "does not match its hash" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["snapshot", "show", "feedbeef"], "is no snapshot id, file or trace id known here"),
    (["snapshot", "export", "feedbeef", "-o", "x.tar"], "a snapshot file ends in .zip"),
    (["snapshot", "import", "missing.zip"], "no such file"),
    (["ask", "a question", "--replay", "feedbeef", "--llm-base-url", "http://127.0.0.1:9/v1"],
     "is no snapshot id, file or trace id"),
    (["ask", "a question", "--replay-match", "query"], "--replay-match needs --replay"),
])  # fmt: skip
def test_user_errors_are_one_line(args, message, tmp_path, cli_env):
    cmd = [sys.executable, "-m", "deepsearch.agent", *args]
    env = {**cli_env, "DEEPSEARCH_SNAPSHOT_DIR": str(tmp_path / "store"), "DEEPSEARCH_TRACES_DIR": str(tmp_path)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and message in out.stderr
    assert "Traceback" not in out.stderr


def test_traces_diff_exits_0_for_the_same_run_and_1_with_the_differences(tmp_path):
    a, b = record_synthetic_run(tmp_path, 1), record_synthetic_run(tmp_path, 2)
    same = invoke("traces", "diff", a, a, "--traces-dir", str(tmp_path))
    assert same.exit_code == 0 and "tool results: same" in same.stdout
    differ = invoke("traces", "diff", a, b, "--traces-dir", str(tmp_path), "--json")
    report = json.loads(differ.stdout)
    assert differ.exit_code == 1 and report["calls"] and report["answers"]
