"""An ensemble trained in one vmapped program equals the same models trained one by one with fit."""

import jax
import numpy as np
import pytest
from flax import nnx

from jaxlstm.config import TrainConfig, preset
from jaxlstm.data import load_prices, prepare
from jaxlstm.errors import ConfigError, TrainingError
from jaxlstm.nn.models import Forecaster
from jaxlstm.training.ensemble import _initial_models, fit_ensemble, model_layout
from jaxlstm.training.single import fit
from tests.conftest import BUNDLED


def test_each_member_equals_its_own_fit() -> None:
    """The ensemble gathers its windows from the series they view; each `fit` alone is given a copy of them."""
    dataset = prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-150:], split=110, window=20)
    model_config = preset("stacked", layers=2, units=6)
    seeds = [3, 5]
    ensemble = fit_ensemble(model_config, dataset.x_train, dataset.y_train, TrainConfig(epochs=3), seeds)
    assert ensemble.losses.shape == (3, 2)
    assert 0 < ensemble.first_epoch_seconds < ensemble.train_seconds  # the first of the 3 epochs, part of them
    for seed, member, member_losses in zip(seeds, ensemble.models, ensemble.losses.T, strict=True):
        alone = Forecaster(model_config, rngs=nnx.Rngs(seed))
        history = fit(
            alone,
            np.array(dataset.x_train),
            dataset.y_train,
            TrainConfig(epochs=3, seed=seed, devices=1),
            progress=False,
        )
        np.testing.assert_allclose(member_losses, history.loss, rtol=1e-5)
        for a, b in zip(jax.tree.leaves(nnx.state(member)), jax.tree.leaves(nnx.state(alone)), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    "architecture",
    ["vanilla", *(pytest.param(arch, marks=pytest.mark.slow) for arch in ("stacked", "bidirectional", "conv"))],
)
def test_the_models_start_bit_for_bit_as_each_seeds_own_model(architecture: str) -> None:
    """The ensemble builds every model's initial weights with one compiled construction; each must be exactly the
    model that `Forecaster(config, rngs=nnx.Rngs(seed))` builds eagerly (glorot, orthogonal and bias initialisers)."""
    model_config = preset(architecture, units=6)
    seeds = [0, 7, 123456]
    graphdef, params, rest = _initial_models(lambda rngs: Forecaster(model_config, rngs=rngs), seeds)
    for k, seed in enumerate(seeds):
        member = nnx.merge(graphdef, *jax.tree.map(lambda leaf, k=k: leaf[k], (params, rest)))
        alone = nnx.state(Forecaster(model_config, rngs=nnx.Rngs(seed)))
        for a, b in zip(jax.tree.leaves(nnx.state(member)), jax.tree.leaves(alone), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_models_are_spread_over_the_devices_the_same_number_on_each() -> None:
    available = len(jax.local_devices())
    n_models = 2 * available + 1
    layout = model_layout(n_models, models_at_once=2)
    devices, per_device = layout.grid
    assert devices == available and layout.slots == devices * per_device
    assert (per_device - 1) * devices < n_models <= per_device * devices  # the fewest repeats that fill them
    assert dict(layout.mesh.shape) == {"models": available, "batch": 1}
    assert model_layout(1).grid == (1, 1)  # never more devices than models
    assert model_layout(5, models_at_once=9).at_once == model_layout(5).grid[1]  # at most a device's models
    with pytest.raises(ConfigError, match="models_at_once=0: train at least 1 model at a time"):
        model_layout(5, models_at_once=0)


@pytest.mark.slow
def test_an_odd_ensemble_in_either_layout_equals_each_models_own_fit() -> None:
    """Three models on two devices (the last repeated to fill the grid), one after another or side by side: each
    model's losses are those of `fit` of its seed alone."""
    dataset = prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-100:], split=70, window=10)
    model_config = preset("vanilla", units=5)
    seeds = [0, 1, 2]
    alone = []
    for seed in seeds:
        config = TrainConfig(epochs=2, seed=seed, devices=1)
        model = Forecaster(model_config, rngs=nnx.Rngs(seed))
        history = fit(model, dataset.x_train, dataset.y_train, config, progress=False)
        alone.append(history.loss)
    for at_once in (1, 3):
        ensemble = fit_ensemble(
            model_config, dataset.x_train, dataset.y_train, TrainConfig(epochs=2), seeds, models_at_once=at_once
        )
        np.testing.assert_allclose(ensemble.losses, np.transpose(alone), rtol=1e-5)


def test_a_diverging_ensemble_stops_naming_its_models() -> None:
    dataset = prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-100:], split=70, window=10)
    config = TrainConfig(epochs=3, learning_rate=1e38)  # Adam steps of 1e38: the weights overflow in epoch 1
    with pytest.raises(TrainingError, match=r"loss of model\(s\) 0 \(seed 4\), 1 \(seed 5\) became inf at epoch 1"):
        fit_ensemble(preset("vanilla", units=3), dataset.x_train, dataset.y_train, config, [4, 5])
