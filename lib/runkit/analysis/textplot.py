"""Line plots drawn with text, for a terminal over ssh: braille dots for the lines, a letter per series.

Each character cell holds 2x4 braille dots, so a 60x15 plot has 120x60 points of resolution.
Pure Python, no dependencies.
"""
import itertools
import math

BRAILLE = 0x2800
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] bit of a braille cell
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def render(series, width=60, height=15, logx=False, xlabel="x", ylabel="y", xnames=None):
    """Text of a plot of series [(label, xs, ys)]: lines in braille, data points as the series' letter.

    xnames: the words that x = 0, 1, ... stand for, when X is not a number.
    """
    points = [(label, [(_tx(x, logx), y) for x, y in zip(xs, ys, strict=True) if _finite(x, y, logx)]) for label, xs, ys in series]
    every = [p for _label, pts in points for p in pts]
    if not every:
        return "(nothing to plot)\n"
    x0, x1 = _span([p[0] for p in every])
    y0, y1 = _span([p[1] for p in every])
    dots = [[0] * width for _ in range(height)]
    marks = {}

    def pixel(x, y):
        return (round((x - x0) / (x1 - x0) * (width * 2 - 1)),
                round((y1 - y) / (y1 - y0) * (height * 4 - 1)))

    for number, (_label, pts) in enumerate(points):
        pixels = [pixel(x, y) for x, y in sorted(pts)]
        for (a, b), (c, d) in itertools.pairwise(pixels):
            for px, py in _line(a, b, c, d):
                dots[py // 4][px // 2] |= DOTS[py % 4][px % 2]
        for px, py in pixels:
            marks[(py // 4, px // 2)] = LETTERS[number % len(LETTERS)]

    label_width = max(len(_num(y0)), len(_num(y1)))
    lines = [f"{ylabel}"]
    for row in range(height):
        axis = _num(y1) if row == 0 else _num(y0) if row == height - 1 else ""
        cells = "".join(marks.get((row, col)) or chr(BRAILLE + dots[row][col]) for col in range(width))
        lines.append(f"{axis:>{label_width}} |{cells.replace(chr(BRAILLE), ' ')}")
    left, right = (xnames[0], xnames[-1]) if xnames else (_num(_fx(x0, logx)), _num(_fx(x1, logx)))
    lines.append(" " * label_width + " +" + "-" * width)
    lines.append(" " * (label_width + 2) + left + right.rjust(width - len(left)))
    lines.append(" " * (label_width + 2) + f"{xlabel}{' (log scale)' if logx else ''}".center(width).rstrip())
    if len(points) > 1 or points[0][0]:
        lines += [f"  {LETTERS[n % len(LETTERS)]}: {label}" for n, (label, _pts) in enumerate(points)]
    return "\n".join(lines) + "\n"


def _line(a, b, c, d):
    """The pixels from (a, b) to (c, d), both ends included."""
    steps = max(abs(c - a), abs(d - b), 1)
    return [(round(a + (c - a) * i / steps), round(b + (d - b) * i / steps)) for i in range(steps + 1)]


def _span(values):
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    return low, high


def _finite(x, y, logx):
    ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, y))
    return ok and (x > 0 or not logx)


def _tx(x, logx):
    return math.log10(x) if logx else x


def _fx(x, logx):
    return 10 ** x if logx else x


def _num(value):
    return f"{value:.4g}"
