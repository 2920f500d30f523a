# Minimal log-log line plots written as SVG by hand (no plotting library), for bench/peers.
"""Log-log plots as standalone SVG text.

plot = LogLogPlot(title, xlabel, ylabel, legend="upper left")
plot.series(label, xs, ys)          # one polyline with markers, next colour and marker
plot.save(path)
"""

import math
from xml.sax.saxutils import escape

COLOURS = ["#1f5fa8", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#555555"]
MARKERS = ["circle", "square", "triangle", "diamond", "circle", "square"]


def fitted_slope(xs, ys):
    """Least-squares slope of log(y) against log(x) (None with fewer than two points)."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(points) < 2:
        return None
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def _decades(lo, hi):
    """Integer powers of ten covering [lo, hi]."""
    a = math.floor(math.log10(lo) + 1e-9)
    b = math.ceil(math.log10(hi) - 1e-9)
    if a == b:
        b = a + 1
    return a, b


def _tick_label(e):
    """10^e as text: plain numbers from 0.001 to 1 000 000, else 1e±k."""
    if -3 <= e <= 6:
        v = 10.0 ** e
        return f"{v:g}" if e < 0 else f"{int(round(v)):,}".replace(",", " ")
    return f"1e{e}"


class LogLogPlot:
    """A log-log chart with decade ticks, a light grid, polylines, markers and a legend."""

    def __init__(self, title, xlabel, ylabel, width=720, height=480, legend="upper left"):
        self.title = title
        self.xlabel = xlabel
        self.ylabel = ylabel
        self.width = width
        self.height = height
        self.legend = legend  # "upper left" or "lower right", inside the axes
        self.lines = []

    def series(self, label, xs, ys, dashed=False):
        pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
        if pts:
            self.lines.append((label, pts, dashed))

    def render(self):
        left, right, top, bottom = 80, 40, 40, 60
        pw = self.width - left - right
        ph = self.height - top - bottom
        xs = [p[0] for _, pts, _ in self.lines for p in pts] or [1.0, 10.0]
        ys = [p[1] for _, pts, _ in self.lines for p in pts] or [1.0, 10.0]
        xa, xb = _decades(min(xs), max(xs))
        ya, yb = _decades(min(ys), max(ys))

        def px(x):
            return left + (math.log10(x) - xa) / (xb - xa) * pw

        def py(y):
            return top + ph - (math.log10(y) - ya) / (yb - ya) * ph

        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" font-family="sans-serif" font-size="12">',
            f'<rect width="{self.width}" height="{self.height}" fill="white"/>',
            f'<text x="{self.width / 2:.1f}" y="22" text-anchor="middle" font-size="15">'
            f"{escape(self.title)}</text>",
        ]
        # Grid: decades solid, 2..9 within each decade faint; one helper for both axes.
        def grid(lo, hi, pos, line, label):
            for e in range(lo, hi + 1):
                for k in range(1, 10):
                    if e == hi and k > 1:
                        break
                    colour = "#cccccc" if k == 1 else "#eeeeee"
                    out.append(line(pos(k * 10.0 ** e), colour))
                out.append(label(pos(10.0 ** e), _tick_label(e)))

        grid(
            xa, xb, px,
            lambda x, c: f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="{c}"/>',
            lambda x, t: f'<text x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">{t}</text>',
        )
        grid(
            ya, yb, py,
            lambda y, c: f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{c}"/>',
            lambda y, t: f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t}</text>',
        )
        out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333333"/>')
        out.append(
            f'<text x="{left + pw / 2:.1f}" y="{self.height - 18}" text-anchor="middle">{escape(self.xlabel)}</text>'
        )
        out.append(
            f'<text x="18" y="{top + ph / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 18 {top + ph / 2:.1f})">{escape(self.ylabel)}</text>'
        )
        # Series.
        for i, (_, pts, dashed) in enumerate(self.lines):
            colour = COLOURS[i % len(COLOURS)]
            dash = ' stroke-dasharray="6 4"' if dashed else ""
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            for x, y in pts:
                out.append(_marker(MARKERS[i % len(MARKERS)], px(x), py(y), colour))
        # Legend, in a corner inside the axes.
        box_w = 14 + 30 + 7 * max((len(label) for label, _, _ in self.lines), default=0)
        box_h = 8 + 18 * len(self.lines)
        if self.legend == "lower right":
            lx, ly = left + pw - 12 - box_w, top + ph - 12 - box_h
        else:
            lx, ly = left + 12, top + 12
        if self.lines:
            out.append(
                f'<rect x="{lx}" y="{ly}" width="{box_w}" height="{box_h}" fill="white" '
                f'fill-opacity="0.9" stroke="#999999"/>'
            )
        for i, (label, _, dashed) in enumerate(self.lines):
            colour = COLOURS[i % len(COLOURS)]
            y = ly + 14 + 18 * i
            dash = ' stroke-dasharray="6 4"' if dashed else ""
            out.append(
                f'<line x1="{lx + 6}" y1="{y - 4}" x2="{lx + 30}" y2="{y - 4}" '
                f'stroke="{colour}" stroke-width="2"{dash}/>'
            )
            out.append(_marker(MARKERS[i % len(MARKERS)], lx + 18, y - 4, colour))
            out.append(f'<text x="{lx + 36}" y="{y}">{escape(label)}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.render())


def _marker(kind, x, y, colour, r=4.0):
    if kind == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" fill="{colour}"/>'
    if kind == "triangle":
        return (
            f'<polygon points="{x:.1f},{y - r - 1:.1f} {x - r - 1:.1f},{y + r:.1f} {x + r + 1:.1f},{y + r:.1f}" '
            f'fill="{colour}"/>'
        )
    if kind == "diamond":
        return (
            f'<polygon points="{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y:.1f} {x:.1f},{y + r + 1:.1f} '
            f'{x - r - 1:.1f},{y:.1f}" fill="{colour}"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}"/>'
