"""A real suite's report.html as a reader's browser shows it: headless Chromium loads the page, a script added to a
copy of it records what the page holds, and the test reads that back from the dumped DOM.

Skipped, saying why, where no Chromium is installed (Debian: `apt-get install chromium`; .ci/run installs it).
"""

import html
import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium)")

# Runs once the page and its data-URI images have loaded; leaves its findings in <pre id="check">.
PROBE = """<script>
window.addEventListener("load", () => {
  const toc = [...document.querySelectorAll("nav.toc a")].map(a => a.getAttribute("href"));
  const found = {
    images: document.images.length,
    undecoded: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    toc: toc,
    unresolved: toc.filter(h => !h.startsWith("#") || !document.getElementById(decodeURIComponent(h.slice(1)))),
    h2: [...document.querySelectorAll("h2")].map(h => "#" + h.id),
    first: [...document.body.children].slice(0, 3).map(e => e.tagName + "." + e.className),
    summary: (document.querySelector(".summary") || {}).textContent || "",
    banner: (document.querySelector("blockquote") || {}).textContent || "",
    // per figure grid, per figure: [top, width, wide?], and the grid's width
    grids: [...document.querySelectorAll(".figures")].map(g => ({
      width: g.clientWidth,
      figures: [...g.children].map(f => [f.offsetTop, f.offsetWidth, f.classList.contains("wide")]),
    })),
  };
  const pre = document.createElement("pre");
  pre.id = "check";
  pre.textContent = JSON.stringify(found);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory):
    """A real GSN suite of the quick preset, as small as a report allows: one run, one epoch, 200 synthetic images."""
    from lab28.workloads.gsn.config import preset
    from lab28.workloads.gsn.suite import run_gsn_suite

    cfg = preset("quick")
    cfg.data.synth_n, cfg.data.val_size = 200, 50
    cfg.train.epochs, cfg.train.threads, cfg.train.progress = 1, 1, False
    return run_gsn_suite(cfg, tmp_path_factory.mktemp("runs"), settings=("joint",))


def browse(page, tmp_path) -> dict:
    """What PROBE found in `page` (a report.html) as headless Chromium at 1280 x 1000 renders it."""
    copy = tmp_path / "probed.html"
    copy.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1280,1000", "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe left no result (chromium exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_a_quick_suite_report_reads_well_in_a_browser(quick_suite, tmp_path):
    found = browse(quick_suite / "report.html", tmp_path)
    # every figure report.md names is on the page and decodes: the run's eight and the suite's curves
    figures = re.findall(r"!\[[^\]]*\]\([^)]+\.png\)", (quick_suite / "report.md").read_text())
    assert len(figures) == 9 and found["images"] == len(figures) and found["undecoded"] == []
    # the contents link every section, and every link lands on a heading
    assert found["toc"] == found["h2"] and "#summary" in found["toc"] and "#configuration" in found["toc"]
    assert found["unresolved"] == []
    # the page opens with the title, the quick-preset banner and the summary
    assert found["first"] == ["H1.", "BLOCKQUOTE.", "H2."]
    assert "The quick preset" in found["banner"] and "not the experiment" in found["banner"]
    assert "lab28 suite gsn --preset lab --data DIR" in found["banner"]
    assert "Best top-1: joint, λ = 3" in found["summary"] and "Best count RMSE: joint" in found["summary"]
    assert "1 in 135" in found["summary"]
    # figures two to a row on a wide screen; the three-panel curves take their row
    pairs = wide_rows = 0
    for grid in found["grids"]:
        rows: dict[int, list] = {}
        for top, width, wide in grid["figures"]:
            rows.setdefault(top, []).append((width, wide))
        for row in rows.values():
            assert len(row) <= 2
            if any(wide for _, wide in row):
                assert len(row) == 1 and row[0][0] >= grid["width"] - 2
                wide_rows += 1
            pairs += len(row) == 2
    assert pairs and wide_rows
