"""Rich views of trajectories: the run as a tree (`traces show`), the run list, the statistics."""

from __future__ import annotations

from collections import Counter, defaultdict

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .filters import quantile
from .index import RunSummary
from .schema import (
    BudgetStep,
    InformationStep,
    JudgeStep,
    LLMCallStep,
    RerankStep,
    Step,
    ToolCallStep,
    Trajectory,
)


def _clip(text: str | None, n: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _step_label(step: Step) -> Text:
    if isinstance(step, LLMCallStep):
        status = f" [{step.status}]" if step.status and step.status != "ok" else ""
        style = "red" if step.error or step.accepted is False else "cyan"
        detail = step.error or _clip(step.output, 70)
        tokens = f"{step.prompt_tokens}+{step.completion_tokens} tok, {step.latency_s:.2f}s"
        return Text(f"llm {step.role}{status} · {tokens} · {detail}", style=style)
    if isinstance(step, ToolCallStep):
        args = ", ".join(f"{k}={_clip(str(v), 50)}" for k, v in step.arguments.items())
        outcome = f"{len(step.results)} result(s)" if step.success else f"failed: {_clip(step.error, 60)}"
        return Text(f"{step.tool}({args}) → {outcome}", style="green" if step.success else "red")
    if isinstance(step, RerankStep):
        kept = sum(c.kept for c in step.candidates)
        return Text(f"rerank {_clip(step.query, 50)!r}: kept {kept}/{len(step.candidates)} (cutoff {step.cutoff})")
    if isinstance(step, JudgeStep):
        labels = ", ".join(f"{k}={v}" for k, v in step.labels.items())
        return Text(f"judge {step.target}: {labels} → {step.decision} · {_clip(step.rationale, 60)}", style="magenta")
    if isinstance(step, InformationStep):
        return Text(f"information: belief {step.belief:.3f} ({step.measure}), gain {step.gain:+.3f}", style="yellow")
    if isinstance(step, BudgetStep):
        used = ", ".join(
            f"{k} {v:g}/{step.limits[k]:g}" if k in step.limits else f"{k} {v:g}" for k, v in step.used.items()
        )
        return Text(f"budget: {used}", style="dim")
    return Text(step.kind)


def _add_step(node: Tree, step: Step) -> None:
    child = node.add(_step_label(step))
    if isinstance(step, RerankStep):
        for c in step.candidates:
            mark = "✓" if c.kept else "✗"
            child.add(
                Text(
                    f"{mark} {c.id} {c.score:.2f} {c.reason} · {_clip(c.rationale, 60)}", style="" if c.kept else "dim"
                )
            )


def trajectory_tree(traj: Trajectory) -> Tree:
    title = Text.assemble((traj.id, "bold"), f" · {traj.status} · {traj.created:%Y-%m-%d %H:%M:%S} · {traj.mode}")
    root = Tree(title)
    root.add(Text(f"question: {traj.question}", style="bold"))
    if traj.resolved_question and traj.resolved_question != traj.question:
        root.add(f"resolved: {traj.resolved_question}")
    served = sorted({f"{s.backend}:{s.model}" for s in traj.llm_calls() if s.model})
    declared = [f"{m.backend}:{m.model}" + (f" ({m.role})" if m.role != "*" else "") for m in traj.models if m.model]
    models = ", ".join(served or declared)
    root.add(Text(f"models: {models or '-'} · prompts: {len(traj.prompts)}", style="dim"))

    by_subgoal: dict[str | None, list[Step]] = defaultdict(list)
    for step in traj.steps:
        by_subgoal[step.subgoal].append(step)
    run_steps = by_subgoal.pop(None, [])
    run_level = root.add("run") if run_steps else None
    for step in run_steps:
        _add_step(run_level, step)
    if traj.dag or by_subgoal:
        plan = root.add(f"plan: {len(traj.dag)} sub-goal(s), {len(traj.dag_changes)} change(s)")
        goals = {g.id: g for g in traj.dag}
        for sid in [*goals, *(s for s in by_subgoal if s not in goals)]:
            goal = goals.get(sid)
            label = f"{sid}: {_clip(goal.question, 70)} [{goal.status}]" if goal else f"{sid}"
            node = plan.add(Text(label, style="bold" if goal and goal.status != "dropped" else "dim"))
            for change in (c for c in traj.dag_changes if c.subgoal.id == sid):
                node.add(Text(f"{change.action} after step {change.caused_by}: {change.reason}", style="dim italic"))
            for step in by_subgoal.get(sid, []):
                _add_step(node, step)

    if traj.final is None:
        root.add(Text("no final answer: the run did not finish (incomplete)", style="bold red"))
        return root
    f = traj.final
    answer = root.add(Text(f"answer ({f.termination}): {f.answer or '-'}", style="bold green"))
    for c in f.citations:
        answer.add(f"[{c.n}] {c.evidence_id} · {c.source}")
    if f.error:
        answer.add(Text(f"error: {f.error}", style="red"))
    if f.scores:
        s = f.scores
        answer.add(f"gold: {', '.join(f.gold or [])} · EM {s.em} · F1 {s.f1} · judge {s.judge}")
    u = f.usage
    root.add(
        Text(
            f"usage: {u.llm_calls} LLM calls, {u.prompt_tokens}+{u.completion_tokens} tokens, "
            f"{u.searches} searches, {u.fetches} fetches, {u.seconds:.1f}s",
            style="dim",
        )
    )
    return root


def runs_table(runs: list[RunSummary]) -> Table:
    table = Table(show_lines=False)
    for col in ("id", "started (UTC)", "status", "termination", "score", "tokens", "tools", "question"):
        table.add_column(col, overflow="fold" if col == "question" else "ellipsis", no_wrap=col != "question")
    for r in runs:
        score = "" if r.score is None else f"{r.score:.2f}" + (" ✓" if r.correct else "")
        status_style = {"complete": "green", "incomplete": "yellow", "damaged": "red"}.get(r.status, "")
        table.add_row(
            r.id,
            f"{r.created:%Y-%m-%d %H:%M:%S}",
            Text(r.status, style=status_style),
            r.termination or "-",
            score,
            str(r.tokens),
            str(r.tool_calls),
            _clip(r.problem or r.question, 70),
        )
    return table


def run_stats(runs: list[RunSummary]) -> dict:
    """Counts and distributions over the runs, as plain data (printed as a table or as JSON)."""
    finished = [r for r in runs if r.status == "complete"]
    scored = [r for r in finished if r.correct is not None]

    def dist(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {
            "mean": round(sum(values) / len(values), 2),
            "p50": quantile(values, 0.5),
            "p90": quantile(values, 0.9),
            "max": max(values),
        }

    return {
        "runs": len(runs),
        "status": dict(Counter(r.status for r in runs)),
        "termination": dict(Counter(r.termination for r in finished)),
        "accuracy": round(sum(bool(r.correct) for r in scored) / len(scored), 4) if scored else None,
        "scored_runs": len(scored),
        "tokens": dist([float(r.tokens) for r in finished]),
        "llm_calls": dist([float(r.llm_calls) for r in finished]),
        "tool_calls": dist([float(r.tool_calls) for r in finished]),
        "info_gain": dist([r.info_gain for r in finished]),
    }


def stats_table(stats: dict) -> Table:
    table = Table("figure", "value", show_header=False)
    for key, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v:g}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items()) or "-"
        table.add_row(key, "-" if value is None else str(value))
    return table
