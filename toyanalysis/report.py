"""One self-contained HTML page with the plots that apply to a store.

:func:`write_report` picks the views of :mod:`toyanalysis.plots` that make
sense for the store (directions only when ``m = 2``, the D* plot only with a
density sweep, the phase diagram only for importance or density sweeps,
neuron bars only for a privileged basis, loss curves only with a loss) and
writes them into one HTML file that needs no server and no network: bokeh's
JavaScript and CSS are inlined.

Step sliders work offline too. :func:`to_bokeh` renders a HoloViews object
with its bokeh backend, then walks through the frames of its ``HoloMap`` (or
bounded ``DynamicMap``): at each frame it records the data of every
``ColumnDataSource`` and the text of every title that changes. Those frames
are stored in the page, and a bokeh ``Slider`` with a small ``CustomJS``
callback swaps them in. No Python kernel and no Panel are involved, unlike
``hv.save``, which loads Panel's CSS from a CDN even with inline resources.

>>> import tempfile, os, numpy as np
>>> from toyanalysis import testing
>>> W = np.stack([testing.tegum("digon"), testing.tegum("dedicated", dead=1)])[:, None]
>>> ds = testing.as_dataset(W, steps=[0, 100], loss=[[1.0], [0.5]])
>>> path = write_report(ds, os.path.join(tempfile.mkdtemp(), "report.html"))
>>> "Bokeh" in path.read_text()
True
"""

from __future__ import annotations

import html
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toyanalysis.errors import ToyAnalysisError

__all__ = ["View", "applicable_views", "report_html", "to_bokeh", "write_report"]

# Bytes of frame data one view may embed; frames are thinned to stay below it.
VIEW_BUDGET = 12_000_000
# Panels x frames one view may render (HoloViews takes ~50 ms for each on 2 busy cores).
PANEL_FRAMES = 160
MAX_FRAMES = 30
MAX_INSTANCES = 10

_SLIDER_JS = """
const i = slider.value;
const key = keys[i];
label.text = "step " + key;
function plain(d) {
    if (d instanceof Map) { return Object.fromEntries(d.entries()); }
    return Object.assign({}, d);
}
for (let s = 0; s < sources.length; s++) {
    sources[s].data = plain(source_frames[s][source_index[s][i]]);
}
for (let t = 0; t < titles.length; t++) {
    titles[t].text = title_frames[t][i];
}
"""


@dataclass(frozen=True, kw_only=True)
class View:
    """A section of the report: a name, a heading, a sentence, and the plot it builds."""

    name: str
    title: str
    text: str
    build: Callable[[], Any]


# --------------------------------------------------------------------------- which views apply


def _frames_for(bytes_per_frame: int, panels: int, max_frames: int) -> int:
    """Frames a view embeds: within the byte budget and the panel-frame budget."""
    by_bytes = VIEW_BUDGET // max(1, bytes_per_frame)
    by_work = PANEL_FRAMES // max(1, panels)
    return int(max(2, min(max_frames, by_bytes, by_work)))


def applicable_views(
    ds: Any, *, max_frames: int = MAX_FRAMES, max_instances: int = MAX_INSTANCES
) -> list[View]:
    """The views of :mod:`toyanalysis.plots` that apply to a store, in reading order.

    >>> import numpy as np
    >>> from toyanalysis import testing
    >>> [v.name for v in applicable_views(testing.as_dataset(testing.polytope("pentagon")))]
    ['directions', 'gram', 'norms', 'overlap_graph']
    """
    from toyanalysis import plots
    from toyanalysis.plots._common import intake as plots_intake
    from toyanalysis.plots._common import pick_instances as plots_pick

    ds = plots_intake(ds)
    m, n = ds.sizes["hidden"], ds.sizes["feature"]
    n_inst = min(ds.sizes["instance"], max_instances)
    instances = plots_pick(ds, None, max_instances)
    model = ds.attrs.get("model", "relu_output")
    sweep = list(ds.attrs.get("sweep", []) or [])
    views: list[View] = []
    if "loss" in ds.data_vars:
        views.append(
            View(
                name="loss",
                title="Loss during training",
                text="Loss per instance (log axis). A cross marks a change of geometry "
                "(hover it for the configurations before and after); plateaus end in such drops.",
                build=lambda: plots.loss_curves(ds, instances=instances),
            )
        )
    if m == 2:
        frames = _frames_for(n_inst * n * 7 * 8 * 2, n_inst, max_frames)
        views.append(
            View(
                name="directions",
                title="Feature directions",
                text="Each feature's column W_i as a vector in the 2-D hidden space, coloured by "
                "importance. Antipodal pairs, pentagons and dropped features are visible at a glance.",
                build=lambda frames=frames: plots.directions(
                    ds, instances=instances, max_frames=frames
                ),
            )
        )
    frames = _frames_for(n_inst * (n * n + n) * 8, 2 * n_inst, max_frames)
    views.append(
        View(
            name="gram",
            title="WᵀW and the bias",
            text="WᵀW (feature × feature; red positive, blue negative) beside the bias b. "
            "Off-diagonal entries are interference between features.",
            build=lambda frames=frames: plots.gram(ds, instances=instances, max_frames=frames),
        )
    )
    frames = _frames_for(n_inst * n * 8 * 8, n_inst, max_frames)
    views.append(
        View(
            name="norms",
            title="Feature norms and interference",
            text="‖W_i‖ per feature, most important on top, coloured by interference "
            "Σ_{j≠i}(Ŵ_i·W_j)² (dark: a dimension of its own; yellow: in superposition). "
            "The dashed line separates the m most important features.",
            build=lambda frames=frames: plots.norms(ds, instances=instances, max_frames=frames),
        )
    )
    if "density" in ds.coords and ds.sizes["instance"] > 1:
        frames = _frames_for(ds.sizes["instance"] * (n + 1) * 4 * 8, 1, max_frames)
        views.append(
            View(
                name="dimensionality",
                title="Dimensions per feature against sparsity",
                text="D* = m/‖W‖_F² per instance (line) and each feature's dimensionality D_i "
                "(dots) against 1/(1−S). Dashed lines: 1, 3/4, 2/3, 1/2, 2/5, 3/8.",
                build=lambda frames=frames: plots.dimensionality(ds, max_frames=frames),
            )
        )
    if model in ("hidden_relu", "abs"):
        frames = _frames_for(n_inst * n * m * 7 * 8, n_inst, max_frames)
        views.append(
            View(
                name="neurons",
                title="Neurons (privileged basis)",
                text="Stacked |W[h, i]| per neuron, one colour per feature, negative weights "
                "below the axis. One colour: monosemantic; several: polysemantic.",
                build=lambda frames=frames: plots.neuron_bars(
                    ds, instances=instances, max_frames=frames
                ),
            )
        )
    views.append(
        View(
            name="overlap_graph",
            title="Feature-overlap graph",
            text="Represented features joined where their directions overlap, for the last "
            "instance shown; each component (a tegum factor) is drawn as its own polytope and "
            "coloured by configuration. Unlearned features are grey, at the bottom.",
            build=lambda: plots.overlap_graph(
                ds, instance=instances[-1], steps=None, max_frames=min(max_frames, 20)
            ),
        )
    )
    if _diagram_axes(ds, sweep):
        views.append(
            View(
                name="phase_diagram",
                title="Phase diagram",
                text="What the extra feature does in each cell of the sweep, by majority over "
                "seeds: unlearned, superposed (shares dimensions) or dedicated.",
                build=lambda: plots.phase_diagram(ds, steps="last"),
            )
        )
    return views


def _diagram_axes(ds: Any, sweep: list[str]) -> bool:
    """A phase diagram applies to sweeps over importance or density of an extra feature."""
    return any("importance" in s for s in sweep) and 1 <= len(sweep) <= 2


# --------------------------------------------------------------------------- HoloViews -> bokeh


def _snapshot(data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, np.ndarray):
            out[key] = value.copy()
        elif isinstance(value, list):
            out[key] = [np.array(v) if isinstance(v, np.ndarray) else v for v in value]
        else:
            out[key] = value
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            if not all(np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(x, y)):
                return False
        elif not np.array_equal(np.asarray(x), np.asarray(y)):
            return False
    return True


@dataclass
class _Rendered:
    """One panel rendered to bokeh, with the data of each of its frames."""

    model: Any
    keys: list[Any]
    sources: list[Any]
    source_frames: list[list[dict[str, Any]]]
    source_index: list[list[int]]
    titles: list[Any]
    title_frames: list[list[str]]


def _render(obj: Any) -> _Rendered:
    import holoviews as hv
    from bokeh.util.warnings import BokehUserWarning

    with warnings.catch_warnings():
        # HoloViews sets a source's columns one at a time when the row count changes
        warnings.filterwarnings("ignore", "ColumnDataSource's columns", BokehUserWarning)
        return _render_frames(hv.renderer("bokeh").get_plot(obj))


def _render_frames(plot: Any) -> _Rendered:
    from bokeh.models import ColumnDataSource, Title

    keys = list(getattr(plot, "keys", None) or [])
    if len(keys) <= 1:
        return _Rendered(plot.state, keys, [], [], [], [], [])
    if len(keys[0]) != 1:
        raise ToyAnalysisError(f"to_bokeh: one slider dimension expected, got keys like {keys[0]}")
    sources = list(plot.state.select({"type": ColumnDataSource}))
    titles = list(plot.state.select({"type": Title}))
    per_source: list[list[dict[str, Any]]] = [[] for _ in sources]
    per_title: list[list[str]] = [[] for _ in titles]
    for key in keys:
        plot.update(key)
        for s, source in enumerate(sources):
            per_source[s].append(_snapshot(dict(source.data)))
        for t, title in enumerate(titles):
            per_title[t].append(str(title.text or ""))
    moving, source_frames, source_index = [], [], []
    for s, frames in enumerate(per_source):
        unique: list[dict[str, Any]] = []
        index = []
        for frame in frames:
            if not (unique and _same(unique[-1], frame)):
                unique.append(frame)
            index.append(len(unique) - 1)
        if len(unique) > 1:
            moving.append(sources[s])
            source_frames.append(unique)
            source_index.append(index)
        sources[s].data = frames[-1]
    moving_titles = [titles[t] for t, f in enumerate(per_title) if len(set(f)) > 1]
    title_frames = [f for f in per_title if len(set(f)) > 1]
    for title, frames in zip(titles, per_title, strict=True):
        title.text = frames[-1]
    return _Rendered(
        plot.state, keys, moving, source_frames, source_index, moving_titles, title_frames
    )


def to_bokeh(obj: Any, *, name: str | None = None) -> Any:
    """Render a HoloViews object to a bokeh model that works without a server.

    A plain element gives its figure. A ``HoloMap`` (or bounded
    ``DynamicMap``) over ``step`` gives a column with a slider and the figure;
    every frame's data is embedded and the slider swaps it in with
    ``CustomJS``. The panels of a ``Layout`` are rendered one by one (which
    keeps the cost linear in the number of panels) and share one slider.

    >>> import holoviews as hv
    >>> hmap = hv.HoloMap({s: hv.Curve([0, s]) for s in (1, 2, 3)}, kdims=["step"])
    >>> model = to_bokeh(hmap)
    >>> type(model).__name__, type(model.children[0].children[0]).__name__
    ('Column', 'Slider')
    """
    import holoviews as hv
    from bokeh.models import Column, CustomJS, Div, Row, Slider

    if isinstance(obj, hv.Layout):
        panels = list(obj.values())
        cols = int(getattr(obj, "_max_cols", None) or 4)
    else:
        panels, cols = [obj], 1
    rendered = [_render(p) for p in panels]
    grid = [r.model for r in rendered]
    body = (
        grid[0]
        if len(grid) == 1
        else Column(*[Row(*grid[k : k + cols]) for k in range(0, len(grid), cols)])
    )
    keyed = [r for r in rendered if len(r.keys) > 1]
    if not keyed:
        if name is not None:
            body.name = name
        return body
    keys = keyed[0].keys
    for r in keyed[1:]:
        if r.keys != keys:
            raise ToyAnalysisError(
                f"to_bokeh: panels have different steps ({len(keys)} and {len(r.keys)} frames)"
            )
    steps = [str(k[0]) for k in keys]
    label = Div(text=f"step {steps[-1]}", styles={"font-weight": "bold", "padding-top": "6px"})
    slider = Slider(
        start=0,
        end=len(keys) - 1,
        value=len(keys) - 1,  # open at the end of training
        step=1,
        title="frame",
        width=360,
        show_value=False,
    )
    slider.js_on_change(
        "value",
        CustomJS(
            args={
                "slider": slider,
                "label": label,
                "keys": steps,
                "sources": [s for r in keyed for s in r.sources],
                "source_frames": [f for r in keyed for f in r.source_frames],
                "source_index": [i for r in keyed for i in r.source_index],
                "titles": [t for r in keyed for t in r.titles],
                "title_frames": [f for r in keyed for f in r.title_frames],
            },
            code=_SLIDER_JS,
        ),
    )
    column = Column(Row(slider, label), body)
    if name is not None:
        column.name = name
    return column


# --------------------------------------------------------------------------- the page

_TEMPLATE = """\
{% extends base %}
{% block title %}{{ page_title }}{% endblock %}
{% block inner_head %}
{{ super() }}
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
  h1 { font-size: 1.5em; margin-bottom: 0.2em; }
  h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
  p.note { color: #555; max-width: 60em; }
  table.meta td { padding: 0 1em 0 0; font-size: 0.9em; }
  .error { color: #a00; }
</style>
{% endblock %}
{% block contents %}
<h1>{{ page_title }}</h1>
<table class="meta">{% for k, v in meta %}<tr><td><b>{{ k }}</b></td><td>{{ v }}</td></tr>{% endfor %}</table>
{% for section in sections %}
<section id="{{ section.name }}">
<h2>{{ section.title }}</h2>
<p class="note">{{ section.text }}</p>
{% if section.error %}<p class="error">{{ section.error }}</p>
{% else %}{{ embed(roots[section.name]) }}{% endif %}
</section>
{% endfor %}
{% endblock %}
"""


def _meta(ds: Any, source: str) -> list[tuple[str, str]]:
    import json

    config = {}
    if "config" in ds.attrs:
        try:
            config = json.loads(ds.attrs["config"])
        except (TypeError, ValueError):
            config = {}
    steps = ds["step"].values
    rows = [
        ("store", source),
        ("model", str(ds.attrs.get("model", "relu_output"))),
        ("config", str(config.get("name", "-"))),
        ("sizes", ", ".join(f"{d}={s}" for d, s in ds.sizes.items())),
        ("steps", f"{steps[0]}..{steps[-1]} ({steps.size} recorded)"),
    ]
    sweep = list(ds.attrs.get("sweep", []) or [])
    if sweep:
        rows.append(("sweep", ", ".join(sweep)))
    return rows


def _offline_resources() -> Any:
    """Bokeh's JS and CSS inlined, and nothing else.

    Bokeh adds the ``__javascript__``/``__css__`` of every model class that has
    been imported, used or not: HoloViews imports Panel, whose classes then
    ask for ``es-module-shims`` and Panel's CSS from a CDN (or a ``static/``
    folder that does not exist). The report only uses bokeh's own models.
    """
    from bokeh.resources import Resources

    class OfflineResources(Resources):
        def _collect_external_resources(self, resource_attr: Any) -> list[str]:
            return []

        def clone(self, *, components: Any = None) -> Resources:
            components = list(self.components) if components is None else components
            return OfflineResources(mode="inline", components=components)

    return OfflineResources(mode="inline")


def report_html(
    ds: Any,
    *,
    title: str | None = None,
    source: str = "dataset",
    max_frames: int = MAX_FRAMES,
    max_instances: int = MAX_INSTANCES,
    progress: Callable[[str], None] | None = None,
) -> tuple[str, list[str]]:
    """The report page as a string, and the names of the views it shows."""
    import holoviews as hv  # noqa: F401  (plots registers the bokeh backend)
    from bokeh.embed import file_html
    from jinja2 import Template

    from toyanalysis import plots
    from toyanalysis.plots._common import intake as plots_intake

    ds = plots_intake(ds)
    views = applicable_views(ds, max_frames=max_frames, max_instances=max_instances)
    models, sections = [], []
    for view in views:
        if progress is not None:
            progress(view.name)
        try:
            model = to_bokeh(view.build(), name=view.name)
        except plots.PlotError as err:
            sections.append(
                {"name": view.name, "title": view.title, "text": view.text, "error": str(err)}
            )
            continue
        models.append(model)
        sections.append({"name": view.name, "title": view.title, "text": view.text, "error": None})
    page_title = title or f"toyanalysis report: {source}"
    from bokeh.core.validation import silence
    from bokeh.core.validation.warnings import FIXED_SIZING_MODE

    silence(FIXED_SIZING_MODE, True)  # HoloViews sizes plots by frame, which bokeh flags
    try:
        text = file_html(
            models,
            resources=_offline_resources(),
            title=page_title,
            template=Template(_TEMPLATE),
            template_variables={
                "page_title": html.escape(page_title),
                "meta": [(k, html.escape(v)) for k, v in _meta(ds, source)],
                "sections": sections,
            },
        )
    finally:
        silence(FIXED_SIZING_MODE, False)
    return text, [s["name"] for s in sections if s["error"] is None]


def write_report(
    store: Any,
    output: str | os.PathLike[str],
    *,
    title: str | None = None,
    max_frames: int = MAX_FRAMES,
    max_instances: int = MAX_INSTANCES,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write the report of a store (a path or a Dataset) to ``output``; returns the path.

    At most ``max_instances`` instances (evenly spaced) get panels, and each
    view embeds at most ``max_frames`` steps (fewer for large models, to keep
    the page small). ``progress`` is called with each view's name.
    """
    from toyanalysis.plots._common import intake as plots_intake

    source = str(store) if isinstance(store, (str, os.PathLike)) else "dataset"
    ds = plots_intake(store)
    output = Path(output)
    text, _ = report_html(
        ds,
        title=title,
        source=source,
        max_frames=max_frames,
        max_instances=max_instances,
        progress=progress,
    )
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ToyAnalysisError(f"cannot write {output}: {err.strerror}") from None
    return output
