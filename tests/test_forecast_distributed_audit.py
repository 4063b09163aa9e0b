"""Audit of graphdl.models.forecast and graphdl.distributed: bad input named, references matched, state restored."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error

from graphdl.distributed import env_world_size, is_distributed, spawn
from graphdl.errors import ConfigError, ValidationError
from graphdl.models.forecast import (
    ChainForecaster,
    forecast_errors,
    make_forecast_data,
    predict_split,
    seasonal_naive,
)


def _series(n: int = 200) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return 300 + 0.05 * t + np.sin(2 * math.pi * t / 4)


SMALL = {"input_len": 8, "horizon": 3, "test_len": 12, "val_len": 6, "season": 4}


# ---------------------------------------------------------------------------- make_forecast_data
@pytest.mark.parametrize("kwargs, message", [
    ({"input_len": 0}, "input_len must be >= 1, got 0"),  # was: origin -1, the last (test) value leaked in
    ({"horizon": 0}, "horizon must be >= 1, got 0"),  # was: windows with empty targets
    ({"test_len": 2}, "test_len=2 holds no whole forecast of horizon=3"),  # was: an empty test split
    ({"val_len": 2}, "val_len=2 holds no whole forecast of horizon=3"),
])
def test_make_forecast_data_names_bad_lengths(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        make_forecast_data(_series(), **{**SMALL, **kwargs})


def test_make_forecast_data_names_bad_series_and_months():
    series = _series()
    series[50] = np.nan  # was: a NaN scale, every feature NaN, no error
    with pytest.raises(ValidationError, match="series holds 1 NaN/inf values"):
        make_forecast_data(series, **SMALL)
    with pytest.raises(ValidationError, match=r"series must be 1D .* got shape \(200, 1\)"):
        make_forecast_data(_series()[:, None], **SMALL)
    with pytest.raises(ValidationError, match=r"months has shape \(199,\) but series has \(200,\)"):
        make_forecast_data(_series(), months=np.arange(199) % 12 + 1, **SMALL)


def test_season_encoding_is_circular_without_months():
    """Without calendar months the (sin, cos) pair turns by 2*pi/season each step, also from the season's last
    step to the next season's first (before, month/12 for months 1..season jumped back by 3 * 30 degrees)."""
    data = make_forecast_data(_series(), **SMALL)
    x = data.graphs[0].x.double()
    angle = torch.atan2(x[:, 1], x[:, 2])
    step = torch.remainder(angle.diff(), 2 * math.pi)
    torch.testing.assert_close(step, torch.full_like(step, 2 * math.pi / SMALL["season"]))
    # calendar months keep the 2*pi*month/12 encoding
    months = (np.arange(200) + 2) % 12 + 1
    data = make_forecast_data(_series(), months=months, **SMALL)
    t = data.origins[0]
    want = 2 * math.pi * months[t - SMALL["input_len"] + 1:t + 1] / 12
    torch.testing.assert_close(data.graphs[0].x[:, 1].double(), torch.from_numpy(np.sin(want)), atol=1e-6, rtol=0)
    torch.testing.assert_close(data.graphs[0].x[:, 2].double(), torch.from_numpy(np.cos(want)), atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------- seasonal_naive, forecast_errors
def test_seasonal_naive_refuses_origins_before_a_full_season():
    series = _series(40)
    # was: series[5 + 1 - 12] = series[-6], a value from the end of the series, silently
    with pytest.raises(ValidationError, match=r"origin 5 has no full season of 12 values .* \[11, 39\]"):
        seasonal_naive(series, np.array([20, 5]), 3, season=12)
    with pytest.raises(ValidationError, match=r"origin 40 has no full season"):
        seasonal_naive(series, np.array([40]), 3, season=12)
    out = seasonal_naive(series, np.array([11, 39]), 13, season=12)  # the earliest and latest origins
    want = [[series[t + h - 12 * math.ceil(h / 12)] for h in range(1, 14)] for t in (11, 39)]
    np.testing.assert_array_equal(out, np.array(want))


def test_forecast_errors_match_sklearn_and_refuse_broadcasting():
    gen = np.random.default_rng(0)
    pred, true = gen.normal(size=(7, 3)), gen.normal(size=(7, 3))
    got = forecast_errors(pred, true)
    assert got["mae"] == pytest.approx(mean_absolute_error(true.ravel(), pred.ravel()), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(true.ravel(), pred.ravel())), rel=1e-12)
    with pytest.raises(ValidationError, match=r"pred has shape \(7, 3\) but true has \(7, 1\)"):
        forecast_errors(pred, true[:, :1])  # was: broadcast, every forecast scored against the first step


# ---------------------------------------------------------------------------- predict_split
def test_predict_split_follows_the_model_dtype_and_restores_training_mode():
    data = make_forecast_data(_series(), **SMALL)
    torch.manual_seed(0)
    model = ChainForecaster(3, SMALL["horizon"], 8, num_layers=2, dropout=0.5).double()
    model.train()
    got = predict_split(model, data, "test")  # was: a dtype error (float32 batches into float64 weights)
    assert model.training  # was: left in eval mode
    idx = data.splits["test"]
    x = torch.stack([data.graphs[int(i)].x for i in idx]).double()
    model.eval()
    with torch.no_grad():
        scaled = model(x).numpy()
    want = data.series[data.origins[idx.numpy()]][:, None] + data.scale * scaled
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(data.targets("test"), np.stack([data.series[t + 1:t + 4]
                                                                for t in data.origins[idx.numpy()]]))


# ---------------------------------------------------------------------------- distributed
@pytest.mark.parametrize("value, expected", [(None, 1), ("", 1), ("3", 3), (" 2 ", 2)])
def test_env_world_size_reads_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("WORLD_SIZE", value)
    assert env_world_size() == expected


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_env_world_size_refuses_a_broken_value(monkeypatch, value):
    """Was: 1, so every process of a broken launch trained alone (and wrote files as rank 0)."""
    monkeypatch.setenv("WORLD_SIZE", value)
    with pytest.raises(ConfigError, match=f"WORLD_SIZE={value!r} is not a whole number >= 1"):
        env_world_size()


def _group_info(rank, world_size):
    import torch.distributed as dist

    return rank, world_size, is_distributed(), dist.get_backend()


def test_spawn_one_process_is_a_group_of_one_and_zero_is_refused():
    # was: nprocs=1 failed inside torch ("Default process group has not been initialized")
    assert spawn(_group_info, 1, backend="gloo", threads=1) == [(0, 1, True, "gloo")]
    with pytest.raises(ConfigError, match="nprocs must be a whole number >= 1, got 0"):
        spawn(_group_info, 0)  # was: [] without starting anything
    with pytest.raises(ConfigError, match="threads must be a whole number >= 1 or None, got 0"):
        spawn(_group_info, 1, threads=0)
