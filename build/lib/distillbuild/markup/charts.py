"""Charts as inline SVG strings: the report loads no script, font or image from anywhere.

Three shapes cover the report: horizontal bars (reasons, classes, F1), lines over x (training
loss, the route's coverage/accuracy curve) and a heat grid (the confusion matrix). Every label is
escaped; sizes are in pixels of the SVG's own viewBox.
"""

from __future__ import annotations

from html import escape

INK, MUTED, GRID = "#1f2933", "#6b7785", "#d9dee4"
PALETTE = ("#2f6fde", "#e07b24", "#2e9d5b", "#c23b3b", "#7c4dcc")


def _num(v: float) -> str:
    return f"{v:.4g}"


def bars(
    items: list[tuple[str, float]],
    *,
    title: str,
    width: int = 560,
    color: str = PALETTE[0],
    value_format: str = "{:g}",
    max_value: float | None = None,
) -> str:
    """Horizontal bars, one per (label, value)."""
    if not items:
        return ""
    row, label_w, top = 22, 170, 28
    height = top + row * len(items) + 8
    top_value = max_value if max_value is not None else max(v for _, v in items) or 1
    span = width - label_w - 70
    parts = [f'<text x="0" y="16" class="t">{escape(title)}</text>']
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = max(span * (value / top_value if top_value else 0), 0)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(str(label)[:28])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{_num(w)}" height="{row - 7}" fill="{color}"/>'
            f'<text x="{_num(label_w + w + 5)}" y="{y + 15}" class="m">{escape(value_format.format(value))}</text>'
        )
    return _svg(width, height, parts, title)


def lines(
    series: list[tuple[str, list[tuple[float, float]]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 260,
    y_range: tuple[float, float] | None = None,
) -> str:
    """One polyline per (name, points), on shared axes, with a legend."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return ""
    left, right, top, bottom = 52, 16, 48, 40
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = y_range or (min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1)
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    parts = [f'<text x="0" y="16" class="t">{escape(title)}</text>']
    for k in range(5):  # grid and y ticks
        yv = y0 + (y1 - y0) * k / 4
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{_num(sy(yv))}" y2="{_num(sy(yv))}" stroke="{GRID}"/>'
            f'<text x="{left - 5}" y="{_num(sy(yv) + 4)}" text-anchor="end" class="m">{_num(yv)}</text>'
        )
    for k in range(5):
        xv = x0 + (x1 - x0) * k / 4
        if all(float(x).is_integer() for x in xs):
            xv = round(xv)
        parts.append(f'<text x="{_num(sx(xv))}" y="{top + ph + 16}" text-anchor="middle" class="m">{_num(xv)}</text>')
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" class="m">{escape(x_label)}</text>'
        f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})" text-anchor="middle" '
        f'class="m">{escape(y_label)}</text>'
    )
    for i, (name, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{_num(sx(x))},{_num(sy(y))}" for x, y in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        if len(pts) <= 12:
            parts += [f'<circle cx="{_num(sx(x))}" cy="{_num(sy(y))}" r="3" fill="{color}"/>' for x, y in pts]
        parts.append(
            f'<rect x="{left + 8 + 150 * i}" y="{top - 22}" width="10" height="10" fill="{color}"/>'
            f'<text x="{left + 22 + 150 * i}" y="{top - 13}" class="m">{escape(name)}</text>'
        )
    return _svg(width, height, parts, title)


def heat_grid(labels: list[str], counts: list[list[int]], *, title: str, row_title: str, col_title: str) -> str:
    """A square grid of counts (rows: actual, columns: predicted), darker for more."""
    n = len(labels)
    if n == 0:
        return ""
    cell, left, top = max(min(36, 420 // n), 18), 130, 120
    width, height = left + cell * n + 20, top + cell * n + 30
    peak = max((c for r in counts for c in r), default=1) or 1
    parts = [
        f'<text x="0" y="16" class="t">{escape(title)}</text>',
        f'<text x="{left + cell * n / 2}" y="34" text-anchor="middle" class="m">{escape(col_title)}</text>',
        f'<text x="4" y="{top + cell * n + 22}" class="m">{escape(row_title)}</text>',
    ]
    for j, label in enumerate(labels):
        x = left + j * cell + cell / 2
        parts.append(
            f'<text x="{_num(x)}" y="{top - 6}" transform="rotate(-55 {_num(x)} {top - 6})" class="m">'
            f"{escape(label[:16])}</text>"
        )
    for i, label in enumerate(labels):
        y = top + i * cell
        parts.append(
            f'<text x="{left - 6}" y="{_num(y + cell / 2 + 4)}" text-anchor="end" class="m">{escape(label[:16])}</text>'
        )
        for j in range(n):
            c = counts[i][j]
            shade = c / peak
            fill = (
                f"rgba(47,111,222,{0.08 + 0.92 * shade:.3f})"
                if i == j
                else f"rgba(194,59,59,{0.08 + 0.92 * shade:.3f})"
                if c
                else "#f4f6f8"
            )
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                f"<title>{escape(label)} as {escape(labels[j])}: {c}</title></rect>"
            )
            if c and cell >= 22:
                parts.append(
                    f'<text x="{_num(left + j * cell + cell / 2)}" y="{_num(y + cell / 2 + 4)}" '
                    f'text-anchor="middle" class="{"w" if shade > 0.55 else "m"}">{c}</text>'
                )
    return _svg(width, height, parts, title)


def _svg(width: int, height: int, parts: list[str], title: str) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">' + "".join(parts) + "</svg>"
    )
