"""The eval report: per-mode figures as tables, and three charts (accuracy by hops, information gain per
round, LLM calls per question), written as a self-contained .html or as .md with SVG files beside it."""

from __future__ import annotations

from collections import Counter
from html import escape
from pathlib import Path

from pydantic import BaseModel, Field

from ..batch.metrics import abstained_cell
from ..errors import UsageError
from .scoring import ModeReport
from .svg import bar_chart, line_chart


class EvalReport(BaseModel):
    dataset: str
    format: str
    questions: int
    selection: str
    backend: str
    modes: list[ModeReport]
    snapshot: str | None = Field(None, description="the web snapshot the research runs replayed or recorded")


def _snapshot_note(report: EvalReport) -> str:
    return f", web snapshot {report.snapshot}" if report.snapshot else ""


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def overview_rows(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    header = ["metric", *(m.mode.replace("_", "-") for m in report.modes)]
    metrics = [
        ("questions (failed)", lambda m: f"{m.summary.questions} ({m.summary.errors})"),
        ("exact match", lambda m: _pct(m.summary.em)),
        ("F1", lambda m: _pct(m.summary.f1)),
        ("LLM-judge accuracy", lambda m: _pct(m.summary.judge_accuracy)),
        ("cited gold passages (recall)", lambda m: _pct(m.evidence_recall)),
        ("cited passages that are gold (precision)", lambda m: _pct(m.evidence_precision)),
        ("abstained (scored 0)", lambda m: abstained_cell(m.summary)),
        ("LLM calls / question", lambda m: f"{m.summary.llm_calls:.1f}"),
        ("tokens / question", lambda m: f"{m.summary.prompt_tokens + m.summary.completion_tokens:.0f}"),
        ("searches / question", lambda m: f"{m.summary.searches:.1f}"),
        ("seconds p50 / p95", lambda m: f"{m.summary.seconds_p50:.1f} / {m.summary.seconds_p95:.1f}"),
        ("terminations", lambda m: ", ".join(f"{k} {v}" for k, v in m.summary.terminations.items())),
    ]
    return header, [[name, *(fn(m) for m in report.modes)] for name, fn in metrics]


def _calls_histogram(report: EvalReport) -> tuple[list[str], dict[str, list[float]]]:
    top = max([c for m in report.modes for c in m.llm_calls] or [0])
    width = max(1, -(-(top + 1) // 12))  # at most 12 bins
    bins = [(lo, lo + width - 1) for lo in range(0, top + 1, width)]
    labels = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in bins]
    series = {}
    for m in report.modes:
        counts = Counter(c // width for c in m.llm_calls)
        series[m.mode] = [float(counts.get(i, 0)) for i in range(len(bins))]
    return labels, series


def charts(report: EvalReport) -> dict[str, str]:
    """name -> SVG markup, only for charts that have data."""
    out = {}
    hops = sorted({h.hops for m in report.modes for h in m.by_hops}, key=lambda h: (h == "?", h))
    if hops:
        series = {m.mode: [next((h.em for h in m.by_hops if h.hops == k), 0.0) for k in hops] for m in report.modes}
        out["accuracy_by_hops"] = bar_chart("Exact match by number of hops", [f"{k} hops" for k in hops], series,
                                            y_label="exact match", percent=True)  # fmt: skip
    research = next((m for m in report.modes if m.gain_by_round), None)
    if research is not None:
        rounds = [g.round for g in research.gain_by_round]
        out["gain_by_round"] = line_chart("Information gain per research round", rounds,
                                          {"mean gain": [g.mean_gain for g in research.gain_by_round]},
                                          y_label="belief change", x_label="round")  # fmt: skip
    labels, series = _calls_histogram(report)
    if labels:
        out["llm_calls"] = bar_chart("LLM calls per question", labels, series, y_label="questions",
                                     x_label="LLM calls")  # fmt: skip
    return out


HOP_HEADER = ["mode", "hops", "questions", "EM", "F1", "abstained"]


def _hop_rows(report: EvalReport) -> list[list[str]]:
    return [[m.mode, h.hops, str(h.questions), _pct(h.em), _pct(h.f1), str(h.abstained)]
            for m in report.modes for h in m.by_hops]  # fmt: skip


def render_markdown(report: EvalReport, svg_dir: Path) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])

    parts = [f"# Evaluation: {report.dataset}", "",
             f"{report.questions} questions ({report.selection}), format {report.format}, {report.backend}"
             f"{_snapshot_note(report)}.", "",
             table(*overview_rows(report)), "", "## Accuracy by number of hops", "",
             table(HOP_HEADER, _hop_rows(report)), ""]  # fmt: skip
    svg_dir.mkdir(parents=True, exist_ok=True)
    for name, svg in charts(report).items():
        (svg_dir / f"{name}.svg").write_text(svg)
        parts += [f"![{name.replace('_', ' ')}]({svg_dir.name}/{name}.svg)", ""]
    return "\n".join(parts)


def render_html(report: EvalReport) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    figures = "".join(f"<figure>{svg}</figure>" for svg in charts(report).values())
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
             "th{background:#f3f3f3}figure{display:inline-block;margin:0.5em}")  # fmt: skip
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation: {escape(report.dataset)}</title>"
        f"<style>{style}</style></head><body><h1>Evaluation: {escape(report.dataset)}</h1>"
        f"<p>{report.questions} questions ({escape(report.selection)}), format {escape(report.format)}, "
        f"{escape(report.backend)}{escape(_snapshot_note(report))}.</p>{table(*overview_rows(report))}"
        f"<h2>Charts</h2>{figures}"
        f"<h2>Accuracy by number of hops</h2>{table(HOP_HEADER, _hop_rows(report))}"
        "</body></html>\n"
    )


def write_report(report: EvalReport, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".md"):
        raise UsageError(f"--report {path}: use a .html or .md file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        markdown = suffix == ".md"
        text = render_markdown(report, path.with_name(f"{path.stem}_files")) if markdown else render_html(report)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None
