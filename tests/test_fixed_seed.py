"""What a fixed seed trains to, against recorded values (JAX 0.10.2, recorded by this file's ``record`` below on the
2-core dev machine), so that a change of results is always a decision and never an accident. First recorded at
commit c443882, before the restructuring into subpackages (the loop, the shuffle and the compiled epoch changed
their homes, not their results; ``benchmarks/programs.py`` showed the same bit for bit); recorded again for issue
23, when every dropout mask came to be drawn per sample (:func:`jaxlstm.nn.layers.row_keys`) so that a seed trains
the same model on any number of devices: since then ``fit`` split over two devices and the ensemble's first model
(the same seed on one) give the same losses. A tolerance leaves room for another JAX's rounding.

Each case trains 3 epochs on the tutorial's windows (bundled GOOG, last 230 rows): ``fit`` of one model (batches
split over the cores), and ``fit_ensemble`` of two models with data of their own (112 and 90 windows, masked), the
backtest's path.
"""

import numpy as np
import pytest
from flax import nnx

from jaxlstm import Forecaster, TrainConfig, fit, fit_ensemble, load_prices, prepare, preset
from jaxlstm.data import window_series, window_view
from tests.conftest import BUNDLED

RECORDED = {
    "vanilla/fit/loss": [0.23456795513629913, 0.2300608903169632, 0.1696082502603531],
    "vanilla/fit/forecast": [0.22654539346694946, 0.22417914867401123, 0.22828489542007446, 0.22335243225097656],
    "vanilla/masked/loss": [
        [0.23456795513629913, 0.5972447991371155],
        [0.2300608903169632, 0.5876123905181885],
        [0.1696082204580307, 0.5459375977516174],
    ],
    "vanilla/masked/forecast": [-0.13219858705997467, -0.1288030743598938, -0.12922237813472748, -0.12471090257167816],
    "stacked/fit/loss": [0.29000163078308105, 0.21108804643154144, 0.14577239751815796],
    "stacked/fit/forecast": [0.3061353266239166, 0.30740222334861755, 0.30862629413604736, 0.30989912152290344],
    "stacked/masked/loss": [
        [0.2900015711784363, 0.287980318069458],
        [0.21108803153038025, 0.2572462856769562],
        [0.14577241241931915, 0.21533243358135223],
    ],
    "stacked/masked/forecast": [0.16715988516807556, 0.16951590776443481, 0.17192977666854858, 0.17415878176689148],
}
"""Losses per epoch and the first 4 test forecasts (scaled), since issue 23's per-sample dropout masks."""

PRESETS = {"vanilla": {"units": 8}, "stacked": {"units": 8, "layers": 2}}


def record(arch: str) -> dict[str, list]:
    """What :data:`RECORDED` holds for ``arch``, from the code under test."""
    dataset = prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-230:], split=172)
    config = preset(arch, **PRESETS[arch])
    model = Forecaster(config, rngs=nnx.Rngs(3))
    history = fit(model, dataset.x_train, dataset.y_train, TrainConfig(epochs=3, seed=3), progress=False)
    series = np.stack([window_series(dataset.x_train)] * 2)
    ensemble = fit_ensemble(
        config,
        window_view(series, dataset.window),
        np.stack([dataset.y_train] * 2),
        TrainConfig(epochs=3),
        seeds=[3, 4],
        n_valid=[112, 90],
    )
    return {
        f"{arch}/fit/loss": history.loss,
        f"{arch}/fit/forecast": np.asarray(model(dataset.x_test[:4])).tolist(),
        f"{arch}/masked/loss": ensemble.losses.tolist(),
        f"{arch}/masked/forecast": np.asarray(ensemble.models[1](dataset.x_test[:4])).tolist(),
    }


@pytest.mark.parametrize("arch", ["vanilla", pytest.param("stacked", marks=pytest.mark.slow)])
def test_a_fixed_seed_trains_to_its_recorded_values(arch: str) -> None:
    for name, values in record(arch).items():
        np.testing.assert_allclose(values, RECORDED[name], rtol=1e-4, atol=1e-6, err_msg=name)
