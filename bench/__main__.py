"""Every benchmark that needs no GPU, repeated, in one table: `python -m bench [--quick] [--data DIR] [--json FILE]`.

Each benchmark's `run(...)` is called `--repeats` times; every number it returns becomes a row with the
median over the repeats and the min and max (a figure that is already a median of its own repeats is
summarised again). A benchmark that cannot run here (no embedded model, no HTML corpus) is listed with why.
`--data` (the HotpotQA dev-500 folder) adds retrieval quality on the real pooled corpus, and the pipeline
against its single-search ceiling with the grounded reader (bench/pipeline_ceiling.py, on dev_ids.txt).

    .venv/bin/python -m bench --quick
    .venv/bin/python -m bench --data /work/shared/data/hotpotqa_dev_distractor_500 --json bench.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (module, kwargs for a full pass, kwargs for --quick); a module that is missing is skipped.
SUITE: list[tuple[str, dict, dict]] = [
    ("llm_client_overhead", {"calls": 200}, {"calls": 40}),
    ("traces_recorder", {"steps": 2000, "repeats": 3}, {"steps": 300, "repeats": 1}),
    ("graph_overhead", {"runs": 5}, {"runs": 2}),
    ("batch_throughput", {"concurrency": (1, 8, 32), "memory_questions": 0},
     {"concurrency": (1, 8), "memory_questions": 0}),
    ("sample_retrieval", {}, {}),
    ("index_speed", {"html": None, "synthetic": 20_000}, {"html": None, "synthetic": 2_000, "dense": False}),
    ("fetch_extract", {"rounds": 3}, {"rounds": 1}),
    ("extract_pool", {"pages": 64, "repeats": 5}, {"pages": 64, "repeats": 1}),
    ("traces_export", {"runs": 2000, "repeats": 1}, {"runs": 200, "repeats": 1}),
    ("embedded_model", {"repeats": 2}, {"repeats": 1}),
    ("injection_detector", {}, {}),
    ("fault_suite", {"questions": 200, "repeats": 1}, {"questions": 40, "repeats": 1}),
    ("ray_throughput", {"repeats": 1}, {"questions": 32, "repeats": 1}),
]  # fmt: skip
DATA_SUITE: list[tuple[str, Callable[[Path], dict], Callable[[Path], dict]]] = [
    ("retrieval_quality", lambda d: {"data_path": d}, lambda d: {"data_path": d, "modes": ("bm25", "hybrid")}),
    ("pipeline_ceiling", lambda d: {"data": d, "ids": d / "dev_ids.txt"},
     lambda d: {"data": d, "ids": d / "dev_ids.txt", "limit": 10}),
    ("report_grounded", lambda d: {"data": d, "ids": d / "dev_ids.txt", "limit": 5},
     lambda d: {"data": d, "ids": d / "dev_ids.txt", "limit": 2}),
]  # fmt: skip


def numeric_leaves(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a nested dict, keyed by its dotted path; a {median, min, max} dict counts as its median."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {prefix: float(value)}
    if isinstance(value, dict):
        if "median" in value and isinstance(value["median"], int | float):
            return {prefix: float(value["median"])}
        leaves: dict[str, float] = {}
        for key, item in value.items():
            leaves |= numeric_leaves(item, f"{prefix}.{key}" if prefix else str(key))
        return leaves
    return {}


def repeated(name: str, kwargs: dict, repeats: int) -> dict:
    """{figure: {median, min, max, n}} over `repeats` calls of bench.<name>.run, or {"skipped": why}."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ImportError as e:
        return {"skipped": f"not available: {e}"}
    samples: dict[str, list[float]] = {}
    started = time.perf_counter()
    for _ in range(repeats):
        try:
            figures = module.run(**kwargs)
        except Exception as e:  # noqa: BLE001 - one benchmark that cannot run here must not stop the others
            return {"skipped": f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"}
        for key, number in numeric_leaves(figures).items():
            samples.setdefault(key, []).append(number)
    summary = {
        key: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)} for key, v in samples.items()
    }
    return {"figures": summary, "seconds": round(time.perf_counter() - started, 1)}


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e6 else f"{x:.3e}"


def print_one_table(results: dict[str, dict]) -> None:
    rows = [("benchmark", "figure", "median", "min", "max")]
    for name, result in results.items():
        if "skipped" in result:
            rows.append((name, "(skipped)", result["skipped"], "", ""))
            continue
        for figure, s in result["figures"].items():
            rows.append((name, figure, _fmt(s["median"]), _fmt(s["min"]), _fmt(s["max"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(widths[i]) if i < 4 else c for i, c in enumerate(r)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a fast pass")
    parser.add_argument("--repeats", type=int, help="runs of each benchmark (default 3, --quick 1)")
    parser.add_argument("--data", type=Path, help="hotpotqa_dev_distractor_500 folder: adds retrieval quality")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    if args.data is not None and not args.data.exists():
        print(f"python -m bench: error: no data at {args.data}", file=sys.stderr)
        return 2
    repeats = args.repeats or (1 if args.quick else 3)
    plan = [(name, quick if args.quick else full) for name, full, quick in SUITE]
    if args.data is not None:
        plan += [(name, (quick if args.quick else full)(args.data)) for name, full, quick in DATA_SUITE]
    if args.only:
        wanted = set(args.only.split(","))
        plan = [(name, kwargs) for name, kwargs in plan if name in wanted]
    results = {}
    for name, kwargs in plan:
        print(f"running {name}…", file=sys.stderr, flush=True)
        results[name] = repeated(name, kwargs, repeats)
    print_one_table(results)
    if args.json is not None:
        payload = {"repeats": repeats, "quick": args.quick, "benchmarks": results}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
