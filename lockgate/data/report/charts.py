"""Small charts as SVG strings, drawn with matplotlib's SVG backend, to inline in a page.

No pyplot: each chart is a ``matplotlib.figure.Figure`` on its own SVG canvas, so nothing
global changes (a notebook's pyplot backend and figures stay as they were). Text is kept as
SVG ``<text>`` (``svg.fonttype: none``): smaller files, the page's font, selectable labels;
matplotlib escapes it. matplotlib is imported here, lazily, by the functions.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["CURRENT", "OTHER", "bars_svg", "histogram_svg"]

CURRENT = "#3568c9"
OTHER = "#6b7280"
_FONT = 7
_CHAR = 0.058  # inches: a generous average width of a character at _FONT points
_WIDTH = 3.4  # inches; the page scales the SVG to its column
_RC: dict[Any, Any] = {  # matplotlib types the keys as a Literal of rc names
    "text.parse_math": False,  # user data: "$5" is not mathtext
    "svg.fonttype": "none",
    "svg.hashsalt": "lockgate",
    "font.size": _FONT,
    "font.family": "sans-serif",
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


#: matplotlib's style is one global dict: one chart is drawn at a time in this process
_STYLE_LOCK = threading.Lock()


@contextlib.contextmanager
def report_style(rc: dict[Any, Any]) -> Iterator[None]:
    """matplotlib's defaults and then ``rc``, for the block, whatever the process set
    before (a user's style, a library's ``plt.style.use``); restored afterwards. Charts
    drawn in two threads at once would each restore the other's style on leaving and leave
    it behind, changing every later chart (and its report's fingerprint), so the block
    holds a lock."""
    import matplotlib

    with _STYLE_LOCK, matplotlib.rc_context(), warnings.catch_warnings():
        matplotlib.rcdefaults()  # all but the backend and the like
        matplotlib.rcParams.update(rc)
        # A glyph missing from matplotlib's font only affects its layout estimate: the
        # browser draws the text with its own fonts.
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        yield


@contextlib.contextmanager
def _figure(height: float) -> Iterator[Any]:
    """A figure on its own SVG canvas, drawn and saved under the report's style."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with report_style(_RC):
        fig = Figure(figsize=(_WIDTH, height))
        FigureCanvasSVG(fig)
        try:
            yield fig
        finally:
            fig.clear()


def svg_element(fig: Any, ident: str, *, css_class: str, no_urls: bool = False) -> str:
    """The figure as an ``<svg>`` element for an HTML page: its ids made unique on the
    page (``ident-``); ``no_urls`` drops the namespace declarations (inline SVG in HTML
    needs none) and writes ``href`` for ``xlink:href``, so the page names no URL at all."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    if no_urls:
        svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{ident}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{ident}-\1)", svg)
    href = "href" if no_urls else "xlink:href"
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'{href}="#{ident}-\1"', svg)
    return svg.replace("<svg ", f'<svg class="{css_class}" role="img" data-chart="{ident}" ', 1)


def _margins(fig: Any, *, left: float, bottom: float, right: float, top: float) -> None:
    """Margins in inches: fixed, as a tight bounding box would draw each chart twice."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )


def _edges(buckets: Sequence[Mapping[str, Any]], *, time: bool) -> tuple[list[float], list[float]]:
    """(edges, counts) of contiguous buckets; time bounds (ISO 8601) become matplotlib days."""
    lows = [b["low"] for b in buckets] + [buckets[-1]["high"]]
    if time:
        from matplotlib.dates import date2num

        edges = [float(date2num(_naive_utc(v))) for v in lows]
    else:
        edges = [float(v) for v in lows]
    if edges[-1] <= edges[0]:  # one value only: give the bar a visible width
        pad = 0.5 if time else max(abs(edges[0]) * 0.05, 0.5)  # time: half a day
        edges = [edges[0] - pad] + [edges[0] + pad] * (len(edges) - 1)
    for i in range(1, len(edges)):  # keep edges non-decreasing for stairs
        edges[i] = max(edges[i], edges[i - 1])
    return edges, [float(b.get("count", 0)) for b in buckets]


def _naive_utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _density(edges: list[float], counts: list[float]) -> list[float]:
    total = sum(counts) or 1.0
    out = []
    for lo, hi, c in zip(edges, edges[1:], counts, strict=False):
        width = hi - lo
        out.append(c / total / width if width > 0 else 0.0)
    return out


def histogram_svg(
    series: Sequence[Sequence[Mapping[str, Any]] | None],
    *,
    ident: str,
    time: bool = False,
    integer: bool = False,
) -> str:
    """Buckets (``[{"low", "high", "count"}]``) of one span, or of two in one chart: the
    current span filled, the other as a grey outline, both as densities so that spans with
    different row counts and bucket edges compare."""
    drawn = [(i, s) for i, s in enumerate(series) if s]
    compare = len(series) > 1
    with _figure(1.45 + (0.12 if time else 0)) as fig:
        _margins(fig, left=0.4, bottom=0.4 if time else 0.26, right=0.16, top=0.06)
        ax = fig.add_subplot()
        _draw_histogram(ax, drawn, compare=compare, time=time, integer=integer)
        return svg_element(fig, ident, css_class="chart-svg")


def _compact(value: float, _pos: int | None = None) -> str:
    """A tick label without matplotlib's offset text (the fixed margins would clip it):
    ``2400``, ``0.25``, ``150k``, ``1.5G``."""
    size = abs(value)
    if size >= 1e5:
        for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if size >= scale:
                return f"{value / scale:.3g}{suffix}"
    return f"{value:.6g}" if size >= 1 else f"{value:.4g}"


def _draw_histogram(
    ax: Any,
    drawn: list[tuple[int, Sequence[Mapping[str, Any]]]],
    *,
    compare: bool,
    time: bool,
    integer: bool,
) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    for i, buckets in drawn:
        edges, counts = _edges(buckets, time=time)
        heights = _density(edges, counts) if compare else counts
        if i == 0:
            ax.stairs(heights, edges, fill=True, color=CURRENT, alpha=0.75 if not compare else 0.5)
        else:
            ax.stairs(heights, edges, fill=False, color=OTHER, linewidth=1.3)
    if time:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator(maxticks=5)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=integer))
        ax.xaxis.set_major_formatter(FuncFormatter(_compact))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=not compare))
    ax.yaxis.set_major_formatter(FuncFormatter(_compact))
    ax.set_ylim(bottom=0)
    if compare:
        ax.set_yticks([])
        ax.set_ylabel("density", fontsize=_FONT)


def bars_svg(
    labels: Sequence[str],
    series: Sequence[Sequence[float]],
    *,
    ident: str,
    notes: Sequence[str],
) -> str:
    """Horizontal bars, one group per label (the first at the top), one bar per span;
    ``notes`` (counts) are written at the end of the current span's bars."""
    n, k = len(labels), len(series)
    with _figure(0.1 + 0.16 * n * k + 0.05 * n) as fig:
        left = 0.1 + _CHAR * max((len(label) for label in labels), default=1)
        _margins(fig, left=left, bottom=0.05, right=0.04, top=0.05)
        room = _WIDTH - left - 0.04  # inches for the bars and the notes after them
        note = 0.06 + _CHAR * max((len(n) for n in notes), default=0)
        _draw_bars(fig.add_subplot(), labels, series, notes, room=max(1 - note / room, 0.3))
        return svg_element(fig, ident, css_class="chart-svg")


def _draw_bars(
    ax: Any,
    labels: Sequence[str],
    series: Sequence[Sequence[float]],
    notes: Sequence[str],
    *,
    room: float,
) -> None:
    """``room``: the share of the axes the longest bar may take, the notes the rest."""
    n, k = len(labels), len(series)
    height = 0.8 / k
    colours = [CURRENT, OTHER]
    largest = max((v for s in series for v in s), default=0) or 1
    for j, values in enumerate(series):
        ys = [i + (j - (k - 1) / 2) * height for i in range(n)]
        bars = ax.barh(ys, values, height=height * 0.9, color=colours[j % 2])
        if j == 0:
            ax.bar_label(bars, labels=list(notes), padding=2, fontsize=_FONT - 0.5)
    ax.set_yticks(range(n), labels=list(labels))
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, largest / room)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
