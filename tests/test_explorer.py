"""The gate explorer page (jaxlstm.introspect.explorer): its embedded data reads back as the arrays given, it needs no
network, user strings cannot break out of it, it stays small; and (slow tier) a headless Chromium loads it without a
JavaScript error, shows the first step and moves when the slider does."""

import json
import os
import shutil
import signal
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from flax import nnx

from jaxlstm.config import preset
from jaxlstm.introspect import GateTrace, trace_gates
from jaxlstm.introspect.explorer import ExplorerLayer, explorer_html, trace_layers
from jaxlstm.nn import Forecaster

STEPS, UNITS = 60, 50
LSTM_NAMES = ("input gate i", "forget gate f", "candidate g", "output gate o", "cell state c", "hidden state h")


class Page(HTMLParser):
    """The parts of a page the tests read: every start tag with its attributes, the scripts' text (by id), the text
    of elements by id, and whether the parser saw the end of the document."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: dict[str, str] = {"": ""}  # "": all text outside the scripts
        self.ended = False
        self._open: list[tuple[str, str | None]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in {"meta", "input", "br", "img", "link"}:
            self._open.append((tag, dict(attrs).get("id")))
            self.text.setdefault(dict(attrs).get("id") or "", "")
        if tag == "script":
            self.scripts.append((dict(attrs), ""))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass
        self.ended |= tag == "html"

    def handle_data(self, data):
        if self._open and self._open[-1][0] == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        else:
            self.text[""] += data
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] += data

    def data(self) -> dict:
        [text] = [text for attrs, text in self.scripts if attrs.get("id") == "explorer-data"]
        return json.loads(text)


def lstm_layer(rng: np.random.Generator, title: str, units: int = UNITS, steps: int = STEPS) -> ExplorerLayer:
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i, f, o = (sigmoid(rng.normal(size=(steps, units))) for _ in range(3))
    g = np.tanh(rng.normal(size=(steps, units)))
    c = np.cumsum(i * g, axis=0)
    h = o * np.tanh(c)
    return ExplorerLayer(title, "lstm", dict(zip(LSTM_NAMES, (i, f, g, o, c, h), strict=True)))


def window(rng: np.random.Generator, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """An adding-problem window: a value and a marker per step, two steps marked."""
    markers = np.zeros(steps, bool)
    markers[[3, steps // 2]] = True
    return np.stack([rng.uniform(size=steps), markers.astype(float)], axis=1), markers


def test_the_embedded_data_reads_back_as_the_arrays_given():
    rng = np.random.default_rng(0)
    inputs, markers = window(rng)
    lstm = lstm_layer(rng, "layer 0 forward", units=5)
    gru_series = {
        "update gate z": rng.uniform(size=(STEPS, 3)),
        "reset gate r": rng.uniform(size=(STEPS, 3)).tolist(),  # anything np.asarray reads
        "candidate": np.tanh(rng.normal(size=(STEPS, 3))) * 1e-3,
        "h": rng.normal(size=(STEPS, 3)) * 1e4,
    }
    gru_series["h"][7, 1] = np.nan
    gru = {"title": "layer 1 backward", "kind": "gru", "series": gru_series, "gates": ["update gate z"]}
    page = explorer_html(
        inputs,
        [lstm, gru],
        feature_names=["value", "marker"],
        markers=markers,
        title="adding problem",
        notes="window 3 of the test set",
        target=0.731234,
        prediction=0.70001,
    )
    parsed = Page(page)
    assert parsed.ended
    data = parsed.data()

    def close(read, given):
        read = np.array([[np.nan if v is None else v for v in row] for row in read], dtype=float)
        np.testing.assert_allclose(read, np.asarray(given, dtype=float), rtol=5e-4, atol=1e-300, equal_nan=True)

    assert data["steps"] == STEPS and data["markers"] == [3, STEPS // 2]
    assert data["inputs"]["names"] == ["value", "marker"]
    close(data["inputs"]["values"], inputs)
    assert data["target"] == 0.7312 and data["prediction"] == 0.7
    assert [(layer["title"], layer["kind"], layer["units"]) for layer in data["layers"]] == [
        ("layer 0 forward", "lstm", 5),
        ("layer 1 backward", "gru", 3),
    ]
    for layer, given in zip(data["layers"], (lstm.series, gru_series), strict=True):
        assert [s["name"] for s in layer["series"]] == list(given)  # the order given
        for s in layer["series"]:
            close(s["values"], given[s["name"]])
    scales = {s["name"]: (s["scale"], s["limit"]) for layer in data["layers"] for s in layer["series"]}
    # inferred from the values for the LSTM, taken from gates= for the GRU (its reset gate is in [0, 1] but not listed)
    assert [scales[name][0] for name in LSTM_NAMES] == ["gate", "gate", "signed", "gate", "signed", "signed"]
    assert scales["update gate z"] == ("gate", 1.0) and scales["reset gate r"][0] == "signed"
    assert scales["h"][1] == pytest.approx(np.nanmax(np.abs(gru_series["h"])), rel=5e-4)
    assert data["layers"][1]["series"][3]["values"][7][1] is None  # NaN is JSON null
    # the controls: a slider of the steps, of the units, a layer selector for the two layers
    inputs_by_id = {attrs.get("id"): attrs for tag, attrs in parsed.tags if tag in {"input", "select"}}
    assert inputs_by_id["step"]["type"] == "range" and inputs_by_id["step"]["max"] == str(STEPS - 1)
    assert inputs_by_id["unit"]["max"] == "4" and "layer" in inputs_by_id
    assert parsed.text["step-label"] == "0" and "values" in parsed.text
    header = " ".join(parsed.text[""].split())
    assert "target 0.7312 · prediction 0.7 · error -0.03123" in " ".join(Page(page).text.get("", "").split()) or (
        "error" in header
    )


def test_one_layer_has_no_layer_selector_and_shapes_are_checked():
    rng = np.random.default_rng(1)
    series = {"gate": rng.uniform(size=(6, 2)), "state": rng.normal(size=(6, 2))}
    page = explorer_html(rng.normal(size=6), [("only layer", "lstm", series)])
    assert not any(attrs.get("id") == "layer" for _, attrs in Page(page).tags)
    assert Page(page).data()["inputs"]["names"] == ["x0"]
    with pytest.raises(ValueError, match="5 time steps"):
        explorer_html(np.zeros((6, 1)), [("l", "lstm", {"gate": np.zeros((5, 2))})])
    with pytest.raises(ValueError, match="3 units"):
        explorer_html(np.zeros((6, 1)), [("l", "lstm", {"a": np.zeros((6, 2)), "b": np.zeros((6, 3))})])
    with pytest.raises(ValueError, match="markers"):
        explorer_html(np.zeros((6, 1)), [("l", "lstm", series)], markers=np.zeros(5, bool))
    with pytest.raises(ValueError, match="feature_names"):
        explorer_html(np.zeros((6, 1)), [("l", "lstm", series)], feature_names=["a", "b"])
    with pytest.raises(ValueError, match="no layer"):
        explorer_html(np.zeros((6, 1)), [])


def test_the_page_is_self_contained():
    rng = np.random.default_rng(2)
    inputs, markers = window(rng)
    page = explorer_html(inputs, [lstm_layer(rng, "layer 0 forward", units=4)], markers=markers)
    parsed = Page(page)
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "action", "data", "poster"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, name, value)
        assert tag not in {"link", "iframe", "img", "object", "embed"}, tag
    lowered = page.lower()
    for reference in ("https://", "@import", "url(", "fetch(", "xmlhttprequest", "import(", "<link"):
        assert reference not in lowered, reference
    # the one http:// is the SVG namespace name in the script (an identifier, never fetched)
    assert lowered.count("http://") == lowered.count('"http://www.w3.org/2000/svg"') == 1
    assert [attrs.get("src") for attrs, _ in parsed.scripts] == [None, None]  # both scripts inline


def test_user_strings_cannot_break_out_of_the_page():
    hostile = 'a </script><script>alert(1)</script> <!-- & "quoted" <b>bold</b>'
    series = {hostile: np.full((3, 2), 0.5), "h": np.zeros((3, 2))}
    layers = [(hostile, "<i>gru</i>", series), ("second <img src=x onerror=alert(2)>", "", series)]
    page = explorer_html(np.zeros((3, 1)), layers, feature_names=[hostile], title=hostile, notes=hostile)
    parsed = Page(page)
    assert parsed.ended
    assert len(parsed.scripts) == 2  # the data and the page's own script, nothing injected
    assert {tag for tag, _ in parsed.tags} <= {
        *("html", "head", "meta", "title", "style", "body", "header", "h1", "p", "b", "div", "label", "input"),
        *("output", "button", "span", "select", "option", "main", "section", "h2", "script"),
    }
    assert [attrs for tag, attrs in parsed.tags if tag == "b"] == []  # no <b> from the title (and no outcome line)
    assert parsed.text["explorer-data"] == parsed.scripts[0][1]
    assert hostile in parsed.text[""]  # the title and notes read as given, escaped
    [title] = [
        text
        for text in (
            parsed.text.get(
                "",
            ),
        )
        if text
    ]
    assert title
    data = parsed.data()
    assert data["title"] == data["notes"] == hostile and data["inputs"]["names"] == [hostile]
    assert data["layers"][0]["title"] == hostile and data["layers"][0]["series"][0]["name"] == hostile
    assert data["layers"][0]["kind"] == "<i>gru</i>"
    raw = page.split('id="explorer-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in raw and ">" not in raw and "&" not in raw
    options = [attrs for tag, attrs in parsed.tags if tag == "option"]
    assert len(options) == 2


def test_four_layers_of_fifty_units_over_sixty_steps_stay_well_under_two_megabytes():
    rng = np.random.default_rng(3)
    inputs, markers = window(rng)
    layers = [lstm_layer(rng, f"layer {k} forward") for k in range(4)]
    page = explorer_html(inputs, layers, markers=markers, title="4 x 50 x 60")
    size = len(page.encode())
    assert size < 1_000_000, size  # 72,000 values at 4 significant digits: about 0.6 MB
    assert Page(page).data()["layers"][3]["units"] == UNITS


def test_trace_layers_names_the_gates_of_each_layer_and_direction():
    rng = np.random.default_rng(4)
    gates = {field: rng.uniform(size=(2, 5, 3)) for field in ("input", "forget", "candidate", "output")}
    states = {field: rng.uniform(size=(2, 5, 3)) for field in ("c", "h")}
    traces = [GateTrace(0, direction, "lstm", gates, states) for direction in ("forward", "backward")]
    layers = trace_layers(traces, window=1)
    assert [layer.title for layer in layers] == ["layer 0 forward", "layer 0 backward"]
    assert list(layers[0].series) == list(LSTM_NAMES)
    np.testing.assert_array_equal(layers[1].series["forget gate f"], gates["forget"][1])
    data = Page(explorer_html(np.zeros((5, 1)), layers)).data()
    assert [s["scale"] for s in data["layers"][0]["series"]] == ["gate", "gate", "signed", "gate", "signed", "signed"]


def test_a_gru_models_trace_shows_its_own_gates():
    model = Forecaster(preset("stacked", layers=2, units=4, cell="gru"), rngs=nnx.Rngs(0))
    x = np.random.default_rng(5).uniform(size=(1, 9, 1)).astype(np.float32)
    layers = trace_layers(trace_gates(model, x))
    assert [(layer.kind, list(layer.series)) for layer in layers] == [
        ("gru", ["update gate z", "reset gate r", "candidate n", "hidden state h"])
    ] * 2
    data = Page(explorer_html(x[0], layers)).data()
    assert [s["scale"] for s in data["layers"][1]["series"]] == ["gate", "gate", "signed", "signed"]


# The slow tier: a real headless browser. ----------------------------------------------------------------------------

ERRORS = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message || e)); });
window.addEventListener("unhandledrejection", function (e) { window.__errors.push("rejection: " + e.reason); });
</script>"""

CHECKS = """<script>
window.addEventListener("load", function () {
  var out = { errors: window.__errors };
  function text(id) { var n = document.getElementById(id); return n ? n.textContent : null; }
  function slide(id, value) {
    var s = document.getElementById(id);
    s.value = String(value);
    s.dispatchEvent(new Event("input", { bubbles: true }));
  }
  try {
    out.first = text("step-label");
    out.values0 = text("values");
    out.marker0 = text("step-marker");
    slide("step", 3);
    out.moved = text("step-label");
    out.values3 = text("values");
    out.marker3 = text("step-marker");
    document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    out.key = text("step-label");
    slide("unit", 2);
    out.unit = text("unit-label");
    out.valuesUnit2 = text("values");
    var layer = document.getElementById("layer");
    layer.value = "1";
    layer.dispatchEvent(new Event("change", { bubbles: true }));
    out.unitMax = document.getElementById("unit").max;
    out.valuesLayer1 = text("values");
    out.cells = document.querySelectorAll("#grid .cell").length;
    out.charts = document.querySelectorAll("svg.chart").length;
  } catch (e) {
    out.errors.push("harness: " + e);
  }
  var pre = document.createElement("pre");
  pre.id = "harness-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_a_headless_browser_loads_the_page_and_follows_the_slider(tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    rng = np.random.default_rng(5)
    inputs, markers = window(rng, steps=12)
    layers = [lstm_layer(rng, "layer 0 forward", units=4, steps=12), lstm_layer(rng, "layer 1 forward", 6, 12)]
    page = explorer_html(inputs, layers, markers=markers, title="browser </script> test", target=1.0, prediction=0.9)
    # The checks run inside a copy of the page (no iframe: file:// pages are not same-origin): an error trap first in
    # <head>, the checks after the page's own script; --dump-dom prints the DOM once the page has loaded.
    harness = page.replace("<head>", "<head>" + ERRORS, 1).replace("</body>", CHECKS + "</body>", 1)
    (tmp_path / "explorer.html").write_text(harness, encoding="utf-8")
    command = [
        browser,
        "--headless=new",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        (tmp_path / "explorer.html").as_uri(),
    ]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the browser and the processes it started, in their own session
        process.communicate()
        pytest.fail("Chromium did not print the page within 60 s")
    if process.returncode != 0 and "snap" in stderr.lower():
        pytest.skip(f"{browser} is a wrapper of a snap that is not installed")
    assert process.returncode == 0, stderr[-2000:]
    found = Page(stdout).text.get("harness-result")
    assert found, f"no result in the dumped page; stderr: {stderr[-2000:]}"
    result = json.loads(found)
    assert result["errors"] == []
    assert result["first"] == "0" and result["values0"] and result["marker0"] == ""
    assert result["moved"] == "3" and result["values3"] != result["values0"]
    assert result["marker3"] != ""  # step 3 is a marked step
    assert result["key"] == "4"  # the right arrow
    assert result["unit"] == "2" and result["valuesUnit2"] != result["values3"]
    assert result["unitMax"] == "5" and result["valuesLayer1"] != result["valuesUnit2"]
    assert result["cells"] == 6 * 6 and result["charts"] == 1 + 6  # the grid of layer 1; the timeline and 6 series
