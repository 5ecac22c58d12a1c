"""`deepsearch index` and `deepsearch search` end to end, in a subprocess like a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsearch.agent", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    records = [
        {
            "pid": "p1",
            "name": "Shirley Temple",
            "body": "Shirley Temple served as Chief of Protocol of the United States.",
        },
        {"pid": "p2", "name": "Kiss and Tell", "body": "Kiss and Tell is a 1945 film starring Shirley Temple."},
        {"pid": "p3", "name": "Danube", "body": "The Danube is the second-longest river in Europe."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_index_then_search_json_with_custom_fields(cli_env, corpus: Path):
    fields = ["--id-field", "pid", "--title-field", "name", "--text-field", "body"]
    built = _run(cli_env, "index", str(corpus), "--name", "t", *fields, "--json")
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["files_added"] == 1 and report["counts"]["documents"] == 3

    found = _run(cli_env, "search", "Chief of Protocol", "--index", "t", "-k", "2", "--json")
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    top = data["results"][0]
    assert (top["doc_id"], top["chunk_id"], top["title"]) == ("p1", "p1#0", "Shirley Temple")
    assert top["source"] == str(corpus.resolve()) and top["score"] > 0 and "neighbours" in top

    again = _run(cli_env, "index", str(corpus), "--name", "t", *fields)
    assert again.returncode == 0 and "1 unchanged" in again.stdout

    stats = _run(cli_env, "index", "--stats", "--name", "t", "--json")
    figures = json.loads(stats.stdout)
    assert figures["documents"] == 3 and figures["chunks"] == 3 and figures["size_bytes"] > 0 and figures["tokens"] > 0
    assert figures["generation"] == 1 and figures["tantivy_version"]  # the unchanged re-run wrote no new search files

    human = _run(cli_env, "search", "river in Europe", "--index", "t", "--mode", "bm25")
    assert human.returncode == 0 and "1. Danube" in human.stdout and "mode bm25" in human.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "/no/such/dir", "--name", "x"], "cannot index /no/such/dir: no such file or directory"),
        (["index", "--name", "x"], "nothing to index"),
        (["index", "--stats", "--name", "absent"], "no index at"),
        (["index", ".", "--name", "../evil"], "bad index name"),
        (["search", "q", "--index", "absent"], "no index at"),
        (["index", ".", "--chunk-tokens", "32", "--overlap-tokens", "40"], "overlap_tokens must be smaller"),
    ],
)
def test_user_errors_are_one_line_and_non_zero(cli_env, args: list[str], message: str):
    result = _run(cli_env, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepsearch: error:") and message in lines[0], result.stderr


def test_corrupt_index_error_names_rebuild(cli_env, corpus: Path, tmp_path: Path):
    index_dir = tmp_path / "idx"
    fields = ["--id-field", "pid", "--text-field", "body", "--no-dense"]
    assert _run(cli_env, "index", str(corpus), "--index", str(index_dir), *fields).returncode == 0
    (index_dir / "manifest.json").write_text('{"format": "deepsearch-local-index", "version": 0}')
    result = _run(cli_env, "search", "Danube", "--index", str(index_dir))
    assert result.returncode == 1 and "--rebuild" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["index", "search"])
def test_help_explains_with_an_example(cli_env, command: str):
    result = _run(cli_env, command, "--help")
    assert result.returncode == 0 and "Example: deepsearch" in result.stdout
