"""The HTML report in a real browser: Debian's chromium, driven by Playwright, offline."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from lockgate.data.report import render_html
from lockgate.data.statistics import compute_statistics

CHROMIUM = Path("/usr/bin/chromium")
PENGUINS = Path(__file__).resolve().parents[2] / "lockgate/templates/penguins/data/penguins.csv"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


def test_report_renders_charts_and_anomalies_in_chromium(tmp_path: Path) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    stats = compute_statistics([PENGUINS])
    previous = copy.deepcopy(stats)
    previous["features"]["sex"]["missing"] = 2
    anomaly = {
        "feature": "sex",
        "kind": "presence",
        "severity": "error",
        "expected": 0.99,
        "seen": 0.968,
        "count": 11,
        "message": "feature 'sex': 11 of 344 rows missing (3.2%); expected at most 1%",
    }
    page_file = tmp_path / "report.html"
    html = render_html(
        stats, title="Penguins", anomalies=[anomaly], compare=previous, compare_label="span 1"
    )
    page_file.write_text(html, encoding="utf-8")

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_file.as_uri())

            assert page.locator("svg").count() == len(stats["features"])
            histogram = page.locator("figure.histogram svg").first
            box = histogram.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
            bars = page.locator("figure.bars svg path").first.bounding_box()
            assert bars is not None and bars["width"] > 0

            anomalies = page.locator("#anomalies")
            assert anomalies.is_visible()
            assert "11 of 344 rows missing" in anomalies.inner_text()
            sex = page.locator("section.feature.error")
            assert sex.count() == 1 and sex.locator("h3").inner_text() == "sex"
            border = sex.evaluate("el => getComputedStyle(el).borderLeftColor")
            assert border == "rgb(197, 34, 31)"  # --error

            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

            anomalies.locator("a", has_text="sex").click()  # the link jumps to the feature
            assert page.evaluate("location.hash") == f"#{sex.get_attribute('id')}"

            page.fill("#filter", "bill")  # the filter hides the other features
            visible = [t for t in page.locator("section.feature h3").all_inner_texts() if t]
            shown = page.locator("section.feature:not([hidden]) h3").all_inner_texts()
            assert shown == ["bill_length_mm", "bill_depth_mm"] and len(visible) == 8
            page.fill("#filter", "")
            page.check("#flagged")
            assert page.locator("section.feature:not([hidden]) h3").all_inner_texts() == ["sex"]
            assert errors == []
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert all(url.startswith("file://") for url in requests), requests  # nothing from the network
