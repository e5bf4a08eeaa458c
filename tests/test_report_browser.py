"""The HTML report opened in real headless Chromium: plots, viewer and bit bars render, no console errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcodec.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Image names that end or comment out an inline <script> when embedded naively (the page went blank).
HOSTILE_NAMES = ["<!--<script>.png", "a&amp;b>.png"]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    from semcodec.eval.runner import EvalConfig, run_eval

    data = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(5)
    for i in range(2):
        y, x = np.mgrid[0:80, 0:120]
        img = np.stack([x * 2, y * 3 + 40 * i, 200 - x], -1) + rng.integers(0, 30, (80, 120, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(data / HOSTILE_NAMES[i])
    out = tmp_path_factory.mktemp("results")
    run_eval(EvalConfig(data=data, profiles=["jpeg", "webp"], bpps=[0.5, 1.0], out=out, anchor="jpeg",
                        progress=False, crop_images=1))
    return out


def test_report_is_self_contained(results_dir, tmp_path):
    page = build_report(results_dir, tmp_path / "r.html").read_text()
    assert "const REPORT = " in page and "data:image/webp;base64," in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_embedded_data_is_script_safe_and_round_trips(results_dir, tmp_path):
    page = build_report(results_dir, tmp_path / "r.html").read_text()
    start = page.index("const REPORT = ") + len("const REPORT = ")
    data_text = page[start:page.index(";</script>", start)]
    assert not any(c in data_text for c in "<>&")
    data = json.loads(data_text)
    assert set(data["viewer"]["images"]) == set(HOSTILE_NAMES)
    # the page has exactly the script blocks of the template: nothing inside the data opened or closed one
    template = (Path(__file__).parents[1] / "src/semcodec/report/assets/report.html").read_text()
    assert page.count("<script") == page.count("</script>") == template.count("<script") == 2
    assert "<!--" not in page


def test_bd_from_few_points_carries_a_caveat(results_dir, tmp_path):
    summary = json.loads((results_dir / "summary.json").read_text())
    row = summary["bd"]["psnr"]["webp"]
    assert "fewer than 4" in row["bd_caveat"]  # two rates per profile
    assert "(!)" in (results_dir / "report.md").read_text() and "indicative only" in (results_dir / "report.md").read_text()
    from semcodec.eval.bdrate import few_points_caveat

    assert few_points_caveat(([1, 2, 3, 4], [1, 2, 3, 4]), ([1, 2, 3, 4], [1, 2, float("nan"), 4])) is not None
    assert few_points_caveat(([1, 2, 3, 4], [1, 2, 3, 4]), ([1, 2, 3, 5], [1, 2, 3, 4])) is None


def test_report_in_headless_chromium(results_dir, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (test extra)")
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium); .ci/run installs it")
    html = build_report(results_dir, tmp_path / "report.html")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1600})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.as_uri())
            page.wait_for_function("document.getElementById('img-decoded').naturalWidth > 0", timeout=15000)
            assert page.locator("#rd-plot path.rd-line").count() == 2  # one curve per profile
            assert page.locator("#metric-buttons button").count() >= 2  # psnr, ms-ssim
            assert page.locator("#bd-table td.good, #bd-table td.bad, #bd-table td").count() > 0
            assert page.locator("#bd-table p.caveat").count() == 1  # 2 rate points: the caveat is visible
            assert page.locator("#bits-plot rect.bit-part").count() >= 4  # 2 profiles x 2 rates, header+image
            assert page.evaluate("document.getElementById('img-original').naturalWidth") == 120
            page.fill("#split", "20")
            page.dispatch_event("#split", "input")
            assert "20%" in page.evaluate("document.getElementById('decoded-clip').style.clipPath")
            page.select_option("#sel-profile", "webp")
            page.click("#compare", position={"x": 30, "y": 30})
            zoom = page.evaluate("""() => { const c = document.getElementById('zoom-decoded');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i + 3]; return s; }""")
            assert zoom > 0, "zoomed crop of the decoded image was drawn"
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
    assert errors == [], errors
