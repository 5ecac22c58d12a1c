"""Hostile input, fuzzed with hypothesis: CLI arguments, config files, index inputs and batch input lines.

The contract: a user can never make deepsearch print a traceback. Either the command works, or it fails
with a non-zero exit code; errors that deepsearch raises itself are one line `deepsearch: error: …`.
Every example runs in-process (the real `main()`), inside an empty working directory, with the LLM
pointed at a closed loopback port so nothing slow or remote can start. Examples are derandomized.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

import pytest
from deepsearch.agent.batch.inputs import read_questions
from deepsearch.agent.cli import main
from deepsearch.agent.config import IndexSettings
from deepsearch.agent.errors import UsageError
from deepsearch.tools.local_index import IndexOptions, update_index
from deepsearch.tools.local_search import LocalSearcher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=40,
    deadline=5000,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

COMMANDS = [["config", "show"], ["traces", "list"], ["traces", "show"], ["traces", "export"], ["index"],
            ["search"], ["ask"], ["batch"], ["doctor"], []]  # fmt: skip
OPTIONS = ["--json", "--config", "--index", "-i", "--name", "--stats", "--rebuild", "--chunk-tokens", "--mode",
           "-k", "--closed-book", "--no-web", "--max-llm-calls", "--max-rounds", "--max-seconds", "--llm-model",
           "--traces-dir", "--format", "--status", "--limit", "--resume", "-o", "--concurrency", "--help", "--",
           "--backend", "--overlap-tokens", "--max-file-mb", "--id-field"]  # fmt: skip
# Values are random text, numbers and odd bytes; no '/' or '.' so a value cannot name a real path outside cwd.
VALUES = st.one_of(
    st.text(st.characters(blacklist_characters="/.\x00", blacklist_categories=["Cs"]), max_size=30),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["nan", "-1", "0", "1e400", "inf", "", " ", "--", "-", "'", '"', "\\", "~", "$HOME", "%s"]),
)
ARGV = st.tuples(st.sampled_from(COMMANDS), st.lists(st.one_of(st.sampled_from(OPTIONS), VALUES), max_size=6))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty cwd and config/data dirs, and an LLM that refuses connections at once."""
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "XDG_CONFIG_HOME": tmp_path / "config", "XDG_DATA_HOME": tmp_path / "data",
        "XDG_CACHE_HOME": tmp_path / "cache", "DEEPSEARCH_TRACES_DIR": tmp_path / "traces",
        "DEEPSEARCH_LLM_BASE_URL": "http://127.0.0.1:9/v1", "DEEPSEARCH_LLM_MAX_RETRIES": "0",
        "DEEPSEARCH_AGENT_WEB": "false", "NO_COLOR": "1", "COLUMNS": "120",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, str(value))
    return tmp_path


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`deepsearch argv…` in-process: (exit code, stdout, stderr). Any escaping exception fails the test."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["deepsearch", *argv]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()


def assert_clean_failure(code: int, stdout: str, stderr: str) -> None:
    assert "Traceback" not in stderr + stdout, stderr[-2000:]
    if "deepsearch: error:" in stderr:
        assert code != 0
        error_lines = [line for line in stderr.strip().splitlines() if line.strip()]
        assert len(error_lines) == 1 and error_lines[0].startswith("deepsearch: error: "), stderr


@FUZZ
@given(ARGV)
def test_random_cli_arguments_never_raise(sandbox, argv):
    command, rest = argv
    assert_clean_failure(*run_cli(*command, *rest))


TOML_ISH = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.lists(
        st.tuples(
            st.sampled_from(["[llm]", "[agent]", "[index]", "[traces]", "[fetch]", "[nosuch]", "[[llm]]", "x"]),
            st.sampled_from(["base_url", "max_retries", "concurrency", "max_rounds", "dir", "chunk_tokens",
                             "allow_hosts", "api_key", "temperature", "unknown_key", "timeout_s"]),
            st.one_of(st.integers(-(10**20), 10**20).map(str), st.text(max_size=12).map(json.dumps),
                      st.sampled_from(["true", "[1, 2]", "{a = 1}", "nan", "-inf", '"""x', "[", "1979-05-27"])),
        ),
        max_size=6,
    ).map(lambda rows: "\n".join(f"{section}\n{key} = {value}" for section, key, value in rows)),
)  # fmt: skip


@FUZZ
@given(TOML_ISH)
def test_random_config_files_give_one_line_errors(sandbox, text):
    path = sandbox / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    code, stdout, stderr = run_cli("config", "show", "--config", str(path), "--json")
    assert_clean_failure(code, stdout, stderr)
    if code == 0:
        json.loads(stdout)  # a config that loads is shown in full
    else:
        assert "deepsearch: error:" in stderr and str(path) in stderr


def deep_json(depth: int) -> str:
    return '{"id": "d", "text": ' + "[" * depth + '"x"' + "]" * depth + "}"


INDEX_FILES = st.tuples(
    st.sampled_from([".jsonl", ".json", ".txt", ".md", ".html", ".pdf"]),
    st.one_of(
        st.binary(max_size=2000),
        st.sampled_from([deep_json(2_000).encode(), b"x" * 1_000_000, b'{"id": 1, "text": ' + b"9" * 5000 + b"}",
                         b"\xef\xbb\xbf" + b'{"id": "a", "text": "bom"}\n' + b"\xff\xfe\x00garbage\n" * 20,
                         b"[" * 2_000, b'{"id": "n", "text": null}\n{"id": [], "text": {}}\n', b"%PDF-1.4\n%%EOF"]),
    ),
)  # fmt: skip


@settings(FUZZ, max_examples=25)
@given(st.lists(INDEX_FILES, min_size=1, max_size=3))
def test_random_index_inputs_are_indexed_or_skipped_never_crash(sandbox, files):
    corpus = sandbox / "corpus"
    corpus.mkdir(exist_ok=True)
    for old in corpus.iterdir():
        old.unlink()
    for n, (suffix, data) in enumerate(files):
        (corpus / f"f{n}{suffix}").write_bytes(data)
    report = update_index(sandbox / "index", [corpus], IndexOptions(dense=False), rebuild=True)
    accounted = {Path(s.path.split(":")[0].split("[")[0]).name for s in report.skipped}
    assert report.files_added + len(accounted) >= len(files)  # every file indexed or skipped with a reason
    searcher = LocalSearcher(sandbox / "index", IndexSettings(mode="bm25"))
    try:
        searcher.search("lorem x 9", k=3)  # the index that came out is whole and searchable
    finally:
        searcher.close()


BATCH_LINES = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.builds(lambda q, i: json.dumps({"id": i, "question": q}), st.text(max_size=30),
                  st.one_of(st.text(max_size=8), st.integers(), st.none(), st.lists(st.integers(), max_size=2))),
        st.sampled_from(["{", "[]", "null", '{"id": "big", "question": ' + "9" * 5000 + "}",
                          '{"question": ""}', '{"id": "x"}', deep_json(2_000), "\ufeff{}"]),
    ),
    max_size=8,
)  # fmt: skip


@FUZZ
@given(BATCH_LINES, st.sampled_from([".jsonl", ".csv"]))
def test_random_batch_input_lines_become_questions_or_numbered_problems(sandbox, lines, suffix):
    path = sandbox / f"in{suffix}"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
    try:
        questions, problems = read_questions(path)
    except UsageError:
        return
    assert all(q.question.strip() and q.id for q in questions)
    assert len({q.id for q in questions}) == len(questions)
    assert all(p.line >= 1 for p in problems)


def test_fuzz_sandbox_really_runs_commands(sandbox):
    """The harness is not vacuous: a bad flag fails, a deepsearch error is one line, help works."""
    assert run_cli("config", "show", "--json")[0] == 0
    code, _, stderr = run_cli("index", "--chunk-tokens", "nope", "x")
    assert code == 2 and "Traceback" not in stderr
    code, _, stderr = run_cli("index", "missing-folder")
    assert code != 0 and stderr.startswith("deepsearch: error: cannot index") and stderr.count("\n") == 1
    assert os.listdir(sandbox) is not None


def test_inputs_the_fuzzer_broke_before(sandbox):
    """Regressions: deep nesting, a 5000-digit number, a corpus of wordless records, an empty .jsonl."""
    corpus = sandbox / "corpus"
    corpus.mkdir()
    (corpus / "deep.jsonl").write_text(deep_json(2_000) + '\n{"id": "n", "text": ' + "9" * 5000 + "}\n")
    (corpus / "wordless.jsonl").write_text('{"id": "w", "text": "{}"}\n')
    (corpus / "empty.jsonl").write_text("")
    report = update_index(sandbox / "index", [corpus], IndexOptions(dense=False))
    reasons = sorted(s.reason for s in report.skipped)
    assert [r.split(" (")[0] for r in reasons] == ["invalid JSON: Exceeds the limit", "invalid JSON: nested too deeply",
                                                   "no records"]  # fmt: skip
    searcher = LocalSearcher(sandbox / "index", IndexSettings(mode="bm25"))
    assert searcher.search("anything", k=3) == []  # one wordless chunk: searchable, nothing matches
    searcher.close()
    (sandbox / "in.jsonl").write_text(deep_json(2_000) + "\n")
    assert [p.line for p in read_questions(sandbox / "in.jsonl")[1]] == [1]
