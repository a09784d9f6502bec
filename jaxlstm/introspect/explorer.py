"""A gate explorer in the browser: one self-contained HTML page in which a reader moves through the time steps and
the units of one window of a recurrent model and sees, at each step, the input, every gate, the cell state and the
hidden state.

:func:`explorer_html` takes plain arrays (NumPy or anything :func:`numpy.asarray` reads; no JAX here, so the page can
be built and tested without a model) and returns the page as a string; the caller writes it. The page needs no
network: its style and script are inlined, the charts are inline SVG, and the data sits in a
``<script type="application/json" id="explorer-data">`` element, rounded to 4 significant digits. :func:`trace_layers`
turns the :class:`~jaxlstm.introspect.gates.GateTrace` records of :func:`~jaxlstm.introspect.gates.trace_gates` into
the page's layer records.

The page: a time-step slider (``#step``; the arrow keys move it too, up and down move the unit), a unit slider
(``#unit``), a layer selector (``#layer``) when there are several layers; for the chosen step the inputs (``#inputs``)
and every series' value for the chosen unit (``#values``), a line chart over a heat strip per series over the whole
window, and a grid of all units at the step. Series whose values all lie in [0, 1] are drawn as gates (0 light, 1
dark); the others on a diverging scale around 0 (``gates=`` of a layer record says which are gates instead).
"""

import html
import json
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ExplorerLayer", "explorer_html", "trace_layers"]

SIGNIFICANT = 4  # digits kept of every value in the page's data
GATE, SIGNED = "gate", "signed"  # the two colour scales: (0, 1), and diverging around 0


class ExplorerLayer(NamedTuple):
    """One layer and direction of the model on the page.

    Attributes:
        title: how the page names it, e.g. ``layer 0 forward``.
        kind: the cell, e.g. ``lstm`` or ``gru`` (shown next to the title; may be empty).
        series: an ordered mapping of name to a (time, units) array: the gates and states, in the order shown.
        gates: the names of the series that are gates in (0, 1), drawn on the gate scale; ``None``: every series
            whose values all lie in [0, 1].
    """

    title: str
    kind: str
    series: Mapping[str, ArrayLike]
    gates: Collection[str] | None = None


def explorer_html(
    inputs: ArrayLike,
    layers: Sequence[ExplorerLayer | tuple | Mapping[str, Any]],
    *,
    feature_names: Sequence[str] | None = None,
    time_labels: Sequence[str] | None = None,
    markers: ArrayLike | None = None,
    title: str = "Gate explorer",
    notes: str | None = None,
    target: float | None = None,
    prediction: float | None = None,
) -> str:
    """The gate explorer of one window, as one self-contained HTML page.

    Args:
        inputs: the window's inputs, (time, features) (a 1-D array is one feature).
        layers: one record per layer and direction: an :class:`ExplorerLayer`, a tuple ``(title, kind, series[,
            gates])`` or a mapping with those keys. Every series is (time, units), the same time as ``inputs`` and
            the same units within a layer; further trailing axes (a ConvLSTM's positions) are flattened into units.
        feature_names: a name per input feature (default ``x0``, ``x1``, ...).
        time_labels: a label per time step shown beside the step number (a stock window's dates), or None.
        markers: optional (time,) booleans: the steps that matter (the adding problem's two marked values), drawn
            as marks on every timeline and flagged when the slider is on one.
        title: the page's title; ``notes``: a line of text under it.
        target, prediction: optional numbers shown in the header (with their difference when both are given).

    Returns:
        The page (a string, about 8 bytes per value: 4 layers of 6 series of 50 units over 60 steps take 0.6 MB).
        Non-finite values are kept as ``null`` and shown as a dash.

    Raises:
        ValueError: an array of the wrong shape, or no layer.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> series = {"forget gate f": rng.uniform(size=(5, 3)), "cell state c": rng.normal(size=(5, 3))}
    >>> page = explorer_html(rng.normal(size=(5, 2)), [("layer 0 forward", "lstm", series)], title="a <tiny> window")
    >>> page.startswith("<!DOCTYPE html>"), "<h1>a &lt;tiny&gt; window</h1>" in page, 'id="explorer-data"' in page
    (True, True, True)
    """
    x = _matrix(inputs, "inputs")
    steps, features = x.shape
    if steps == 0:
        raise ValueError("inputs: the window has no time step")
    names = [f"x{j}" for j in range(features)] if feature_names is None else [str(name) for name in feature_names]
    if len(names) != features:
        raise ValueError(f"feature_names: {len(names)} names for {features} input features")
    records = [_layer(record, steps) for record in layers]
    if not records:
        raise ValueError("layers: no layer to show")
    marks = _markers(markers, steps)
    if time_labels is not None and len(time_labels) != steps:
        raise ValueError(f"time_labels: {len(time_labels)} labels for {steps} time steps")
    target, prediction = _number(target), _number(prediction)
    data = {
        "title": str(title),
        "notes": None if notes is None else str(notes),
        "target": target,
        "prediction": prediction,
        "steps": steps,
        "markers": marks,
        "labels": None if time_labels is None else [str(label) for label in time_labels],
        "inputs": {"names": names, "values": _rounded(x)},
        "layers": records,
    }
    return (
        _PAGE.replace("@TITLE@", html.escape(str(title)))
        .replace("@NOTES@", "" if notes is None else f'<p class="notes">{html.escape(str(notes))}</p>')
        .replace("@OUTCOME@", _outcome(target, prediction))
        .replace("@LAST@", str(steps - 1))
        .replace("@UNITS_LAST@", str(records[0]["units"] - 1))
        .replace("@LAYER@", _layer_select(records))
        .replace("@STYLE@", _STYLE)
        .replace("@DATA@", _embedded_json(data))
        .replace("@SCRIPT@", _SCRIPT)
    )


def trace_layers(traces: Sequence[Any], window: int = 0) -> list[ExplorerLayer]:
    """The layer records of :func:`explorer_html` for window ``window`` of the
    :class:`~jaxlstm.introspect.gates.GateTrace` records of :func:`~jaxlstm.introspect.gates.trace_gates` (any
    cell: every gate and state it records, named as its figures name them).

    >>> import numpy as np
    >>> from jaxlstm.introspect import GateTrace
    >>> zeros = np.zeros((2, 7, 4))
    >>> gates = dict.fromkeys(("input", "forget", "candidate", "output"), zeros)
    >>> [layer] = trace_layers([GateTrace(0, "forward", "lstm", gates, {"c": zeros, "h": zeros})], window=1)
    >>> layer.title, list(layer.series)[:2], layer.series["hidden state h"].shape, sorted(layer.gates)[0]
    ('layer 0 forward', ['input gate i', 'forget gate f'], (7, 4), 'forget gate f')
    """
    return [
        ExplorerLayer(
            f"layer {trace.layer} {trace.direction}",
            trace.cell,
            {trace.labels[name]: np.asarray(values)[window] for name, values in trace.series.items()},
            [trace.labels[name] for name in trace.sigmoid_gates],
        )
        for trace in traces
    ]


def _matrix(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` as a float (time, columns) array: a 1-D array is one column, trailing axes are flattened."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError(f"{what}: a scalar, not a (time, ...) array")
    return array.reshape(array.shape[0], -1)


def _layer(record: ExplorerLayer | tuple | Mapping[str, Any], steps: int) -> dict[str, Any]:
    """One layer record as the page's data: its series rounded, each with its colour scale and limit."""
    if isinstance(record, Mapping):
        record = ExplorerLayer(**record)
    elif not isinstance(record, ExplorerLayer):
        record = ExplorerLayer(*record)
    series, units = [], None
    for name, values in record.series.items():
        array = _matrix(values, f"{record.title}: {name}")
        if array.shape[0] != steps:
            raise ValueError(f"{record.title}: {name} has {array.shape[0]} time steps, the inputs {steps}")
        if units is not None and array.shape[1] != units:
            raise ValueError(f"{record.title}: {name} has {array.shape[1]} units, the series before it {units}")
        units = array.shape[1]
        finite = array[np.isfinite(array)]
        if record.gates is not None:
            scale = GATE if name in record.gates else SIGNED
        else:
            scale = GATE if finite.size and finite.min() >= 0 and finite.max() <= 1 else SIGNED
        largest = float(np.abs(finite).max()) if finite.size else 0.0
        limit = 1.0 if scale == GATE or largest == 0 else _round(largest)
        series.append({"name": str(name), "scale": scale, "limit": limit, "values": _rounded(array)})
    if units is None:
        raise ValueError(f"{record.title}: no series")
    return {"title": str(record.title), "kind": str(record.kind or ""), "units": units, "series": series}


def _markers(markers: ArrayLike | None, steps: int) -> list[int]:
    """The indices of the marked steps."""
    if markers is None:
        return []
    flags = np.asarray(markers, dtype=bool).reshape(-1)
    if flags.shape[0] != steps:
        raise ValueError(f"markers: {flags.shape[0]} flags for {steps} time steps")
    return [int(t) for t in np.flatnonzero(flags)]


def _round(value: float) -> float | None:
    """``value`` to :data:`SIGNIFICANT` significant digits; ``None`` (JSON null) when not finite."""
    return float(f"{value:.{SIGNIFICANT}g}") if math.isfinite(value) else None


def _rounded(array: np.ndarray) -> list[list[float | None]]:
    return [[_round(value) for value in row] for row in array.tolist()]


def _number(value: float | None) -> float | None:
    return None if value is None else _round(float(np.asarray(value, dtype=np.float64).reshape(())))


def _outcome(target: float | None, prediction: float | None) -> str:
    """The header's line of target, prediction and error (static, so that it reads without the script too)."""
    pairs = (("target", target), ("prediction", prediction))
    parts = [f"{label} <b>{value:.4g}</b>" for label, value in pairs if value is not None]
    if target is not None and prediction is not None:
        parts.append(f"error <b>{prediction - target:+.4g}</b>")
    return f'<p class="outcome">{" &middot; ".join(parts)}</p>' if parts else ""


def _layer_select(records: list[dict[str, Any]]) -> str:
    """The layer selector, when there is more than one layer."""
    if len(records) < 2:
        return ""
    options = "".join(
        f'<option value="{index}">{html.escape(record["title"])}'
        f"{' (' + html.escape(record['kind']) + ')' if record['kind'] else ''}</option>"
        for index, record in enumerate(records)
    )
    return f'<label>layer <select id="layer">{options}</select></label>'


def _embedded_json(data: dict[str, Any]) -> str:
    """``data`` as JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` (so no ``</script>`` or
    ``<!--``) appears raw; JSON's ``\\u`` escapes read back the same."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>@STYLE@</style>
</head>
<body>
<header>
<h1>@TITLE@</h1>
@NOTES@
@OUTCOME@
</header>
<div class="controls">
<label>step <input type="range" id="step" min="0" max="@LAST@" step="1" value="0">
<output id="step-label">0</output> / @LAST@ <output id="step-time"></output></label>
<button type="button" id="prev-mark" title="previous marked step">&#9664; mark</button>
<button type="button" id="next-mark" title="next marked step">mark &#9654;</button>
<span id="step-marker" class="badge"></span>
@LAYER@
<label>unit <input type="range" id="unit" min="0" max="@UNITS_LAST@" step="1" value="0">
<output id="unit-label">0</output></label>
<span class="hint">&larr; &rarr; step, &uarr; &darr; unit; click a chart or a cell</span>
</div>
<main>
<div class="side">
<section><h2>Input at this step</h2><div id="inputs"></div></section>
<section><h2>Values of the unit at this step</h2><div id="values"></div></section>
</div>
<div class="wide">
<section><h2>Inputs over the window</h2><div id="timeline"></div></section>
<section><h2>The unit over the window</h2><div id="series"></div></section>
<section><h2>All units at this step</h2><div id="grid"></div></section>
</div>
</main>
<script type="application/json" id="explorer-data">@DATA@</script>
<script>@SCRIPT@</script>
</body>
</html>
"""

_STYLE = """
:root { --ink: #1d2126; --muted: #5f6873; --line: #dde1e6; --mark: #e8590c; --cursor: #1d2126; --bg: #fafaf9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: var(--bg); }
header { padding: 12px 20px 8px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0 0 2px; }
.notes, .outcome { margin: 2px 0; color: var(--muted); }
.outcome b { color: var(--ink); font-variant-numeric: tabular-nums; }
.controls { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center;
  padding: 8px 20px; background: #fff; border-bottom: 1px solid var(--line); }
.controls input[type=range] { width: 240px; vertical-align: middle; }
output { display: inline-block; min-width: 2.2em; font-weight: 600; font-variant-numeric: tabular-nums; }
button { font: inherit; padding: 1px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.badge { min-width: 7em; font-weight: 600; color: var(--mark); }
.hint { color: var(--muted); font-size: 12px; }
main { display: grid; grid-template-columns: minmax(280px, 380px) minmax(0, 1fr); gap: 18px; padding: 14px 20px; }
@media (max-width: 800px) { main { grid-template-columns: minmax(0, 1fr); } }
section { margin-bottom: 16px; }
h2 { margin: 0 0 6px; font-size: 12px; font-weight: 600; letter-spacing: .05em; text-transform: uppercase;
  color: var(--muted); }
h3 { margin: 6px 0 2px; font-size: 13px; font-weight: 600; }
table.vals { width: 100%; border-collapse: collapse; }
table.vals td { padding: 2px 4px; border-bottom: 1px solid #eef0f2; vertical-align: middle; }
td.name { overflow-wrap: anywhere; }
td.num { width: 6em; text-align: right; font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.bar { position: relative; width: 110px; height: 10px; background: #eef0f2; border-radius: 2px; }
.bar span { position: absolute; top: 0; bottom: 0; }
.bar.signed::after { content: ""; position: absolute; left: 50%; top: -2px; bottom: -2px; border-left: 1px solid #999; }
.caption { color: var(--muted); font-size: 12px; margin: 0 0 4px; }
svg.chart { display: block; width: 100%; height: auto; background: #fff; border: 1px solid var(--line);
  cursor: crosshair; }
svg .mark { stroke: var(--mark); stroke-width: 1.5; stroke-dasharray: 3 2; }
svg .cursor { stroke: var(--cursor); stroke-width: 1.5; }
svg .cursor.marked { stroke: var(--mark); stroke-width: 3; }
svg .zero { stroke: #ccc; stroke-width: 1; }
svg .line { fill: none; stroke-width: 1.5; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 14px; height: 3px; margin-right: 4px; vertical-align: middle; }
.grid { display: grid; gap: 2px 1px; align-items: center; overflow-x: auto; padding-bottom: 4px; }
.grid .label { font-size: 12px; padding-right: 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.grid .cell { width: 12px; height: 14px; cursor: pointer; }
.grid .cell.chosen { outline: 2px solid var(--ink); outline-offset: -1px; }
.grid .head { font-size: 10px; color: var(--muted); text-align: center; }
body.marked .controls { background: #fff4e6; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("explorer-data").textContent);
  var T = data.steps, W = 600, PAD = 4;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d"];
  var G0 = [247, 251, 255], G1 = [8, 69, 148], MID = [247, 247, 247], NEG = [33, 102, 172], POS = [178, 24, 43];
  var state = { step: 0, layer: 0, unit: 0 };
  var cursors = [], cells = [];
  var marked = {};
  data.markers.forEach(function (t) { marked[t] = true; });
  function byId(id) { return document.getElementById(id); }
  var stepInput = byId("step"), unitInput = byId("unit"), layerSelect = byId("layer");

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function fmt(v) { return v === null || v === undefined ? "\\u2014" : Number(v).toPrecision(4); }
  function mix(a, b, t) {
    return "rgb(" + [0, 1, 2].map(function (i) { return Math.round(a[i] + (b[i] - a[i]) * t); }).join(",") + ")";
  }
  function colour(scale, limit, v) {
    if (v === null || v === undefined) { return "#bbb"; }
    if (scale === "gate") { return mix(G0, G1, clamp(v, 0, 1)); }
    var t = clamp(v / limit, -1, 1);
    return t < 0 ? mix(MID, NEG, -t) : mix(MID, POS, t);
  }
  function xOf(t) { return T > 1 ? PAD + t * (W - 2 * PAD) / (T - 1) : W / 2; }
  function svg(tag, attrs, parent) {
    var n = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(n); }
    return n;
  }
  function el(tag, cls, text, parent) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined && text !== null) { n.textContent = text; }
    if (parent) { parent.appendChild(n); }
    return n;
  }
  function layer() { return data.layers[state.layer]; }

  // A chart over the window: the marked steps, a click to choose a step, and a cursor at the chosen one.
  function chart(parent, height, draw) {
    var box = svg("svg", { viewBox: "0 0 " + W + " " + height, "class": "chart" }, parent);
    draw(box);
    data.markers.forEach(function (t) {
      svg("line", { x1: xOf(t), x2: xOf(t), y1: 0, y2: height, "class": "mark" }, box);
    });
    cursors.push(svg("line", { y1: 0, y2: height, "class": "cursor" }, box));
    box.addEventListener("click", function (event) {
      var r = box.getBoundingClientRect(), px = (event.clientX - r.left) / r.width * W;
      setStep(Math.round((px - PAD) / (W - 2 * PAD) * (T - 1)));
    });
    return box;
  }
  // An SVG path through the points, broken where a value is missing.
  function path(values, yOf) {
    var d = "", pen = false;
    values.forEach(function (v, t) {
      if (v === null) { pen = false; return; }
      d += (pen ? "L" : "M") + xOf(t).toFixed(1) + " " + yOf(v).toFixed(1);
      pen = true;
    });
    return d;
  }
  function bar(parent, scale, limit, v) {
    var box = el("div", "bar" + (scale === "gate" ? "" : " signed"), null, parent), fill = el("span", null, null, box);
    fill.style.background = colour(scale, limit, v);
    if (v === null || v === undefined) { return; }
    if (scale === "gate") {
      fill.style.left = "0"; fill.style.width = (100 * clamp(v, 0, 1)) + "%";
    } else {
      var w = 50 * clamp(Math.abs(v) / limit, 0, 1);
      fill.style.left = (v < 0 ? 50 - w : 50) + "%"; fill.style.width = w + "%";
    }
  }

  // Each input feature scaled to its own range over the window, one line each.
  function drawTimeline() {
    var names = data.inputs.names, rows = data.inputs.values, H = 90;
    var root = byId("timeline");
    chart(root, H, function (box) {
      names.forEach(function (name, j) {
        var column = rows.map(function (row) { return row[j]; });
        var known = column.filter(function (v) { return v !== null; });
        var lo = Math.min.apply(null, known), hi = Math.max.apply(null, known), span = hi - lo || 1;
        svg("path", { d: path(column, function (v) { return H - 6 - (v - lo) / span * (H - 12); }),
          "class": "line", stroke: PALETTE[j % PALETTE.length] }, box);
      });
    });
    var legend = el("div", "legend", null, root);
    names.forEach(function (name, j) {
      var item = el("span", null, null, legend);
      el("i", null, null, item).style.background = PALETTE[j % PALETTE.length];
      item.appendChild(document.createTextNode(name));
    });
  }

  // One chart per series for the chosen unit: its line over a heat strip of its colours.
  function drawSeries() {
    var root = byId("series"), H = 64, STRIP = 12, top = H - STRIP - 4;
    root.textContent = "";
    cursors.length = 1;  // keep the timeline's cursor
    layer().series.forEach(function (s) {
      var values = s.values.map(function (row) { return row[state.unit]; });
      var lo = s.scale === "gate" ? 0 : -s.limit, hi = s.scale === "gate" ? 1 : s.limit;
      el("h3", null, s.name + (s.scale === "gate" ? "  (0 to 1)" : "  (\\u00b1" + fmt(s.limit) + ")"), root);
      chart(root, H, function (box) {
        var yOf = function (v) { return 3 + (1 - (clamp(v, lo, hi) - lo) / (hi - lo)) * (top - 6); };
        if (s.scale !== "gate") { svg("line", { x1: 0, x2: W, y1: yOf(0), y2: yOf(0), "class": "zero" }, box); }
        var cellWidth = T > 1 ? (W - 2 * PAD) / (T - 1) : W - 2 * PAD;
        values.forEach(function (v, t) {
          svg("rect", { x: xOf(t) - cellWidth / 2, y: H - STRIP - 1, width: cellWidth + 0.5, height: STRIP,
            fill: colour(s.scale, s.limit, v) }, box);
        });
        svg("path", { d: path(values, yOf), "class": "line", stroke: "#343a40" }, box);
      });
    });
  }

  // The grid of every unit (columns) of every series (rows) at the chosen step; a click chooses the unit.
  function drawGrid() {
    var root = byId("grid"), units = layer().units;
    root.textContent = "";
    cells = [];
    var grid = el("div", "grid", null, root);
    grid.style.gridTemplateColumns = "minmax(6em, 12em) repeat(" + units + ", 12px)";
    el("div", "label", "unit", grid);
    for (var u = 0; u < units; u++) { el("div", "head", u % 5 === 0 ? String(u) : "", grid); }
    layer().series.forEach(function (s) {
      el("div", "label", s.name, grid).title = s.name;
      var row = [];
      for (var k = 0; k < units; k++) {
        var cell = el("div", "cell", null, grid);
        cell.addEventListener("click", setUnit.bind(null, k));
        row.push(cell);
      }
      cells.push(row);
    });
  }

  function table(root, rows) {
    root.textContent = "";
    var body = el("tbody", null, null, el("table", "vals", null, root));
    rows.forEach(function (r) {
      var tr = el("tr", null, null, body);
      el("td", "name", r.name, tr);
      el("td", "num", fmt(r.value), tr);
      bar(el("td", null, null, tr), r.scale, r.limit, r.value);
    });
  }

  function renderStep() {
    var t = state.step, L = layer();
    byId("step-label").textContent = String(t);
    byId("step-time").textContent = data.labels ? data.labels[t] : "";
    stepInput.value = String(t);
    byId("step-marker").textContent = marked[t] ? "\\u25cf marked step" : "";
    document.body.classList.toggle("marked", !!marked[t]);
    cursors.forEach(function (c) {
      c.setAttribute("x1", xOf(t)); c.setAttribute("x2", xOf(t));
      c.setAttribute("class", marked[t] ? "cursor marked" : "cursor");
    });
    var row = data.inputs.values[t];
    table(byId("inputs"), data.inputs.names.map(function (name, j) {
      var largest = 0;
      data.inputs.values.forEach(function (r) { if (r[j] !== null) { largest = Math.max(largest, Math.abs(r[j])); } });
      return { name: name, value: row[j], scale: "signed", limit: largest || 1 };
    }));
    var values = byId("values");
    table(values, L.series.map(function (s) {
      return { name: s.name, value: s.values[t][state.unit], scale: s.scale, limit: s.limit };
    }));
    var caption = el("p", "caption", L.title + (L.kind ? " (" + L.kind + ")" : "") + ", unit " + state.unit +
      " of " + L.units + ", step " + t, null);
    values.insertBefore(caption, values.firstChild);
    L.series.forEach(function (s, i) {
      cells[i].forEach(function (cell, u) {
        var v = s.values[t][u];
        cell.style.background = colour(s.scale, s.limit, v);
        cell.title = s.name + ", unit " + u + ": " + fmt(v);
        cell.className = u === state.unit ? "cell chosen" : "cell";
      });
    });
  }
  function renderUnit() {
    byId("unit-label").textContent = String(state.unit);
    unitInput.value = String(state.unit);
    drawSeries();
    renderStep();
  }
  function renderLayer() {
    unitInput.max = String(layer().units - 1);
    state.unit = clamp(state.unit, 0, layer().units - 1);
    drawGrid();
    renderUnit();
  }

  function setStep(t) {
    t = clamp(Math.round(Number(t)) || 0, 0, T - 1);
    if (t !== state.step || String(t) !== stepInput.value) { state.step = t; renderStep(); }
  }
  function setUnit(u) {
    u = clamp(Math.round(Number(u)) || 0, 0, layer().units - 1);
    if (u !== state.unit || String(u) !== unitInput.value) { state.unit = u; renderUnit(); }
  }
  function setLayer(i) {
    state.layer = clamp(Number(i) || 0, 0, data.layers.length - 1);
    renderLayer();
  }
  function jumpMark(direction) {
    var ahead = data.markers.filter(function (t) { return direction > 0 ? t > state.step : t < state.step; });
    if (ahead.length) { setStep(direction > 0 ? ahead[0] : ahead[ahead.length - 1]); }
  }

  stepInput.addEventListener("input", function () { setStep(stepInput.value); });
  stepInput.addEventListener("change", function () { setStep(stepInput.value); });
  unitInput.addEventListener("input", function () { setUnit(unitInput.value); });
  unitInput.addEventListener("change", function () { setUnit(unitInput.value); });
  if (layerSelect) { layerSelect.addEventListener("change", function () { setLayer(layerSelect.value); }); }
  byId("prev-mark").addEventListener("click", function () { jumpMark(-1); });
  byId("next-mark").addEventListener("click", function () { jumpMark(1); });
  byId("prev-mark").disabled = byId("next-mark").disabled = !data.markers.length;
  document.addEventListener("keydown", function (event) {
    var tag = event.target && event.target.tagName;
    if (tag === "SELECT" || tag === "TEXTAREA" || event.altKey || event.ctrlKey || event.metaKey) { return; }
    var moves = {
      ArrowLeft: function () { setStep(state.step - 1); }, ArrowRight: function () { setStep(state.step + 1); },
      Home: function () { setStep(0); }, End: function () { setStep(T - 1); },
      ArrowDown: function () { setUnit(state.unit - 1); }, ArrowUp: function () { setUnit(state.unit + 1); },
      PageDown: function () { jumpMark(1); }, PageUp: function () { jumpMark(-1); }
    };
    if (moves[event.key]) { event.preventDefault(); moves[event.key](); }
  });

  drawTimeline();
  renderLayer();
})();
"""
