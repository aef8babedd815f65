"""report.html in a real headless browser (Debian's `chromium`): the Japanese page is laid out with
charts that show, Japanese text that renders (no tofu), and day cells on one line.

Two runs of the browser on the same report:
  1. a probe: a copy of the page with a script added at the end (the report itself has none)
     that measures the page: where each chart is and whether it decoded; whether any day cell
     breaks over two lines; and every distinct Japanese character of the page drawn in the page's
     own font, compared pixel for pixel with a character no font has (U+10FFFD), which is what a
     missing glyph (tofu) looks like. The JSON comes back through --dump-dom.
  2. a screenshot of the unmodified page; each chart's rectangle (from the probe) is cut out of
     it and must hold a real picture (many colours, ink on white).
Skipped only where no browser is installed (.ci/run installs `chromium`).
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.core.config import load_config
from pipeline.report import reports
from pipeline.suppression.store import SuppressionStore

from fixtures import fixture_events, history_rows, store_events

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((b for b in map(shutil.which, BROWSERS) if b), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (Debian: apt-get install chromium)")

WIDTH = 720   # narrow: tables must squeeze, so a day cell that may wrap does
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--force-device-scale-factor=1", "--disable-extensions", "--mute-audio"]

PROBE = r"""
<script>
window.addEventListener("load", () => {
  const out = {images: [], height: document.documentElement.scrollHeight};
  for (const img of document.images) {
    const r = img.getBoundingClientRect();
    out.images.push({id: img.id, complete: img.complete, natural: [img.naturalWidth, img.naturalHeight],
                     rect: [r.left + scrollX, r.top + scrollY, r.width, r.height]});
  }
  // open every week so the day cells are laid out, then count the lines of each
  for (const d of document.querySelectorAll("details")) d.open = true;
  out.dayCells = 0; out.wrapped = [];
  for (const td of document.querySelectorAll("td.day")) {
    const range = document.createRange();
    range.selectNodeContents(td);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    out.dayCells++;
    if (tops.size !== 1) out.wrapped.push(td.textContent);
  }
  // every distinct Japanese character of the page, in the page's font, against a missing glyph
  const chars = [...new Set([...document.body.innerText].filter(
      c => /[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e]/.test(c)))];
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 48;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const font = "32px " + getComputedStyle(document.body).fontFamily;
  const draw = ch => {
    ctx.clearRect(0, 0, 48, 48); ctx.font = font; ctx.fillStyle = "#000"; ctx.textBaseline = "top";
    ctx.fillText(ch, 4, 4);
    return Array.from(ctx.getImageData(0, 0, 48, 48).data).join(",");
  };
  const tofu = draw("\u{10FFFD}");
  const shapes = chars.map(draw);
  out.font = font;
  out.checked = chars.length;
  out.tofu = chars.filter((c, i) => shapes[i] === tofu);
  out.drawn = chars.filter((c, i) => shapes[i] !== tofu);
  out.distinctShapes = new Set(shapes).size;
  out.controlIsTofu = draw("\u{10FFFC}") === tofu;
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def run_browser(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"   # a fresh one each run
    cmd = [BROWSER, *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"
    return proc


def colours(image: Image.Image) -> tuple[int, float]:
    """(distinct colours, share of pixels that are not white) of an image."""
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    ink = int((pixels.min(axis=1) < 235).sum())
    return len(np.unique(pixels, axis=0)), ink / len(pixels)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    cfg = load_config(None, data_dir=d / "data", timezone="Asia/Tokyo")
    store_events(cfg, fixture_events())
    sup = SuppressionStore(cfg.data_dir)
    sup.dir.mkdir(parents=True)
    pq.write_table(history_rows(), sup.history_path)   # a history only: the report reads nothing else
    written = reports.generate(cfg.data_dir, d / "out", cfg.report, cfg.rule, cfg.timezone_name,
                               lang="ja", sending_domain="mail.example.jp")
    return written, d


def run_probe(written, d: Path, env: dict | None = None) -> dict:
    text = written.html.read_text(encoding="utf-8")
    assert "<script" not in text
    probe_page = d / "probe.html"
    probe_page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = run_browser(d, f"--window-size={WIDTH},900", "--virtual-time-budget=10000", "--dump-dom",
                       probe_page.as_uri(), env=env)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stdout[-2000:]
    return json.loads(htmllib.unescape(found.group(1)))


@pytest.fixture(scope="module")
def probe(page):
    return run_probe(*page)


@pytest.mark.slow
def test_japanese_text_renders_without_tofu(probe):
    assert probe["controlIsTofu"]                 # the comparison does catch a missing glyph
    assert probe["checked"] >= 100                # kana and kanji of headings, tables, the notice
    assert probe["tofu"] == [], f"no glyph for {''.join(probe['tofu'])} in {probe['font']}"
    assert probe["distinctShapes"] >= 0.9 * probe["checked"]


@pytest.mark.slow
def test_the_tofu_check_catches_a_missing_japanese_font(page, tmp_path):
    """The same probe with fontconfig limited to DejaVu Sans (matplotlib's copy; no kana, no
    kanji): every Japanese character must come out as tofu, or the check above proves nothing."""
    written, _ = page
    fonts_dir = tmp_path / "fonts"
    fonts_dir.mkdir()
    (fonts_dir / "DejaVuSans.ttf").symlink_to(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
    conf = tmp_path / "fonts.conf"
    conf.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
                    f"<dir>{fonts_dir}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>\n")
    blind = run_probe(written, tmp_path, env={"FONTCONFIG_FILE": str(conf)})
    assert blind["checked"] >= 100 and blind["drawn"] == [], blind["drawn"]


@pytest.mark.slow
def test_day_cells_stay_on_one_line(probe):
    assert probe["dayCells"] >= 10 and probe["wrapped"] == []


@pytest.mark.slow
def test_charts_show_in_the_page(page, probe, tmp_path):
    written, _ = page
    names = [p.stem for p in written.charts]
    assert [i["id"] for i in probe["images"]] == [f"img-{n}" for n in names]
    for image, path in zip(probe["images"], written.charts):
        assert image["complete"] and tuple(image["natural"]) == Image.open(path).size
        count, ink = colours(Image.open(path))
        assert count >= 30 and ink >= 0.03, (path.name, count, ink)

    height = min(int(probe["height"]) + 10, 16000)
    shot = tmp_path / "report.png"
    run_browser(tmp_path, f"--window-size={WIDTH},{height}", f"--screenshot={shot}",
                written.html.as_uri())
    screen = Image.open(shot)
    assert screen.size == (WIDTH, height)
    count, ink = colours(screen)
    assert count >= 200 and ink >= 0.05, (count, ink)
    for image in probe["images"]:
        x, y, w, h = (round(v) for v in image["rect"])
        assert w >= 300 and h >= 150 and y + h <= height, image
        count, ink = colours(screen.crop((x, y, x + w, y + h)))
        assert count >= 30 and ink >= 0.03, (image["id"], count, ink)
