"""The HTML report: which views it shows, that it is self-contained, and that it works in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("holoviews")

from toyanalysis import testing
from toyanalysis.report import applicable_views, to_bokeh, write_report
from toyanalysis.store import write_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _sweep_store(tmp_path: Path) -> Path:
    """3 steps x 2 instances of a 2-D model: digons then a pentagon, with loss, b, density."""
    dense = testing.tegum("dedicated", "dedicated", dead=3)
    steps = [
        np.stack([dense, testing.tegum("digon", "digon", dead=1)]),
        np.stack([dense, testing.rotate(testing.polytope("pentagon"), 1)]),
        np.stack([testing.tegum("digon", dead=3, n_hidden=2), testing.polytope("pentagon")]),
    ]
    W = np.stack(steps)  # (step, instance, 2, 5)
    ds = testing.as_dataset(
        W,
        steps=[0, 50, 100],
        density=[[1.0] * 5, [0.05] * 5],
        importance=0.9 ** np.arange(5),
        sweep={"base_density": [1.0, 0.05]},
        loss=[[0.3, 0.2], [0.25, 0.1], [0.2, 0.05]],
    )
    ds["b"] = (("step", "instance", "feature"), np.full((3, 2, 5), -0.1, np.float32))
    path = tmp_path / "sweep.zarr"
    write_store(path, ds)
    return path


def _neuron_store(tmp_path: Path) -> Path:
    W = np.stack([np.eye(3, 4), np.eye(3, 4) + 0.6 * np.eye(3, 4, 1)])[:, None]
    path = tmp_path / "privileged.zarr"
    write_store(path, testing.as_dataset(W, steps=[0, 10], model="hidden_relu"))
    return path


def test_views_follow_the_store(tmp_path):
    names = [v.name for v in applicable_views(_sweep_store(tmp_path))]
    assert names == ["loss", "directions", "gram", "norms", "dimensionality", "overlap_graph"]
    names = [v.name for v in applicable_views(_neuron_store(tmp_path))]
    assert names == ["gram", "norms", "neurons", "overlap_graph"]  # m = 3, no loss, no sweep
    sweep = testing.as_dataset(
        np.tile([[1.0, 0.0]], (1, 4, 1, 1)),
        sweep={"extra_importance": [0.1, 0.1, 10, 10], "base_density": [1, 0.1, 1, 0.1]},
    )
    assert "phase_diagram" in [v.name for v in applicable_views(sweep)]


def test_each_view_keeps_its_own_frame_budget():
    """Two panels an instance (gram) get half the frames of one (directions)."""
    W = np.random.default_rng(0).normal(size=(60, 10, 2, 5)).astype(np.float32)
    views = {v.name: v for v in applicable_views(testing.as_dataset(W))}

    def frames(name: str) -> int:
        first_panel = next(iter(views[name].build()))
        return len(first_panel.keys())

    assert frames("gram") * 2 == frames("directions") < 60


def test_report_is_self_contained(tmp_path):
    out = write_report(_sweep_store(tmp_path), tmp_path / "report.html")
    text = out.read_text()
    # nothing is loaded from elsewhere: no script or stylesheet by URL
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=", text)
    assert "cdn.bokeh.org" not in text and "cdn.holoviz.org" not in text
    for name in ("loss", "directions", "gram", "norms", "dimensionality", "overlap_graph"):
        assert f'<section id="{name}">' in text
    assert "base_density" in text


def test_to_bokeh_embeds_every_frame_of_a_holomap():
    import holoviews as hv

    hmap = hv.HoloMap({s: hv.Curve(([0, 1], [0, s])) for s in (1, 2, 3)}, kdims=["step"])
    model = to_bokeh(hmap, name="curve")
    slider = model.children[0].children[0]
    callback = slider.js_property_callbacks["change:value"][0]
    frames = callback.args["source_frames"]
    assert callback.args["keys"] == ["1", "2", "3"]
    assert [list(np.asarray(f["y"])) for f in frames[0]] == [[0, 1], [0, 2], [0, 3]]
    assert model.name == "curve"


def test_cli_report(tmp_path, cli):
    out = tmp_path / "neurons.html"
    result = cli("report", _neuron_store(tmp_path), "-o", out)
    assert result.exit_code == 0, result.output
    assert "rendering neurons" in result.stderr and f"wrote {out}" in result.stderr
    assert '<section id="neurons">' in out.read_text()


def test_cli_report_missing_store_is_one_line(tmp_path, cli):
    result = cli("report", tmp_path / "nope.zarr", "-o", tmp_path / "x.html")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "no such store" in result.stderr
    assert result.stderr.count("\n") == 1


def test_cli_defaults_match_the_library():
    from toyanalysis_cli import report as cli_report

    from toyanalysis import report

    assert cli_report.MAX_FRAMES == report.MAX_FRAMES
    assert cli_report.MAX_INSTANCES == report.MAX_INSTANCES


@pytest.mark.browser
def test_report_renders_in_chromium_offline(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `bash tests/setup-browser.sh` (as root)")
    from playwright.sync_api import sync_playwright

    page_path = write_report(_sweep_store(tmp_path), tmp_path / "report.html")
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}")
                    # errors, and bokeh's own warnings (not the GPU driver's chatter)
                    if m.type == "error" or (m.type == "warning" and "[bokeh" in m.text)
                    else None
                ),
            )
            page.goto(page_path.as_uri())
            page.wait_for_function(
                "() => window.Bokeh && Bokeh.documents.length > 0"
                " && Bokeh.documents[0].roots().length > 0",
                timeout=60_000,
            )
            roots = page.evaluate("() => Bokeh.documents[0].roots().map(r => r.name)")
            # each root was rendered into its section (bokeh draws plots on canvases)
            views = page.evaluate(
                """() => [...document.querySelectorAll("section")].filter(
                    s => s.querySelector("div") && s.getBoundingClientRect().height > 200).length"""
            )
            moved = page.evaluate(
                """async () => {
                    const models = [...Bokeh.documents[0]._all_models.values()];
                    const is = (m, name) => m.constructor.__name__ === name;
                    const sliders = models.filter(m => is(m, "Slider"));
                    const sources = models.filter(m => is(m, "ColumnDataSource"));
                    const snap = () => sources.map(s => JSON.stringify(
                        Object.entries(s.data).map(([k, v]) => [k, Array.from(v)])));
                    const before = snap();
                    for (const s of sliders) { s.value = s.start; }
                    await new Promise(r => setTimeout(r, 300));  // CustomJS runs async
                    const after = snap();
                    const labels = models.filter(m => is(m, "Div")).map(d => d.text);
                    return {
                        sliders: sliders.length,
                        changed: before.filter((b, i) => b !== after[i]).length,
                        labels,
                    };
                }"""
            )
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert roots == ["loss", "directions", "gram", "norms", "dimensionality", "overlap_graph"]
    assert views == len(roots)
    offline = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert offline == [], f"network requests: {offline}"
    assert [u for u in requests if u.startswith("file://")] == [page_path.as_uri()]
    assert problems == []
    # every view with several steps has a slider; moving them changes the plotted data
    assert moved["sliders"] == 5  # all but the loss curves
    assert moved["changed"] >= 5
    assert set(moved["labels"]) == {"step 0"}  # the page opens at the last step
    assert shot.stat().st_size > 20_000


def test_views_are_a_registry_of_records():
    from toyanalysis.params import ReportParams
    from toyanalysis.report import VIEWS, View

    assert isinstance(VIEWS, tuple) and all(isinstance(v, View) for v in VIEWS)
    assert [v.name for v in VIEWS] == [
        "loss",
        "llc",
        "directions",
        "gram",
        "norms",
        "dimensionality",
        "neurons",
        "overlap_graph",
        "phase_diagram",
    ]
    ds = testing.as_dataset(testing.polytope("pentagon"))
    # a registry is a value: pass another one, nothing global changes
    only = tuple(v for v in VIEWS if v.name == "norms")
    assert [s.name for s in applicable_views(ds, views=only)] == ["norms"]
    assert len(applicable_views(ds)) == 4
    # the params, whole or by name; a view's frames are cut to its budget
    W = np.random.default_rng(0).normal(size=(60, 1, 2, 5)).astype(np.float32)
    big = testing.as_dataset(W)
    sections = {s.name: s for s in applicable_views(big, ReportParams(max_frames=7))}
    assert sections["norms"].params.max_frames == 7
    assert applicable_views(big, max_frames=7)[0].params == sections["directions"].params
    assert sections["overlap_graph"].params.max_frames == 7
    assert sections["gram"].params.classify == ReportParams().classify


def test_cli_report_options_come_from_report_params(tmp_path, cli):
    out, store = tmp_path / "r.html", _neuron_store(tmp_path)
    bad = cli("report", store, "-o", out, "--max-frames", "0")
    assert bad.exit_code == 2 and "--max-frames" in bad.stderr and not out.exists()
    ok = cli("report", store, "-o", out, "--overlap-tol", "0.5")
    assert ok.exit_code == 0, ok.stderr
    help_text = cli("report", "--help").stdout
    for flag in ("--max-frames", "--max-instances", "--norm-threshold", "--rank-tol", "--min-fit"):
        assert flag in help_text
