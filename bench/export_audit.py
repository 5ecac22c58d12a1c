"""Audit a training export of real runs: does every cited [n] resolve to a passage in an earlier tool turn, and
does any machine path remain? Independent of the exporter's own check (it re-reads the written file).

    .venv/bin/python -m bench.export_audit TRACES_DIR [--format messages|sharegpt] [--check-template SOURCE]

Prints: runs, records written, records left out (and why), the share of written records whose citations all
resolve (with the cited quote inside the passage text), absolute paths found, export seconds and runs/s.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from deepsearch.traces.export import ExportOptions, export
from deepsearch.traces.reader import load_trajectory, log_paths

# An absolute POSIX path where one starts (not inside a URL): /home/…, /tmp/…, /work/…
ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:home|root|tmp|work|Users|var|srv|mnt|opt|data|media)/[\w.-]")
CITE = re.compile(r"\[(\d+)\]")


def _turns(record: dict, fmt: str) -> list[dict]:
    if fmt == "messages":
        return record["messages"]
    role = {"human": "user", "gpt": "assistant", "observation": "tool", "function_call": "assistant"}
    return [{"role": role[t["from"]], "content": t["value"]} for t in record["conversations"]]


def _passages(turns: list[dict]) -> dict[int, str]:
    found: dict[int, str] = {}
    for t in turns:
        if t["role"] != "tool":
            continue
        bodies = json.loads(t["content"])
        for body in bodies if isinstance(bodies, list) else [bodies]:
            body = json.loads(body) if isinstance(body, str) else body
            for p in body.get("passages", []) if isinstance(body, dict) else []:
                found[p["n"]] = " ".join(p["text"].split())
    return found


def audit(traces_dir: Path, fmt: str = "messages", check_template: Path | None = None) -> dict:
    trajectories = {t.id: t for t in map(load_trajectory, log_paths(traces_dir))}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        start = time.perf_counter()
        summary = export(traces_dir, out, ExportOptions(format=fmt, check_template=check_template))
        seconds = time.perf_counter() - start
        text = out.read_text() if out.exists() else ""
    records = [json.loads(line) for line in text.splitlines()]
    resolved = cited_records = 0
    for record in records:
        turns = _turns(record, fmt)
        answer = turns[-1]["content"].split("\n\nSources:")[0]
        shown = _passages(turns[:-1])
        cited = {int(n) for n in CITE.findall(answer)}
        traj = trajectories[record["id"]]
        quotes = [" ".join(c.quote.split()).removesuffix("…").strip() for c in traj.final.citations]
        cited_records += bool(cited)
        ok = cited <= set(shown) and all(any(q in p for p in shown.values()) for q in quotes)
        resolved += ok
    return {
        "runs": len(trajectories),
        "records": len(records),
        "records_citing": cited_records,
        "left_out": summary.dropped,
        "resolved_share": resolved / len(records) if records else None,
        "absolute_paths": len(ABSOLUTE.findall(text)),
        "export_seconds": round(seconds, 3),
        "runs_per_s": round(len(trajectories) / seconds, 1),
        "template": summary.template.model_dump() if summary.template else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces_dir", type=Path)
    parser.add_argument("--format", default="messages", choices=["messages", "sharegpt"])
    parser.add_argument("--check-template", type=Path)
    args = parser.parse_args()
    print(json.dumps(audit(args.traces_dir, args.format, args.check_template), indent=2))


if __name__ == "__main__":
    main()
