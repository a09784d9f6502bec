"""The run configuration: one typed schema, its JSON round trip, the key checks, the upgrade of older runs, and the
range rules shared by the library and the command line."""

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlstm.config import (
    BUNDLED_CSV,
    TUTORIAL_ROWS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    preset,
)
from jaxlstm.errors import ConfigError, RunError

VERSION_1 = {  # a config.json as jaxlstm wrote it before the schema had a version (copied from such a run)
    "model": {
        "arch": "vanilla",
        "layers": 1,
        "units": 4,
        "dropout": 0.2,
        "n_features": 1,
        "subsequence_length": 15,
        "kernel_size": 3,
    },
    "train": {
        "epochs": 2,
        "batch_size": 32,
        "learning_rate": 0.001,
        "adam_epsilon": 1e-07,
        "seed": 0,
        "validation_split": 0.0,
        "patience": None,
        "clip_norm": None,
        "optimizer": "adam",
        "shuffle": True,
        "devices": 2,
    },
    "data": {
        "csv": "/tmp/prices.csv",
        "start": "2020-01-01",
        "end": "2020-02-25",
        "features": ["Open"],
        "target": "Open",
        "window": 5,
        "split": 30,
        "missing": "error",
        "sha256": "ab" * 32,
    },
}


def test_the_tutorial_defaults() -> None:
    data, model, train = DataConfig(), preset("stacked"), TrainConfig()
    assert (data.path, data.rows_kept(), data.window, data.split, data.features) == (
        BUNDLED_CSV,
        TUTORIAL_ROWS,
        60,
        172,
        ("Open",),
    )
    assert (model.layers, model.units, model.dropout) == (4, 50, 0.2)
    assert (train.epochs, train.batch_size, train.learning_rate, train.adam_epsilon) == (100, 32, 1e-3, 1e-7)
    assert DataConfig(csv="x.csv").rows_kept() is None and DataConfig(start="2020-01-01").rows_kept() is None


configs = st.builds(
    RunConfig,
    data=st.builds(
        DataConfig,
        csv=st.none() | st.just(Path("/data/x.csv")),
        start=st.none() | st.just("2020-04-01"),
        last_rows=st.none() | st.integers(61, 5000),
        features=st.sampled_from([("Open",), ("Open", "Close")]),
        window=st.integers(1, 90),
        split=st.integers(100, 500) | st.floats(0.05, 0.95),
        missing=st.sampled_from(["error", "drop", "ffill"]),
    ),
    model=st.builds(
        preset,
        st.sampled_from(["vanilla", "stacked", "bidirectional"]),
        units=st.integers(1, 300),
        dropout=st.floats(0.0, 0.9),
        implementation=st.sampled_from(["fused", "textbook"]),
        unroll=st.integers(1, 4),
    ),
    train=st.none()
    | st.builds(
        TrainConfig, epochs=st.integers(1, 500), seed=st.integers(0, 2**32 - 1), clip_norm=st.none() | st.floats(0.1, 5)
    ),
)


@given(configs)
@settings(max_examples=40, deadline=None)
def test_json_round_trip(config: RunConfig) -> None:
    """Through real JSON text: every field comes back with its type (paths, tuples, int or float splits)."""
    text = json.dumps(config.to_dict())
    assert RunConfig.from_dict(json.loads(text), source="config.json") == config


def test_a_version_1_config_is_upgraded_with_the_defaults_those_runs_used() -> None:
    config = RunConfig.from_dict(VERSION_1, source="run/config.json")
    assert config.model == preset("vanilla", units=4)
    assert config.model.implementation == "fused" and config.model.convolution == "gemm"
    assert config.data.csv == Path("/tmp/prices.csv") and config.data.sha256 == "ab" * 32
    assert config.train == TrainConfig(epochs=2, devices=2)
    assert config.to_dict()["version"] == 5 and config.model.cell == "lstm"


def test_a_version_2_config_forecasts_one_day() -> None:
    """Version 2 had no horizon: its runs forecast one day with a Dense(1) head."""
    content = RunConfig.from_dict(VERSION_1, source="x").to_dict()
    for section, name in (("data", "horizon"), ("data", "strategy"), ("model", "outputs")):
        del content[section][name]
    config = RunConfig.from_dict({**content, "version": 2}, source="run/config.json")
    assert (config.data.horizon, config.data.strategy, config.model.outputs) == (1, "direct", 1)
    assert config.model.precision == "float32"


def test_a_version_3_config_computes_in_float32() -> None:
    content = RunConfig.from_dict(VERSION_1, source="x").to_dict()
    del content["model"]["precision"]
    config = RunConfig.from_dict({**content, "version": 3}, source="run/config.json")
    assert config.model.precision == "float32"


def test_a_version_4_config_has_lstm_cells() -> None:
    content = RunConfig.from_dict(VERSION_1, source="x").to_dict()
    del content["model"]["cell"]
    config = RunConfig.from_dict({**content, "version": 4}, source="run/config.json")
    assert config.model.cell == "lstm"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["model"].update(colour="red"), "run/config.json: unknown key 'model.colour'"),
        (lambda c: c["data"].pop("window"), "run/config.json: missing key 'data.window'"),
        (lambda c: c.pop("train"), "run/config.json: missing key 'train'"),
        (lambda c: c.update(notes="x"), "run/config.json: unknown key 'notes'"),
        (lambda c: c.update(version=9), "run/config.json: configuration version 9; this jaxlstm reads versions 1 to 5"),
        (lambda c: c["train"].update(epochs=0), "run/config.json: 'train': --epochs 0: must be a whole number >= 1"),
        (lambda c: c.update(model=[1]), "run/config.json: 'model' must be a JSON object"),
    ],
)
def test_a_bad_config_names_the_file_and_the_key(edit, message: str) -> None:
    content = RunConfig.from_dict(VERSION_1, source="x").to_dict()
    edit(content)
    with pytest.raises(RunError) as error:
        RunConfig.from_dict(content, source="run/config.json")
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (DataConfig, {"window": 0}, "--window 0: must be a whole number >= 1, e.g. --window 60"),
        (DataConfig, {"last_rows": -2}, "--last-rows -2: must be a whole number >= 1"),
        (DataConfig, {"features": ()}, "--features names no column"),
        (DataConfig, {"missing": "skip"}, "--missing 'skip': unknown missing; use one of error, drop, ffill"),
        (DataConfig, {"split": 1.5}, "split=1.5 as a fraction must lie in (0, 1)"),
        (DataConfig, {"csv": 3}, "--csv 3: must be a file path"),
        (ModelConfig, {"unroll": 0}, "--unroll 0: must be a whole number >= 1"),
        (ModelConfig, {"implementation": "cudnn"}, "--implementation 'cudnn': unknown implementation"),
        (ModelConfig, {"hoist_input": "yes"}, "--hoist-input 'yes': must be true or false"),
        (TrainConfig, {"learning_rate": float("inf")}, "--lr inf: must be a finite number > 0, e.g. --lr 0.001"),
        (TrainConfig, {"seed": 2**32}, "--seed 4294967296: must be a whole number from 0 to 4294967295"),
        (TrainConfig, {"devices": 0}, "--devices 0: must be a whole number >= 1"),
        (TrainConfig, {"batch_size": 2.0}, "--batch-size 2.0: must be a whole number >= 1"),
    ],
)
def test_range_rules_name_the_flag(cls: type, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        cls(**kwargs)
    assert message in str(error.value)


def test_every_field_has_a_rule_or_choices_and_help() -> None:
    """The command line is generated from these fields: each needs help text and a check."""
    for cls in (DataConfig, ModelConfig, TrainConfig):
        for item in dataclasses.fields(cls):
            meta = item.metadata
            assert meta.get("cli") is False or meta["help"], (cls.__name__, item.name)
            checked = meta.get("rule") or meta.get("choices") or item.name in ("csv", "features", "split", "sha256")
            assert checked, (cls.__name__, item.name)
