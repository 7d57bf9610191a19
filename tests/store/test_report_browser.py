"""The HTML report in a real headless browser (the distribution's chromium driven by Playwright): the page renders,
opens on the summary, shows every plot, and logs no console error. With ``CI=true`` a missing browser fails."""
from __future__ import annotations

import os
import shutil

import pytest

from hailo_qa.store import history as H
from hailo_qa.store import report as R
from tests.store import synth


def _chromium() -> str:
    exe = os.environ.get("HQA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe = None
    if not exe:
        msg = "the browser test needs chromium (apt-get install -y chromium) and playwright (pip install playwright)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " (CI=true: .ci/run installs them)", pytrace=False)
        pytest.skip(msg)
    return exe


def _open(page_path, exe):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(page_path.as_uri(), wait_until="load")
            facts = page.evaluate("""() => {
                const top = el => el.getBoundingClientRect().top + window.scrollY;
                const imgs = [...document.querySelectorAll('#plots img')];
                return {
                    firstH2: document.querySelector('h2').textContent,
                    summaryTop: top(document.querySelector('#summary-table')),
                    plotsTop: top(document.querySelector('#plots')),
                    tablesTop: top(document.querySelector('#tables')),
                    imgs: imgs.map(i => ({ok: i.complete && i.naturalWidth > 300, w: i.getBoundingClientRect().width,
                                          capAbove: top(i.parentElement.querySelector('h3')) < top(i)})),
                    height: document.documentElement.scrollHeight,
                    rows: document.querySelectorAll('#summary-table tbody tr').length,
                };
            }""")
        finally:
            browser.close()
    return facts, errors


def test_report_page_in_headless_chromium(tmp_path):
    exe = _chromium()
    with H.History(tmp_path / "h.sqlite") as h:
        synth.fill(h, 80)
        files = R.write_report(h, tmp_path / "out", progress=None)
    facts, errors = _open(files.html, exe)
    assert errors == []
    assert facts["firstH2"] == "Summary" and facts["rows"] == 7  # 5 models + the two mobilefacenet variants
    assert facts["summaryTop"] < 900  # the summary is in the first screen
    assert facts["summaryTop"] < facts["plotsTop"] < facts["tablesTop"]
    assert len(facts["imgs"]) == len(files.plots) == 7
    assert all(i["ok"] and i["w"] >= 600 and i["capAbove"] for i in facts["imgs"]), facts["imgs"]
    # two plots a row: the 7 plots take 4 rows of ~500 px, not a 16,000 px column
    assert facts["plotsTop"] + 4 * 700 > facts["tablesTop"]


def test_browser_test_catches_a_broken_page(tmp_path):
    """The check can fail: a page with a script error and a broken image is caught."""
    exe = _chromium()
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><h2>Plots</h2><table id='summary-table'></table>"
                    "<section id='plots'><figure><h3>x</h3><img src='data:image/png;base64,AAAA'></figure></section>"
                    "<section id='tables'></section><script>undefinedFunction()</script></body></html>")
    facts, errors = _open(page, exe)
    assert any("undefinedFunction" in e for e in errors)
    assert facts["firstH2"] != "Summary" and not facts["imgs"][0]["ok"]
