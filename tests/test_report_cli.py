"""`deepsearch ask --report` as a user runs it (a subprocess against the fake server and the sample index),
and the pieces it prints with: the argument rewrite, the HTML page, the duplicate checks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from deepsearch.agent.commands.ask import report_argv
from deepsearch.agent.report.checks import near_duplicate, without_duplicates
from deepsearch.agent.report.html import render_html
from deepsearch.agent.report.info import SectionResult, WrittenClaim

from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import ScriptedModel, build_sample_index, server_responder

QUESTION = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"


def deepsearch(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    code = "import sys; from deepsearch.agent.cli import main; sys.argv[0] = 'deepsearch'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(responder=server_responder(ScriptedModel())) as s:
        yield s


def test_report_to_an_html_file_and_as_markdown_to_stdout(tmp_path, cli_env, server):
    common = ["--index", str(build_sample_index(tmp_path)), "--no-web", "--llm-base-url", server.base_url, "-q"]
    page = tmp_path / "report.html"
    done = deepsearch("ask", QUESTION, *common, "--report", str(page), "--words", "300", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and f"report written to {page}" in done.stderr and "verified" in done.stderr
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<h2>Summary</h2>" in html and "<h2>Sources</h2>" in html
    assert '<a href="#source-1">[1]</a>' in html and '<li id="source-1">' in html
    assert not list(tmp_path.glob(".report.html.*"))  # written beside it, then renamed

    md = deepsearch("ask", QUESTION, *common, "--report", env=cli_env)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# ") and "\n## Summary\n" in md.stdout and "\n## Sources\n" in md.stdout
    assert "Verified citations:" in md.stdout and "trace: " in md.stdout

    as_json = deepsearch("ask", QUESTION, *common, "--report", "--json", env=cli_env)
    result = json.loads(as_json.stdout)
    assert result["report"]["cited_sentences"] >= 1 and result["answer"].startswith("# ")
    assert result["report"]["verified_sentences"] == result["report"]["cited_sentences"]


@pytest.mark.parametrize(("args", "message"), [
    (["--report", "missing-folder/out.md"], "folder missing-folder does not exist"),
    (["--report", "--format", "pdf"], "--format must be markdown or html"),
    (["--report", "--closed-book"], "cannot be combined with --closed-book"),
])  # fmt: skip
def test_report_usage_errors_are_one_line_and_exit_non_zero(tmp_path, cli_env, server, args, message):
    common = ["--index", str(build_sample_index(tmp_path)), "--no-web", "--llm-base-url", server.base_url, "-q"]
    done = deepsearch("ask", QUESTION, *common, *args, env=cli_env)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_report_argument_takes_a_file_only_when_it_names_one():
    assert report_argv(["ask", "Q?", "--report", "out.html"]) == ["ask", "Q?", "--report", "--report-file", "out.html"]
    assert report_argv(["ask", "--report=notes"]) == ["ask", "--report", "--report-file", "notes"]
    assert report_argv(["ask", "--report", "How do X and Y compare?"]) == ["ask", "--report", "How do X and Y compare?"]
    assert report_argv(["batch", "--report", "x.md"]) == ["batch", "--report", "x.md"]


def test_html_escapes_what_sources_say_and_links_citations():
    markdown = ("# T\n\n## Summary\n\nA fact. [1]\n\n## Sources\n\n"
                "1. **<script>alert(1)</script>** — `x`\n\n   > <img src=x onerror=alert(1)> [2]\n")  # fmt: skip
    page = render_html(markdown, "T <b>")
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert '<li id="source-1">' in page and '<a href="#source-1">[1]</a>' in page
    assert "<title>T &lt;b&gt;</title>" in page


def test_near_duplicates_across_sections_go_but_the_summary_may_restate():
    assert near_duplicate("Temple played Archer in 1945.", "Temple played Archer in 1945")
    assert not near_duplicate("Temple played Archer in 1945.", "Temple was Chief of Protocol.")

    def sec(i, *texts):
        return SectionResult(id=i, status="written", claims=[WrittenClaim(text=t, citations=["e1"]) for t in texts])

    summary = sec("summary", "Temple played Corliss Archer.", "She later became Chief of Protocol.")
    first = sec("g1", "Temple played Corliss Archer.", "The film was released in 1945.")
    # Each sentence differs from g1's, but together they say the same as g1: a repeated paragraph.
    second = sec("g2", "The film was released in 1945 and Temple played Corliss Archer.")
    out, notes = without_duplicates([summary, first, second])
    assert [len(s.claims) for s in out] == [2, 2, 0]
    assert out[2].status == "empty" and out[2].removed[0].reason == "paragraph repeats section g1"
    assert any("paragraph repeating section g1" in n for n in notes)
