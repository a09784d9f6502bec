"""What a fixed seed trains to, against the values jaxlstm gave before its restructuring into subpackages (commit
c443882, JAX 0.10.2, recorded by this file's ``record`` below on the 2-core dev machine): the training loop, the
shuffle and the compiled epoch changed their homes, not their results. ``benchmarks/programs.py`` shows the same
bit for bit, and the optimised programs unchanged; here a tolerance leaves room for another JAX's rounding.

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
    "vanilla/fit/loss": [0.26977840065956116, 0.2146824151277542, 0.18075500428676605],
    "vanilla/fit/forecast": [0.22598204016685486, 0.2236066311597824, 0.22770972549915314, 0.22276727855205536],
    "vanilla/masked/loss": [
        [0.26302728056907654, 0.586021363735199],
        [0.21527399122714996, 0.6015374064445496],
        [0.17748501896858215, 0.5819237232208252],
    ],
    "vanilla/masked/forecast": [-0.13167592883110046, -0.12826842069625854, -0.12867724895477295, -0.12414997071027756],
    "stacked/fit/loss": [0.2805739641189575, 0.21269918978214264, 0.14845070242881775],
    "stacked/fit/forecast": [0.3035052716732025, 0.3046643137931824, 0.30578333139419556, 0.30698198080062866],
    "stacked/masked/loss": [
        [0.2879785895347595, 0.29220813512802124],
        [0.2195190191268921, 0.25104910135269165],
        [0.15803535282611847, 0.22469258308410645],
    ],
    "stacked/masked/forecast": [0.16577431559562683, 0.16811591386795044, 0.17051386833190918, 0.17272764444351196],
}
"""Losses per epoch and the first 4 test forecasts (scaled), at commit c443882."""

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
def test_a_fixed_seed_trains_to_what_it_trained_to_before_the_restructuring(arch: str) -> None:
    for name, values in record(arch).items():
        np.testing.assert_allclose(values, RECORDED[name], rtol=1e-4, atol=1e-6, err_msg=name)
