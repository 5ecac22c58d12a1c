"""The live view of a running question: sub-goal DAG, queries, evidence, verdicts, information gain, budgets."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .progress import RunSnapshot, SubGoalView

STATUS_MARK = {"planned": "○", "running": "◐", "done": "●", "dropped": "✗", "changed": "◌"}
STATUS_STYLE = {"planned": "dim", "running": "yellow", "done": "green", "dropped": "red", "changed": "cyan"}
SPARKS = "▁▂▃▄▅▆▇█"
BUDGETS = ("llm_calls", "tokens", "searches", "fetches", "seconds")


def _clip(text: str | None, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def sparkline(values: list[float]) -> str:
    """One block per value, scaled between the smallest (or 0) and the largest value."""
    if not values:
        return ""
    low, high = min(0.0, *values), max(values)
    span = high - low or 1.0
    return "".join(SPARKS[round((v - low) / span * (len(SPARKS) - 1))] for v in values)


def amount(kind: str, value: float) -> str:
    return f"{value:.1f}" if kind == "seconds" else f"{int(value)}"


def _subgoal_label(sg: SubGoalView) -> Text:
    label = Text(f"{STATUS_MARK.get(sg.status, '?')} {sg.id} ", style=STATUS_STYLE.get(sg.status, ""))
    label.append(_clip(sg.question, 70))
    if sg.kept or sg.dropped:
        label.append(f"  kept {sg.kept}/dropped {sg.dropped}", style="dim")
    if sg.answer:
        label.append(f"  → {_clip(sg.answer, 40)}", style="bold")
    elif sg.step and sg.status == "running":
        label.append(f"  {sg.step}", style="yellow")  # parallel sub-goals each show their own step
    return label


def dag_tree(subgoals: list[SubGoalView], title: str = "plan") -> Tree:
    """Sub-goals under the first sub-goal they depend on; other dependencies are named in the label."""
    tree = Tree(Text(title, style="bold"), guide_style="dim")
    known = {sg.id for sg in subgoals}
    nodes: dict[str, Tree] = {}
    pending = list(subgoals)
    while pending:
        placed = False
        for sg in list(pending):
            parents = [d for d in sg.depends_on if d in known]
            if parents and parents[0] not in nodes:
                continue  # its parent is not drawn yet
            label = _subgoal_label(sg)
            if len(parents) > 1:
                label.append(f"  (also after {', '.join(parents[1:])})", style="dim")
            nodes[sg.id] = (nodes[parents[0]] if parents else tree).add(label)
            pending.remove(sg)
            placed = True
        if not placed:  # a cycle or unknown order: draw the rest flat rather than lose them
            for sg in pending:
                nodes[sg.id] = tree.add(_subgoal_label(sg))
            break
    return tree


def _budget_bars(budget: dict[str, float]) -> Table:
    grid = Table.grid(padding=(0, 1))
    for kind in BUDGETS:
        used, limit = budget.get(kind), budget.get(f"max_{kind}")
        if used is None or not limit:
            continue
        style = "red" if used >= limit else "yellow" if used >= 0.8 * limit else "green"
        grid.add_row(
            Text(kind, style="dim"),
            ProgressBar(total=limit, completed=min(used, limit), width=20, complete_style=style),
            Text(f"{amount(kind, used)}/{amount(kind, limit)}"),
        )
    return grid


def run_layout(snap: RunSnapshot, question: str) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("plan", dag_tree(snap.subgoals, f"{len(snap.subgoals)} sub-goal(s)") if snap.subgoals else "…")
    if snap.queries:
        queries = Table.grid(padding=(0, 1))
        for q in snap.queries:
            hits = f"{q.hits} hits" if q.status == "ok" else q.status
            queries.add_row(Text(q.subgoal_id, style="dim"), q.source, _clip(q.query, 70), Text(hits, style="dim"))
        grid.add_row("queries", queries)
    grid.add_row("evidence", f"kept {snap.kept} · dropped {snap.dropped}")
    if snap.verdicts:
        verdicts = Text()
        for i, v in enumerate(snap.verdicts):
            verdicts.append(("\n" if i else "") + f"{v.target}: ")
            verdicts.append(v.decision, style="magenta")
            if v.rationale:
                verdicts.append(f" · {_clip(v.rationale, 60)}", style="dim")
        grid.add_row("judge", verdicts)
    if snap.gains:
        grid.add_row("info gain", Text(sparkline(snap.gains), style="yellow") + Text(f" {snap.gains[-1]:+.2f}"))
    if snap.budget:
        grid.add_row("budget", _budget_bars(snap.budget))
    title = f"[bold]{_clip(question, 80)}[/bold]"
    subtitle = f"{escape(snap.activity)} · {snap.elapsed_s:.1f}s" + ("" if snap.finished else " · Ctrl-C cancels")
    return Panel(Group(grid), title=title, subtitle=subtitle, border_style="blue")
