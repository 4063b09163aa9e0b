"""The chain-graph forecaster: data splits without leakage, both paths equal, beats seasonal naive."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

import graphdl.models.forecast  # noqa: F401  (registers chain_forecaster until the package imports it)
from graphdl.errors import ValidationError
from graphdl.models import MODELS
from graphdl.models.forecast import (
    ChainForecaster,
    co2_monthly,
    fit_forecaster,
    make_forecast_data,
    seasonal_naive,
)


@pytest.fixture(scope="module")
def co2():
    return make_forecast_data(*co2_monthly())


def test_windows_and_splits(co2):
    series, months = co2_monthly()
    assert series.shape == (526,) and not np.isnan(series).any() and months[0] == 3
    n, tail = len(series), 120
    for split, lo, hi in (("train", 0, n - tail - 48), ("val", n - tail - 48, n - tail), ("test", n - tail, n)):
        origins = co2.origins[co2.splits[split].numpy()]
        assert len(origins) > 0
        assert (origins + 1 >= lo).all() and (origins + co2.horizon < hi).all()  # targets inside the period
    g = co2.graphs[0]
    assert g.x.shape == (48, 3) and g.y.shape == (1, 12) and g.edge_index.shape == (2, 47)
    # inputs end at the origin: the last relative value is 0
    assert float(g.x[-1, 0]) == 0.0
    naive = seasonal_naive(series, np.array([100]), 14)
    assert naive[0, 0] == series[89] and naive[0, 11] == series[100] and naive[0, 12] == series[89]


def test_both_paths_equal_and_registry(co2):
    torch.manual_seed(0)
    model = MODELS.create("chain_forecaster", in_channels=3, out_channels=12, hidden_channels=8)
    assert isinstance(model, ChainForecaster)
    batch = next(iter(DataLoader(co2.graphs[:5], batch_size=5)))
    dense = model(batch.x, batch.edge_index, batch.batch, method="dense")
    mp = model(batch.x, batch.edge_index, batch.batch, method="message_passing")
    torch.testing.assert_close(mp, dense, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(batch.x.view(5, 48, 3)), dense, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValidationError, match="cell must be"):
        ChainForecaster(cell="rnn")


def test_beats_seasonal_naive_on_held_out_tail(co2):
    """A short training run through the Trainer already beats seasonal naive on the tail (the
    benchmark trains longer over 5 seeds)."""
    out = fit_forecaster(seed=0, epochs=20, data=co2, hidden_channels=32)
    assert len(out["result"].history) == 20
    assert out["model_errors"]["mae"] < out["naive_errors"]["mae"]
    assert out["model_errors"]["rmse"] < out["naive_errors"]["rmse"]


def test_too_short_series():
    with pytest.raises(ValidationError, match="too short"):
        make_forecast_data(np.arange(100.0))
