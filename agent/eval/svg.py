"""Small self-contained SVG charts for the eval report: grouped bars and lines. No plotting dependency;
the markup is deterministic, so reports diff cleanly between runs."""

from __future__ import annotations

from html import escape

W, H = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 36, 48
COLOURS = ("#3b6fb6", "#e08a2c", "#3f9d5a", "#b4424a")


class _Axis:
    def __init__(self, low: float, high: float):
        self.low, self.high = low, high if high > low else low + 1.0

    def y(self, value: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - (value - self.low) / (self.high - self.low))


def _frame(title: str, axis: _Axis, y_label: str, percent: bool) -> list[str]:
    mid = TOP + (H - TOP - BOTTOM) / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="12" y="{mid}" transform="rotate(-90 12 {mid})" text-anchor="middle">{escape(y_label)}</text>',
    ]
    for i in range(5):
        value = axis.low + (axis.high - axis.low) * i / 4
        y = axis.y(value)
        label = f"{value * 100:.0f}%" if percent else f"{value:.3g}"
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    return parts


def _footer(series: list[str], x_label: str) -> list[str]:
    parts = [f'<text x="{W - RIGHT}" y="{H - BOTTOM + 28}" text-anchor="end">{escape(x_label)}</text>']
    for i, name in enumerate(series):
        x = LEFT + i * 130
        parts.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{H - 5}">{escape(name)}</text>')
    return [*parts, "</svg>"]


def bar_chart(title: str, categories: list[str], series: dict[str, list[float]], *, y_label: str = "",
              x_label: str = "", percent: bool = False) -> str:  # fmt: skip
    top = max([v for values in series.values() for v in values] or [0.0])
    axis = _Axis(0.0, 1.0 if percent else top * 1.1)
    parts = _frame(title, axis, y_label, percent)
    slot = (W - LEFT - RIGHT) / max(1, len(categories))
    bar = slot * 0.8 / max(1, len(series))
    for c, category in enumerate(categories):
        x0 = LEFT + c * slot + slot * 0.1
        for s, (name, values) in enumerate(series.items()):
            y = axis.y(values[c])
            tip = f"{escape(name)} {escape(category)}: {values[c]:.3g}"
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" height="{H - BOTTOM - y:.1f}" '
                f'fill="{COLOURS[s % len(COLOURS)]}"><title>{tip}</title></rect>'
            )
        label_x = x0 + slot * 0.4
        parts.append(f'<text x="{label_x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{escape(category)}</text>')
    return "\n".join([*parts, *_footer(list(series), x_label)])


def line_chart(title: str, xs: list[int], series: dict[str, list[float]], *, y_label: str = "",
               x_label: str = "") -> str:  # fmt: skip
    values = [v for vs in series.values() for v in vs]
    axis = _Axis(min([0.0, *values]), max([0.0, *values]) * 1.1)
    parts = _frame(title, axis, y_label, False)
    step = (W - LEFT - RIGHT) / max(1, len(xs) - 1)

    def x_of(i: int) -> float:
        return LEFT + i * step if len(xs) > 1 else LEFT + (W - LEFT - RIGHT) / 2

    parts.append(f'<line x1="{LEFT}" y1="{axis.y(0):.1f}" x2="{W - RIGHT}" y2="{axis.y(0):.1f}" stroke="#888"/>')
    for s, vs in enumerate(series.values()):
        colour = COLOURS[s % len(COLOURS)]
        points = [(x_of(i), axis.y(v), v) for i, v in enumerate(vs)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{v:.3g}</title></circle>'
                  for x, y, v in points]  # fmt: skip
    parts += [
        f'<text x="{x_of(i):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{x}</text>' for i, x in enumerate(xs)
    ]
    return "\n".join([*parts, *_footer(list(series), x_label)])
