"""`traces export`: filter runs, turn each into samples, write JSONL (and Parquet), summarise.

Files are written beside their final name and renamed at the end, so an export that fails half-way
leaves no half-written dataset behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from deepsearch.agent.errors import UsageError
from deepsearch.agent.tokens import count_tokens
from pydantic import BaseModel, Field

from .chat_template import TemplateChecker, TemplateReport, load_chat_template
from .filters import FilterCount, RunFilter, is_validation, quantile, question_key, select_runs
from .index import RunSummary, TraceIndex
from .messages import ReasoningMode, to_messages, to_sharegpt
from .pairs import SiblingCollector, preference_pairs, role_pairs, snapshot_of
from .paths import PathScrubber
from .reader import find_log, load_trajectory
from .recorder import RUNS_DIR
from .redact import Redactor, secrets_from_env
from .schema import Trajectory

ExportFormat = Literal["messages", "sharegpt", "roles", "dpo"]


class ExportOptions(BaseModel):
    format: ExportFormat = "messages"
    reasoning: ReasoningMode = "drop"
    max_tool_chars: int = Field(4000, ge=0)
    roles: list[str] = Field(default_factory=list, description="roles format: only these roles")
    val_fraction: float = Field(0.0, ge=0, lt=1)
    parquet: bool = False
    absolute_paths: bool = Field(False, description="keep local paths as they were on the machine (private use)")
    keep_ungrounded: bool = Field(False, description="keep (flagged) records whose citations do not resolve")
    check_template: Path | None = Field(None, description="GGUF / tokenizer_config.json / .jinja whose chat template "
                                        "must render every record whole; records it cannot are left out")
    template_name: str | None = Field(None, description="which of several named templates (default: tool_use)")
    filter: RunFilter = Field(default_factory=RunFilter)


class ExportSummary(BaseModel):
    format: str
    filters: list[FilterCount]
    runs_exported: int
    files: dict[str, int] = Field(description="path -> samples written")
    token_percentiles: dict[str, int] = Field(description="o200k tokens per sample: p50, p90, p99, max")
    ungrounded: int = Field(0, description="messages/sharegpt records whose citations do not all resolve to a passage")
    ungrounded_examples: list[str] = Field(default_factory=list, description="trace id: first reason (up to 5)")
    dropped: dict[str, int] = Field(default_factory=dict, description="records left out, by reason")
    template: TemplateReport | None = Field(None, description="the --check-template report")
    seconds: float = 0.0


def conversation(traj: Trajectory, opts: ExportOptions) -> dict[str, Any]:
    """The run as one chat record: messages, tools (a JSON string: one Arrow type for every record; TRL's SFT
    trainer parses it), and meta with whether every citation resolves to a passage in an earlier tool turn."""
    sample = to_messages(traj, reasoning=opts.reasoning, max_tool_chars=opts.max_tool_chars)
    grounding = sample.pop("grounding")
    sample["tools"] = json.dumps(sample["tools"], ensure_ascii=False)
    sample["meta"] = {
        "question": traj.question,
        "termination": traj.final.termination if traj.final else None,
        "correct": traj.correct,
        "tool_calls": len(traj.tool_calls()),
        "tokens": traj.tokens,
        "grounded": not grounding,
        "grounding": grounding,
        "snapshot": snapshot_of(traj),  # the web snapshot a replayed run ran on
    }
    return sample


def _samples(traj: Trajectory, opts: ExportOptions) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group, sample) pairs; the group picks the file (a role name for the roles format)."""
    if opts.format in ("messages", "sharegpt"):
        sample = conversation(traj, opts)
        yield "", (to_sharegpt(sample) | {"meta": sample["meta"]}) if opts.format == "sharegpt" else sample
    elif opts.format == "roles":
        for pair in role_pairs(traj, reasoning=opts.reasoning, roles=set(opts.roles) or None):
            yield pair["role"], pair
    else:
        for pair in preference_pairs(traj, reasoning=opts.reasoning):
            yield "", pair


def _sample_text(sample: dict[str, Any]) -> str:
    """Every string the model reads or writes in a sample, for token counting."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, dict):
            for k, v in node.items():
                if k not in ("meta", "id", "role", "from", "type", "tool_call_id"):
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(sample)
    return "\n".join(parts)


def _redacted(traj: Trajectory, redactor: Redactor) -> Trajectory:
    """The run with the recorder's masking applied again (page text keeps its words, as when recorded)."""
    data = traj.model_dump(mode="json")
    clean = redactor.clean(data)
    return traj if clean is data else Trajectory.model_validate(clean)


def _target(out: Path, fmt: str, group: str, split: str) -> Path:
    suffix = f".{split}.jsonl" if split else ".jsonl"
    if fmt == "roles":
        return out / f"{group}{suffix}"
    return out.with_name(out.name.removesuffix(".jsonl") + suffix) if split else out


def _write_parquet(path: Path) -> Path:
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    target = path.with_suffix(".parquet")
    tmp = target.with_name(target.name + ".part")
    # Blocks big enough for any record: a record straddling two blocks fails pyarrow's reader.
    pq.write_table(pajson.read_json(path, read_options=pajson.ReadOptions(block_size=64 << 20)), tmp)
    tmp.replace(target)
    return target


class _Writer:
    """The export's files: samples go to `<name>.part` files renamed into place on success (removed on
    failure, so a failed export leaves no half-written dataset); records whose citations do not resolve are
    left out (or kept, flagged) and counted."""

    def __init__(self, out: Path, opts: ExportOptions, checker: TemplateChecker | None = None):
        self.out, self.opts, self.checker = out, opts, checker
        self.handles: dict[Path, Any] = {}
        self.written: dict[Path, int] = {}
        self.lengths: list[int] = []
        self.ungrounded: list[str] = []
        self.dropped: dict[str, int] = {}

    def write(self, sample: dict[str, Any], group: str, trace_id: str, question: str,
              scrub: PathScrubber | None = None) -> None:  # fmt: skip
        problems = sample.get("meta", {}).get("grounding") or []
        if problems:
            self.ungrounded.append(f"{trace_id}: {problems[0]}")
            if not self.opts.keep_ungrounded:
                self.dropped["ungrounded"] = self.dropped.get("ungrounded", 0) + 1
                return
        if self.checker is not None and not (check := self.checker.add(scrub.clean(sample) if scrub else sample)).ok:
            reason = f"the chat template drops part of it: {check.reason}"
            self.dropped[reason] = self.dropped.get(reason, 0) + 1
            return
        fraction = self.opts.val_fraction
        split = ("val" if is_validation(question, fraction) else "train") if fraction else ""
        path = _target(self.out, self.opts.format, group, split)
        if path not in self.handles:
            self.handles[path] = open(f"{path}.part", "w", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
            self.written[path] = 0
        line = json.dumps(sample, ensure_ascii=False)
        # Paths come out of the written line (one pass; a JSON string holds a path as written, see paths.py).
        self.handles[path].write((scrub.text(line) if scrub else line) + "\n")
        self.written[path] += 1
        self.lengths.append(count_tokens(_sample_text(sample)))

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for path, handle in self.handles.items():
            handle.close()
            if exc_type is None:
                os.replace(f"{path}.part", path)
            else:
                Path(f"{path}.part").unlink(missing_ok=True)

    def files(self) -> dict[str, int]:
        files = {str(p): n for p, n in self.written.items()}
        if self.opts.parquet:
            files |= {str(_write_parquet(p)): n for p, n in self.written.items()}
        return files


def _questions_with_both_outcomes(runs: list[RunSummary]) -> set[str]:
    """Questions (normalised) with a correct and a wrong run: the only ones whose runs can make sibling pairs,
    so only their conversations are built."""
    outcomes: dict[str, set[bool]] = {}
    for r in runs:
        if r.correct is not None:
            outcomes.setdefault(question_key(r.question), set()).add(r.correct)
    return {q for q, seen in outcomes.items() if len(seen) == 2}


def export(
    traces_dir: Path,
    out: Path,
    opts: ExportOptions,
    trace_ids: list[str] | None = None,
    redactor: Redactor | None = None,
) -> ExportSummary:
    """Write the samples. Each run passes `redactor` again (default: env secrets and the built-in patterns), so a
    log written by an older version, by another tool or before a pattern was configured leaks nothing."""
    if opts.format == "sharegpt" and opts.reasoning == "field":
        raise UsageError("sharegpt has no reasoning field: use --reasoning think or --reasoning drop")
    if opts.parquet:
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise UsageError("--parquet needs pyarrow: pip install 'deepsearch[parquet]'") from None
    if opts.format == "roles" and out.exists() and not out.is_dir():
        raise UsageError(f"--format roles writes one file per role: -o must be a directory, {out} is a file")
    redactor = redactor or Redactor(secrets_from_env())
    runs = TraceIndex(traces_dir).sync()
    if trace_ids:
        wanted = {find_log(traces_dir, t).stem for t in trace_ids}
        runs = [r for r in runs if r.id in wanted]
    selected, counts = select_runs(runs, opts.filter)
    selected.sort(key=lambda r: r.id)  # oldest first: stable, reproducible files

    (out if opts.format == "roles" else out.parent).mkdir(parents=True, exist_ok=True)
    checker = None
    if opts.check_template is not None:
        checker = TemplateChecker(load_chat_template(opts.check_template, opts.template_name))
    writer = _Writer(out, opts, checker)
    # dpo: sibling runs (same question, one right and one wrong) pair up once every run has been read.
    siblings = SiblingCollector(lambda t: conversation(t, opts)) if opts.format == "dpo" else None
    paired = _questions_with_both_outcomes(selected) if siblings is not None else set()
    started = time.perf_counter()
    with writer:
        for run in selected:
            traj = _redacted(load_trajectory(Path(traces_dir).expanduser() / RUNS_DIR / run.file), redactor)
            scrub = None if opts.absolute_paths else PathScrubber.for_run(traj)
            if siblings is not None and question_key(traj.question) in paired:
                siblings.add(traj, scrub=scrub)
            for group, sample in _samples(traj, opts):
                writer.write(sample, group, traj.id, traj.question, scrub)
        for pair in siblings.pairs() if siblings is not None else ():
            writer.write(pair, "", pair["meta"]["chosen_trace"], pair["meta"]["question"])
    files = writer.files()
    return ExportSummary(
        format=opts.format,
        filters=counts,
        runs_exported=len(selected),
        files=files,
        ungrounded=len(writer.ungrounded),
        ungrounded_examples=writer.ungrounded[:5],
        dropped=writer.dropped,
        template=checker.report() if checker is not None else None,
        token_percentiles=_percentiles(writer.lengths),
        seconds=round(time.perf_counter() - started, 3),
    )


def _percentiles(lengths: list[int]) -> dict[str, int]:
    if not lengths:
        return {}
    floats = [float(n) for n in lengths]
    return {f"p{q}": round(quantile(floats, q / 100)) for q in (50, 90, 99)} | {"max": max(lengths)}
