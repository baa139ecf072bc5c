"""Visual reports of a span's statistics, anomalies and drift: a self-contained HTML page
(``render_html``) and a plain-text table (``render_terminal``).

Importing this package is cheap: Jinja2, matplotlib and rich are imported by the functions
that need them.
"""

from lockgate.data.report.html import render_html
from lockgate.data.report.terminal import render_terminal

__all__ = ["render_html", "render_terminal"]
