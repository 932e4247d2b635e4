"""One self-contained HTML page with the plots that apply to a store.

The report's views are a registry, :data:`VIEWS`: a tuple of :class:`View`
records, each saying when it applies to a store (directions only when
``m = 2``, the D* plot only with a density sweep, the phase diagram only for
importance or density sweeps, neuron bars only for a privileged basis, loss
curves only with a loss, loss and λ̂ only with a saved ``analysis/llc``),
what one frame costs, and which view of :mod:`toyanalysis.plots` draws it. :func:`write_report` writes the views that
apply into one HTML file that needs no server and no network: bokeh's
JavaScript and CSS are inlined. What it shows is a
:class:`~toyanalysis.params.ReportParams` (``max_frames``, ``max_instances``
and the classify thresholds), given whole or by name.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from toyanalysis._labels import model_of
from toyanalysis.errors import ToyAnalysisError
from toyanalysis.params import PlotParams, ReportParams

__all__ = [
    "VIEWS",
    "ReportParams",
    "Section",
    "View",
    "applicable_views",
    "report_html",
    "to_bokeh",
    "write_report",
]

# Bytes of frame data one view may embed; frames are thinned to stay below it.
VIEW_BUDGET = 12_000_000
# Panels x frames one view may render (HoloViews takes ~50 ms for each on 2 busy cores).
PANEL_FRAMES = 160
MAX_FRAMES = ReportParams().max_frames
MAX_INSTANCES = ReportParams().max_instances

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


# --------------------------------------------------------------------------- the views


@dataclass(frozen=True)
class Shown:
    """What every view of one report shares: the store, the params, the instances shown."""

    ds: xr.Dataset
    params: PlotParams
    instances: list[Any]

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Instances shown, features, hidden dimensions."""
        return len(self.instances), self.ds.sizes["feature"], self.ds.sizes["hidden"]


@dataclass(frozen=True, kw_only=True)
class View:
    """A section of the report: when it applies, what a frame costs, and what draws it.

    ``cost(shown)`` is ``(bytes per frame, panels)``, or None for a view that
    sets its own frames; ``draw(shown, params)`` returns the HoloViews object,
    with ``params.max_frames`` already cut to the view's budget.
    """

    name: str
    title: str
    text: str
    applies: Callable[[Shown], bool]
    draw: Callable[[Shown, PlotParams], Any]
    cost: Callable[[Shown], tuple[int, int]] | None = None


def _always(shown: Shown) -> bool:
    return True


def _loss(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    return plots.loss_curves(shown.ds, params, instances=shown.instances)


def _directions(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    return plots.directions(shown.ds, params, instances=shown.instances)


def _gram(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    return plots.gram(shown.ds, params, instances=shown.instances)


def _norms(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    return plots.norms(shown.ds, params, instances=shown.instances)


def _dimensionality(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    return plots.dimensionality(shown.ds, params)


def _neurons(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    return plots.neuron_bars(shown.ds, params, instances=shown.instances)


def _overlap_graph(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    params = params.replace(max_frames=min(params.max_frames, 20))
    return plots.overlap_graph(shown.ds, params, instance=shown.instances[-1], steps=None)


def _phase_diagram(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    return plots.phase_diagram(shown.ds, params, steps="last")


def _has_diagram(shown: Shown) -> bool:
    """A phase diagram applies to sweeps over importance or density of an extra feature."""
    sweep = list(shown.ds.attrs.get("sweep", []) or [])
    return any("importance" in s for s in sweep) and 1 <= len(sweep) <= 2


def _has_llc(shown: Shown) -> bool:
    """The λ̂ view applies to a store with a saved llc result (``toyanalysis llc --save``)."""
    from toyanalysis.plots import saved_llc

    return saved_llc(shown.ds) is not None


def _phases_for(shown: Shown, params: PlotParams, chosen: list[Any] | None) -> Any:
    """The store's saved phases result, else one computed for ``chosen``; None when neither."""
    from toyanalysis.params import PhaseParams
    from toyanalysis.phase_changes import phases
    from toyanalysis.plots import store_path
    from toyanalysis.store import open_analysis

    path = store_path(shown.ds)
    try:
        if path is not None:
            return open_analysis(path, "phases")
    except ToyAnalysisError:
        pass  # none saved
    try:
        return phases(shown.ds, PhaseParams(classify=params.classify), instances=chosen)
    except ToyAnalysisError:
        return None


def _llc(shown: Shown, params: PlotParams) -> Any:
    from toyanalysis import plots

    estimates = plots.saved_llc(shown.ds)
    if estimates is None:
        raise plots.PlotError("the store has no saved analysis/llc group")
    have = set(estimates["instance"].values.tolist())
    chosen = [i for i in shown.instances if i in have] or None
    marks = _phases_for(shown, params, chosen or estimates["instance"].values.tolist())
    return plots.llc_curves(shown.ds, params, llc=estimates, phases=marks, instances=chosen)


VIEWS: tuple[View, ...] = (
    View(
        name="loss",
        title="Loss during training",
        text="Loss per instance (log axis). A cross marks a change of geometry "
        "(hover it for the configurations before and after); plateaus end in such drops.",
        applies=lambda shown: "loss" in shown.ds.data_vars,
        draw=_loss,
    ),
    View(
        name="llc",
        title="Loss and the local learning coefficient",
        text="Loss (top) and λ̂ ± se (bottom) per instance at the checkpoints of the store's "
        "saved llc result (toyanalysis llc --save). A cross on the loss and a dashed line on λ̂ "
        "mark each change of geometry (hover the cross for Δλ̂): a dynamical transition lowers "
        "the loss and raises λ̂. Unreliable estimates (negative, or chains that disagree) and "
        "those whose every chain diverged are left out and counted in the title: λ̂ means "
        "something only near critical points (docs/llc.md).",
        applies=_has_llc,
        draw=_llc,
    ),
    View(
        name="directions",
        title="Feature directions",
        text="Each feature's column W_i as a vector in the 2-D hidden space, coloured by "
        "importance. Antipodal pairs, pentagons and dropped features are visible at a glance.",
        applies=lambda shown: shown.sizes[2] == 2,
        draw=_directions,
        cost=lambda shown: (shown.sizes[0] * shown.sizes[1] * 7 * 8 * 2, shown.sizes[0]),
    ),
    View(
        name="gram",
        title="WᵀW and the bias",
        text="WᵀW (feature × feature; red positive, blue negative) beside the bias b. "
        "Off-diagonal entries are interference between features.",
        applies=_always,
        draw=_gram,
        cost=lambda shown: (
            shown.sizes[0] * (shown.sizes[1] ** 2 + shown.sizes[1]) * 8,
            2 * shown.sizes[0],
        ),
    ),
    View(
        name="norms",
        title="Feature norms and interference",
        text="‖W_i‖ per feature, most important on top, coloured by interference "
        "Σ_{j≠i}(Ŵ_i·W_j)² (dark: a dimension of its own; yellow: in superposition). "
        "The dashed line separates the m most important features.",
        applies=_always,
        draw=_norms,
        cost=lambda shown: (shown.sizes[0] * shown.sizes[1] * 8 * 8, shown.sizes[0]),
    ),
    View(
        name="dimensionality",
        title="Dimensions per feature against sparsity",
        text="D* = m/‖W‖_F² per instance (line) and each feature's dimensionality D_i "
        "(dots) against 1/(1−S). Dashed lines: 1, 3/4, 2/3, 1/2, 2/5, 3/8.",
        applies=lambda shown: "density" in shown.ds.coords and shown.ds.sizes["instance"] > 1,
        draw=_dimensionality,
        cost=lambda shown: (shown.ds.sizes["instance"] * (shown.sizes[1] + 1) * 4 * 8, 1),
    ),
    View(
        name="neurons",
        title="Neurons (privileged basis)",
        text="Stacked |W[h, i]| per neuron, one colour per feature, negative weights "
        "below the axis. One colour: monosemantic; several: polysemantic.",
        applies=lambda shown: model_of(shown.ds).privileged,
        draw=_neurons,
        cost=lambda shown: (
            shown.sizes[0] * shown.sizes[1] * shown.sizes[2] * 7 * 8,
            shown.sizes[0],
        ),
    ),
    View(
        name="overlap_graph",
        title="Feature-overlap graph",
        text="Represented features joined where their directions overlap, for the last "
        "instance shown; each component (a tegum factor) is drawn as its own polytope and "
        "coloured by configuration. Unlearned features are grey, at the bottom.",
        applies=_always,
        draw=_overlap_graph,
    ),
    View(
        name="phase_diagram",
        title="Phase diagram",
        text="What the extra feature does in each cell of the sweep, by majority over "
        "seeds: unlearned, superposed (shares dimensions) or dedicated.",
        applies=_has_diagram,
        draw=_phase_diagram,
    ),
)


def _frames_for(bytes_per_frame: int, panels: int, max_frames: int) -> int:
    """Frames a view embeds: within the byte budget and the panel-frame budget."""
    by_bytes = VIEW_BUDGET // max(1, bytes_per_frame)
    by_work = PANEL_FRAMES // max(1, panels)
    return int(max(2, min(max_frames, by_bytes, by_work)))


@dataclass(frozen=True)
class Section:
    """One view of the registry applied to one store: its name, heading, text and plot."""

    view: View
    shown: Shown = field(repr=False)

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def title(self) -> str:
        return self.view.title

    @property
    def text(self) -> str:
        return self.view.text

    @property
    def params(self) -> PlotParams:
        """The shown params, ``max_frames`` cut to this view's budget."""
        params = self.shown.params
        if self.view.cost is None:
            return params
        frames = _frames_for(*self.view.cost(self.shown), params.max_frames)
        return params.replace(max_frames=frames)

    def build(self) -> Any:
        """The HoloViews object of this section."""
        return self.view.draw(self.shown, self.params)


def resolve(params: PlotParams | None, changes: dict[str, Any]) -> PlotParams:
    """The report's params: ``params`` (a :class:`ReportParams` by default) with ``changes``."""
    cls = type(params) if isinstance(params, PlotParams) else ReportParams
    return cls.resolve(params, changes)


def _intake(ds: Any) -> xr.Dataset:
    from toyanalysis.plots import intake

    return intake(ds)


def applicable_views(
    ds: Any,
    params: PlotParams | None = None,
    *,
    views: tuple[View, ...] = VIEWS,
    **changes: Any,
) -> list[Section]:
    """The ``views`` (the registry by default) that apply to a store, in reading order.

    ``params`` (a :class:`ReportParams` by default, or fields by name such as
    ``max_frames=10``) says how many steps and instances the views show.

    >>> import numpy as np
    >>> from toyanalysis import testing
    >>> [v.name for v in applicable_views(testing.as_dataset(testing.polytope("pentagon")))]
    ['directions', 'gram', 'norms', 'overlap_graph']
    """
    from toyanalysis.plots import pick_instances

    params = resolve(params, changes)
    ds = _intake(ds)
    shown = Shown(ds, params, pick_instances(ds, None, params.max_instances))
    return [Section(view, shown) for view in views if view.applies(shown)]


# --------------------------------------------------------------------------- HoloViews -> bokeh


def _snapshot(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
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
    from bokeh.models.annotations import Title
    from bokeh.models.sources import ColumnDataSource

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
    moving, source_frames, source_index = _moving_sources(sources, per_source)
    moving_titles = [titles[t] for t, f in enumerate(per_title) if len(set(f)) > 1]
    title_frames = [f for f in per_title if len(set(f)) > 1]
    for title, frames in zip(titles, per_title, strict=True):
        title.text = frames[-1]
    return _Rendered(
        plot.state, keys, moving, source_frames, source_index, moving_titles, title_frames
    )


def _moving_sources(
    sources: list[Any], per_source: list[list[dict[str, Any]]]
) -> tuple[list[Any], list[list[dict[str, Any]]], list[list[int]]]:
    """The sources whose data changes over the frames, each frame's distinct data, and indices.

    Each source is left showing the last frame.
    """
    moving: list[Any] = []
    source_frames: list[list[dict[str, Any]]] = []
    source_index: list[list[int]] = []
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
    return moving, source_frames, source_index


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
    from bokeh.models.layouts import Column, Row

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
        else Column(children=[Row(children=grid[k : k + cols]) for k in range(0, len(grid), cols)])
    )
    keyed = [r for r in rendered if len(r.keys) > 1]
    model = body if not keyed else Column(children=[_slider(keyed), body])
    if name is not None:
        model.name = name
    return model


def _slider(keyed: list[_Rendered]) -> Any:
    """A slider over the shared steps of ``keyed`` panels, with its label and callback."""
    from bokeh.models.callbacks import CustomJS
    from bokeh.models.layouts import Row
    from bokeh.models.widgets import Div, Slider

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
    args = {
        "slider": slider,
        "label": label,
        "keys": steps,
        "sources": [s for r in keyed for s in r.sources],
        "source_frames": [f for r in keyed for f in r.source_frames],
        "source_index": [i for r in keyed for i in r.source_index],
        "titles": [t for r in keyed for t in r.titles],
        "title_frames": [f for r in keyed for f in r.title_frames],
    }
    slider.js_on_change("value", CustomJS(args=args, code=_SLIDER_JS))
    return Row(children=[slider, label])


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


def _sections(
    sections: list[Section], progress: Callable[[str], None] | None
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Each section rendered to bokeh, or its error (a view that does not apply after all)."""
    from toyanalysis.plots import PlotError

    models: list[Any] = []
    rows: list[dict[str, Any]] = []
    for section in sections:
        if progress is not None:
            progress(section.name)
        row: dict[str, Any] = {"name": section.name, "title": section.title, "text": section.text}
        try:
            models.append(to_bokeh(section.build(), name=section.name))
            row["error"] = None
        except PlotError as err:
            row["error"] = str(err)
        rows.append(row)
    return models, rows


def _page(models: list[Any], rows: list[dict[str, Any]], page_title: str, meta: Any) -> str:
    from bokeh.core.validation import silence
    from bokeh.core.validation.warnings import FIXED_SIZING_MODE
    from bokeh.embed import file_html
    from jinja2 import Template

    silence(FIXED_SIZING_MODE, True)  # HoloViews sizes plots by frame, which bokeh flags
    try:
        return file_html(
            models,
            resources=_offline_resources(),
            title=page_title,
            template=Template(_TEMPLATE),
            template_variables={
                "page_title": html.escape(page_title),
                "meta": [(k, html.escape(v)) for k, v in meta],
                "sections": rows,
            },
        )
    finally:
        silence(FIXED_SIZING_MODE, False)


def report_html(
    ds: Any,
    params: PlotParams | None = None,
    *,
    title: str | None = None,
    source: str = "dataset",
    progress: Callable[[str], None] | None = None,
    **changes: Any,
) -> tuple[str, list[str]]:
    """The report page as a string, and the names of the views it shows.

    ``params``: a :class:`ReportParams` (the default) or its fields by name.
    """
    ds = _intake(ds)
    models, rows = _sections(applicable_views(ds, params, **changes), progress)
    page_title = title or f"toyanalysis report: {source}"
    text = _page(models, rows, page_title, _meta(ds, source))
    return text, [row["name"] for row in rows if row["error"] is None]


def write_report(
    store: Any,
    output: str | os.PathLike[str],
    params: PlotParams | None = None,
    *,
    title: str | None = None,
    progress: Callable[[str], None] | None = None,
    **changes: Any,
) -> Path:
    """Write the report of a store (a path or a Dataset) to ``output``; returns the path.

    At most ``params.max_instances`` instances (evenly spaced) get panels, and
    each view embeds at most ``params.max_frames`` steps (fewer for large
    models, to keep the page small). ``params`` is a :class:`ReportParams`
    (the default) or its fields by name (``max_frames=10``); ``progress`` is
    called with each view's name.
    """
    source = str(store) if isinstance(store, (str, os.PathLike)) else "dataset"
    text, _ = report_html(
        _intake(store), params, title=title, source=source, progress=progress, **changes
    )
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ToyAnalysisError(f"cannot write {output}: {err.strerror}") from None
    return output
