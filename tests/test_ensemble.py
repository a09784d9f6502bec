"""An ensemble trained in one vmapped program equals the same models trained one by one with fit."""

import jax
import numpy as np
from flax import nnx

from jaxlstm.config import TrainConfig, preset
from jaxlstm.data import load_prices, prepare
from jaxlstm.ensemble import fit_ensemble, model_mesh
from jaxlstm.models import Forecaster
from jaxlstm.train import fit
from tests.conftest import BUNDLED


def test_each_member_equals_its_own_fit() -> None:
    dataset = prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-150:], split=110, window=20)
    model_config = preset("stacked", layers=2, units=6)
    seeds = [3, 5]
    ensemble = fit_ensemble(model_config, dataset.x_train, dataset.y_train, TrainConfig(epochs=3), seeds)
    assert ensemble.losses.shape == (3, 2)
    for seed, member, member_losses in zip(seeds, ensemble.models, ensemble.losses.T, strict=True):
        alone = Forecaster(model_config, rngs=nnx.Rngs(seed))
        history = fit(
            alone, dataset.x_train, dataset.y_train, TrainConfig(epochs=3, seed=seed, devices=1), progress=False
        )
        np.testing.assert_allclose(member_losses, history.loss, rtol=1e-5)
        for a, b in zip(jax.tree.leaves(nnx.state(member)), jax.tree.leaves(nnx.state(alone)), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_models_are_split_evenly_over_the_devices() -> None:
    available = len(jax.local_devices())
    assert dict(model_mesh(2 * available).shape) == {"models": available, "batch": 1}
    assert dict(model_mesh(1).shape) == {"models": 1, "batch": 1}
    assert model_mesh(3).shape["models"] == (3 if available >= 3 else 1)  # never an uneven split
