"""Prompt-injection detector over the case corpus: the share of injections it flags, per family, and the
share of benign imperative prose it flags by mistake. `subtle` cases carry no instruction-like phrase and
are left to the judge's `instructions_inside` label; they are counted apart.

    .venv/bin/python -m bench.injection_detector [--cases tests/fixtures/injection/cases.jsonl]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from deepsearch.agent.injection import find_injection

from bench.stats import print_table

DEFAULT_CASES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "injection" / "cases.jsonl"


def run(cases: Path = DEFAULT_CASES) -> dict:
    records = [json.loads(line) for line in cases.read_text().splitlines() if line.strip()]
    total, hits = Counter(), Counter()
    for case in records:
        total[case["kind"]] += 1
        hits[case["kind"]] += find_injection(case["text"]) is not None
    overt = [k for k in total if k not in ("benign", "subtle")]
    overt_total = sum(total[k] for k in overt)
    return {
        "detector_hit_rate": sum(hits[k] for k in overt) / overt_total,
        "detector_cases": overt_total,
        "subtle_hit_rate": hits["subtle"] / total["subtle"] if total["subtle"] else None,
        "subtle_cases": total["subtle"],
        "false_positive_rate": hits["benign"] / total["benign"] if total["benign"] else None,
        "benign_cases": total["benign"],
        "by_kind": {k: {"hit": hits[k], "of": total[k]} for k in sorted(total)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    figures = run(parser.parse_args().cases)
    rows = [(kind, f"{v['hit']}/{v['of']} flagged") for kind, v in figures["by_kind"].items()]
    rows += [
        ("hit rate (overt)", f"{figures['detector_hit_rate']:.1%} of {figures['detector_cases']}"),
        ("false positives", f"{figures['false_positive_rate']:.1%} of {figures['benign_cases']}"),
    ]
    print_table("Prompt-injection detector", rows)


if __name__ == "__main__":
    main()
