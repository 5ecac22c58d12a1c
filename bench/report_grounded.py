"""Reports written with the grounded reader: is every cited sentence supported by what it cites?

For each question of DATA (a MuSiQue or HotpotQA folder or file, as `deepsearch eval` takes it) the whole
pipeline writes a report (`aresearch(report=…)`) over the data set's pooled passages, the model being the
grounded reader behind the fake OpenAI server (tests/fakes/grounded_reader.py) with `miscite` on: in every
draft it also writes one sentence citing a passage that does not state it, which verification must remove.
Then, outside the pipeline, each cited sentence of the final report is checked again with the reader's
grounded verdict against the passages it cites, and the report's sources list against its citations.

    .venv/bin/python -m bench.report_grounded /work/shared/data/musique_dev_kag_100 --limit 5
    .venv/bin/python -m bench.report_grounded /work/shared/data/hotpotqa_dev_distractor_500 \\
        --ids /work/shared/data/hotpotqa_dev_distractor_500/dev_ids.txt --limit 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from deepsearch.agent.config import load_settings
from deepsearch.agent.errors import UsageError
from deepsearch.agent.eval.datasets import load_dataset, select
from deepsearch.agent.eval.pool import pooled_index
from deepsearch.agent.report.markdown import SOURCES_HEADING, cited_sentences
from deepsearch.agent.report.models import ReportRequest
from deepsearch.agent.run import aresearch
from deepsearch.traces.messages import to_messages
from deepsearch.traces.reader import find_log, load_trajectory

from tests.fakes.grounded_reader import GroundedReader
from tests.fakes.openai_server import FakeOpenAIServer
from tests.graph_support import local_tools


def check_report(reader: GroundedReader, question: str, result, traj) -> dict[str, Any]:
    """The figures of one report, measured from its Markdown and its trajectory."""
    info = result.report
    quotes = {c.n: c for c in result.citations}
    pairs = cited_sentences(result.answer)
    supported = sum(reader.supports(question, s, [(n, "", quotes[n].quote) for n in ns if n in quotes])
                    and all(n in quotes for n in ns) for s, ns in pairs)  # fmt: skip
    sources = result.answer.split(SOURCES_HEADING)[1].split("\n---\n")[0] if SOURCES_HEADING in result.answer else ""
    listed = [int(n) for n in re.findall(r"^(\d+)\. \*\*", sources, re.M)]
    cited = sorted({n for _, ns in pairs for n in ns})
    steps = [s for s in traj.steps if s.kind == "report"]
    removed = [r for s in info.sections for r in s.removed]
    checks = next((s for s in steps if s.stage == "checks"), None)
    in_trajectory = [r["text"] for r in (checks.removed if checks else [])]
    headings = [e["heading"] for e in (checks.outline if checks else [])]
    return {
        "sections": len(info.sections),
        "sections_written": sum(s.status == "written" for s in info.sections),
        "cited_sentences": len(pairs),
        "supported_sentences": supported,
        "removed_unsupported": sum(r.reason.startswith("unsupported") for r in removed),
        "removed_duplicates": sum(not r.reason.startswith("unsupported") for r in removed),
        "removed_listed_in_trajectory": sorted(in_trajectory) == sorted(r.text for r in removed),
        "sources_complete": listed == cited == list(range(1, len(quotes) + 1))
        and all(quotes[n].quote.strip() and quotes[n].source for n in cited),
        "headings_present": all(f"\n## {h}\n" in result.answer for h in headings),
        "export_grounded": to_messages(traj)["grounding"] == [],
        "termination": result.termination,
        "llm_calls": result.usage.llm_calls,
        "tokens": result.usage.prompt_tokens + result.usage.completion_tokens,
        "seconds": result.usage.seconds,
    }


async def _write(question, reader, settings, index: Path, words: int):
    with FakeOpenAIServer(responder=reader) as server:
        s = settings.model_copy(deep=True)
        s.llm.backend, s.llm.base_url, s.llm.model, s.llm.server_kind = "openai", server.base_url, "grounded", "vllm"
        s.llm.max_retries = 0
        result = await aresearch(question.question, settings=s, tools=local_tools(index, s), gold=question.answers,
                                 report=ReportRequest(words=words))  # fmt: skip
    return result, load_trajectory(find_log(s.traces.dir, result.trace_id))


def run(data: Path | str, ids: Path | None = None, limit: int | None = 5, words: int = 800,
        miscite: bool = True, verify: bool = True) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="report-grounded-") as tmp:
        paths = {"traces.dir": f"{tmp}/traces", "agent.checkpoint_db": f"{tmp}/ckpt.sqlite", "agent.web": False,
                 "agent.detect_ambiguity": False, "agent.max_rounds": 3, "agent.verify": verify}  # fmt: skip
        settings = load_settings(overrides=paths).settings
        dataset = load_dataset(str(data), settings.eval.data_dir)
        questions = select(dataset.questions, ids, limit)
        index = pooled_index(dataset, settings)
        reader = GroundedReader.from_dataset(dataset, questions, miscite=miscite)
        rows = []
        for q in questions:
            started = time.monotonic()
            result, traj = asyncio.run(_write(q, reader, settings, index, words))
            rows.append({"id": q.id, **check_report(reader, q.question, result, traj),
                         "wall_s": round(time.monotonic() - started, 2)})  # fmt: skip
    cited = sum(r["cited_sentences"] for r in rows)
    return {
        "data": dataset.name, "questions": len(rows), "miscite": miscite, "verify": verify,
        "cited_sentences": cited,
        "supported_share": sum(r["supported_sentences"] for r in rows) / cited if cited else 0.0,
        "removed_unsupported": sum(r["removed_unsupported"] for r in rows),
        "removed_duplicates": sum(r["removed_duplicates"] for r in rows),
        "all_removed_listed": all(r["removed_listed_in_trajectory"] for r in rows),
        "all_sources_complete": all(r["sources_complete"] for r in rows),
        "all_headings_present": all(r["headings_present"] for r in rows),
        "all_exports_grounded": all(r["export_grounded"] for r in rows),
        "median_llm_calls": statistics.median(r["llm_calls"] for r in rows),
        "rows": rows,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_grounded", description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a data folder or question file (MuSiQue or HotpotQA), as `deepsearch eval`")
    parser.add_argument("--ids", type=Path, help="only these question ids (one per line)")
    parser.add_argument("--limit", type=int, default=5, help="at most this many questions (default 5)")
    parser.add_argument("--words", type=int, default=800, help="the reports' target length")
    parser.add_argument("--no-miscite", action="store_true", help="a writer that never mis-cites")
    parser.add_argument("--no-verify", action="store_true", help="verification off (what it catches stays)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    try:
        f = run(args.data, args.ids, args.limit, args.words, miscite=not args.no_miscite, verify=not args.no_verify)
    except UsageError as e:
        print(f"python -m bench.report_grounded: error: {e}", file=sys.stderr)
        return 2
    for r in f["rows"]:
        print(f"{r['id']}: {r['sections_written']}/{r['sections']} sections, {r['supported_sentences']}/"
              f"{r['cited_sentences']} cited sentences supported, removed {r['removed_unsupported']} unsupported "
              f"+ {r['removed_duplicates']} repeated, sources complete {r['sources_complete']}, "
              f"{r['llm_calls']} calls, {r['termination']}")  # fmt: skip
    print(f"{f['data']}: {f['questions']} reports, supported share {f['supported_share']:.3f} of "
          f"{f['cited_sentences']} cited sentences; removed {f['removed_unsupported']} unsupported (all listed in "
          f"the trajectory: {f['all_removed_listed']}); sources complete: {f['all_sources_complete']}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(f, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
