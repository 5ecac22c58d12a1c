"""Export throughput (trajectories/s) on synthetic runs: index build, then each export format.

Runs are recorded once through the public recorder API (bench.traces_recorder measures that cost);
`--dir` reuses a directory from an earlier call so repeated measurements skip the recording.

    .venv/bin/python -m bench.traces_export [--runs 10000] [--dir /tmp/traces-bench] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from deepsearch.traces.export import ExportOptions, export
from deepsearch.traces.filters import RunFilter
from deepsearch.traces.index import INDEX_FILE, TraceIndex
from deepsearch.traces.reader import log_paths
from deepsearch.traces.synthetic import record_synthetic_run

from bench.stats import print_table, summary

FORMATS: dict[str, ExportOptions] = {
    "messages": ExportOptions(format="messages", reasoning="think"),
    "messages_filtered": ExportOptions(
        format="messages", filter=RunFilter(correct_only=True, efficiency_quantile=0.5, dedupe=True)
    ),
    "sharegpt": ExportOptions(format="sharegpt"),
    "roles": ExportOptions(format="roles", val_fraction=0.1),
    "dpo": ExportOptions(format="dpo"),
}


def _ensure_runs(directory: Path, runs: int) -> float:
    """Record runs until `directory` holds `runs` of them; returns recording seconds (0 if none needed)."""
    have = len(log_paths(directory))
    start = time.perf_counter()
    for seed in range(have, runs):
        record_synthetic_run(directory, seed)
    return time.perf_counter() - start if have < runs else 0.0


def run(runs: int = 10_000, directory: Path | None = None, repeats: int = 3) -> dict:
    tmp = None if directory else tempfile.mkdtemp(prefix="traces-bench-")
    directory = Path(directory or tmp)
    try:
        record_s = _ensure_runs(directory, runs)
        n = len(log_paths(directory))
        index_s = []
        for _ in range(repeats):
            (directory / INDEX_FILE).unlink(missing_ok=True)
            start = time.perf_counter()
            TraceIndex(directory).sync()
            index_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        TraceIndex(directory).sync()
        warm_sync_s = time.perf_counter() - start
        figures = {
            "runs": n,
            "record_runs_per_s": n / record_s if record_s else None,
            "index_build_runs_per_s": n / summary(index_s)["median"],
            "index_warm_sync_ms": warm_sync_s * 1e3,
        }
        with tempfile.TemporaryDirectory() as out:
            for name, opts in FORMATS.items():
                seconds, exported = [], 0
                for _ in range(repeats):
                    start = time.perf_counter()
                    target = Path(out) / name if opts.format == "roles" else Path(out) / name / "out.jsonl"
                    result = export(directory, target, opts)
                    seconds.append(time.perf_counter() - start)
                    exported = result.runs_exported
                # Per run in the directory: a filtered export still syncs the index and filters every run.
                figures[f"export_throughput_{name}_runs_per_s"] = n / summary(seconds)["median"]
                figures[f"export_{name}_runs"] = exported
        return figures
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the synthetic runs here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    f = run(args.runs, args.dir, args.repeats)
    rows = [("runs", str(f["runs"]))]
    if f["record_runs_per_s"]:
        rows.append(("record (synthetic runs)", f"{f['record_runs_per_s']:.0f} runs/s"))
    rows += [
        ("index build (cold)", f"{f['index_build_runs_per_s']:.0f} runs/s"),
        ("index sync (warm, nothing changed)", f"{f['index_warm_sync_ms']:.0f} ms"),
    ]
    for name in FORMATS:
        rate, kept = f[f"export_throughput_{name}_runs_per_s"], f[f"export_{name}_runs"]
        rows.append((f"export {name}", f"{rate:.0f} runs/s ({kept} of {f['runs']} runs written)"))
    print_table(f"trajectory export throughput (median of {args.repeats})", rows)


if __name__ == "__main__":
    main()
