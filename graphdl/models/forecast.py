r"""Time-series forecasting with a recurrent network on chain graphs.

A window of the last :math:`L` observations is a chain graph
(:func:`graphdl.graphs.chain`); a :class:`~graphdl.layers.recurrent.ChainGRU`
(or LSTM) passes the hidden state along the chain and a linear head maps the
final state to the next :math:`H` values:

.. math::
    \hat{y}_{T+h} = y_T + s\,\big(\mathbf{W}\mathbf{h}_T + \mathbf{b}\big)_h,
    \qquad h = 1, \dots, H,

where the inputs are the window's values relative to its last value
:math:`y_T`, divided by a scale :math:`s`, together with the month of each
step (sine and cosine). The helpers load the Mauna Loa CO2 series bundled
with statsmodels (monthly means, 1958-2001), cut it into windows with a
held-out tail, and score the model against the seasonal-naive forecast
:math:`\hat{y}_{T+h} = y_{T+h-12}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from graphdl.errors import ValidationError
from graphdl.graphs.chain import ChainGraph
from graphdl.layers.recurrent import ChainGRU, ChainLSTM
from graphdl.models import MODELS
from graphdl.models.lenet import GraphList
from graphdl.validate import check_graph_device, require_int

__all__ = ["ChainForecaster", "ForecastData", "co2_monthly", "make_forecast_data", "seasonal_naive",
           "fit_forecaster", "forecast_errors"]


@MODELS.register("chain_forecaster", summary="Recurrent forecaster on chain graphs (GRU/LSTM message passing)")
class ChainForecaster(nn.Module):
    r"""A recurrent encoder on chain graphs and a linear multi-step head.

    Args:
        in_channels: Features per time step.
        out_channels: Forecast horizon :math:`H` (values predicted at once).
        hidden_channels: Hidden size of the recurrent layer.
        num_layers: Stacked recurrent layers.
        cell: ``"gru"`` or ``"lstm"``.
        dropout: Dropout between recurrent layers.
        method: ``"auto"``, ``"dense"`` or ``"message_passing"`` (see
            :class:`~graphdl.layers.recurrent.ChainGRU`).

    Shapes:
        - input: node features :math:`(\sum_n T_n, F)` of a batch of chain
          graphs with ``edge_index`` and ``batch`` (the nodes of each sequence
          consecutive and in time order, as :func:`graphdl.graphs.chain` and
          PyG batching keep them), or a tensor :math:`(N, T, F)`
        - output: :math:`(N, H)`
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 12, hidden_channels: int = 64,
                 num_layers: int = 1, cell: str = "gru", dropout: float = 0.0, method: str = "auto") -> None:
        super().__init__()
        cells = {"gru": ChainGRU, "lstm": ChainLSTM}
        if cell not in cells:
            raise ValidationError(f"chain_forecaster: cell must be 'gru' or 'lstm', got {cell!r}")
        if method not in ("auto", "dense", "message_passing"):
            raise ValidationError(f"chain_forecaster: method must be 'auto', 'dense' or 'message_passing', "
                                  f"got {method!r}")
        require_int("chain_forecaster", "out_channels", out_channels)  # 0 built a head with no outputs
        self.method = method
        self.rnn = cells[cell](in_channels, hidden_channels, num_layers=num_layers, dropout=dropout,
                               batch_first=True)
        self.head = nn.Linear(hidden_channels, out_channels)

    def reset_parameters(self) -> None:
        """Re-draw every weight, in the order the constructor drew them (so, under one seed, as a new model)."""
        self.rnn.reset_parameters()
        self.head.reset_parameters()

    def extra_repr(self) -> str:
        return f"method={self.method!r}"

    def forward(self, x: Tensor, edge_index: Tensor | None = None, batch: Tensor | None = None, *,
                method: str | None = None) -> Tensor:
        method = method or self.method
        if not isinstance(x, Tensor):  # failed on x.dim() with an AttributeError
            raise ValidationError(f"chain_forecaster: x must be a torch.Tensor of windows (N, T, F) or of chain node "
                                  f"features (N*T, F) with edge_index, got {type(x).__name__}")
        if x.dim() == 3:  # (N, T, F) tensor
            _, state = self.rnn(x, method=method)
        else:
            if edge_index is None:
                raise ValidationError("chain_forecaster: node features need the chain's edge_index (and batch)")
            check_graph_device("chain_forecaster", x, edge_index=edge_index, batch=batch)
            if batch is None:
                batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
            lengths = torch.bincount(batch)
            ptr = torch.cumsum(lengths, 0) - lengths
            graph = ChainGraph(edge_index=edge_index, time=torch.arange(x.size(0), device=x.device) - ptr[batch],
                               lengths=lengths, num_nodes=x.size(0))
            _, state = self.rnn(x, graph, method=method)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(h[-1])


# ---------------------------------------------------------------------------- data
def co2_monthly() -> tuple[np.ndarray, np.ndarray]:
    """Monthly means of statsmodels' bundled Mauna Loa CO2 series (ppm) and their months (1-12).

    The weekly series has gaps; months are averaged and the remaining gaps
    interpolated linearly. 526 months, March 1958 - December 2001.
    """
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    return monthly.to_numpy(dtype=np.float64), monthly.index.month.to_numpy()


@dataclass
class ForecastData:
    """Windows of a series as chain graphs, with train/val/test splits of the forecast origins."""

    graphs: GraphList
    splits: dict[str, Tensor]
    series: np.ndarray
    origins: np.ndarray  # index of the last observed value of each window
    scale: float
    input_len: int
    horizon: int
    season: int

    def targets(self, split: str) -> np.ndarray:
        """True values ``(windows, H)`` of a split."""
        idx = self.origins[self.splits[split].numpy()]
        return np.stack([self.series[t + 1:t + 1 + self.horizon] for t in idx])


def make_forecast_data(series: np.ndarray, months: np.ndarray | None = None, input_len: int = 48,
                       horizon: int = 12, test_len: int = 120, val_len: int = 48, season: int = 12) -> ForecastData:
    r"""Cut ``series`` into (window, next ``horizon`` values) pairs, one per forecast origin.

    The last ``test_len`` values are the held-out tail: test windows forecast
    only tail values (their inputs may reach into the tail, as in a rolling
    forecast), validation windows the ``val_len`` values before it, and
    training windows only values before those.

    ``months`` are the calendar months (1-12) of the values, encoded as the
    sine and cosine of :math:`2\pi\,\mathrm{month}/12`; without them the
    position in the season is, as :math:`2\pi\,(t \bmod m + 1)/m` with
    :math:`m` = ``season``. The scale :math:`s` is the standard deviation of
    the training period's first differences.
    """
    series = np.asarray(series, dtype=np.float64)
    if series.ndim != 1:
        raise ValidationError(f"make_forecast_data: series must be 1D (one value per step), got shape "
                              f"{series.shape}; pass one series at a time")
    for name, value in (("input_len", input_len), ("horizon", horizon), ("season", season)):
        if value < 1:
            raise ValidationError(f"make_forecast_data: {name} must be >= 1, got {value}")
    for name, value in (("test_len", test_len), ("val_len", val_len)):
        if value < horizon:  # fewer values than one forecast: the split would hold no window
            raise ValidationError(f"make_forecast_data: {name}={value} holds no whole forecast of "
                                  f"horizon={horizon}; make it >= horizon")
    if not np.isfinite(series).all():
        raise ValidationError(f"make_forecast_data: series holds {int((~np.isfinite(series)).sum())} NaN/inf "
                              f"values; fill or interpolate them first")
    n = series.size
    if n < input_len + horizon + test_len + val_len + season:
        raise ValidationError(f"series of {n} values is too short for input_len={input_len}, horizon={horizon}, "
                              f"test_len={test_len}, val_len={val_len}")
    if months is None:  # the position in the season, as a fraction of a full cycle
        phase = (np.arange(n) % season + 1) / season
    else:
        months = np.asarray(months)
        if months.shape != series.shape:
            raise ValidationError(f"make_forecast_data: months has shape {months.shape} but series has "
                                  f"{series.shape}; give one calendar month (1-12) per value")
        phase = months.astype(np.float64) / 12
    test_start, val_start = n - test_len, n - test_len - val_len
    train_end = val_start  # training targets lie before this index
    diffs = np.diff(series[:train_end])
    scale = float(diffs.std()) or 1.0
    graphs, origins, split_of = GraphList(), [], []
    for t in range(input_len - 1, n - horizon):
        first_target = t + 1
        last_target = t + horizon
        if last_target < train_end:
            split = "train"
        elif first_target >= val_start and last_target < test_start:
            split = "val"
        elif first_target >= test_start:
            split = "test"
        else:
            continue  # targets straddle two periods
        window = series[t - input_len + 1:t + 1]
        angle = 2 * math.pi * phase[t - input_len + 1:t + 1]
        feats = np.stack([(window - series[t]) / scale, np.sin(angle), np.cos(angle)], axis=1)
        y = (series[t + 1:t + 1 + horizon] - series[t]) / scale
        steps = torch.arange(input_len)
        graphs.append(ChainGraph(x=torch.tensor(feats, dtype=torch.float32),
                                 edge_index=torch.stack([steps[:-1], steps[1:]]),
                                 y=torch.tensor(y, dtype=torch.float32).view(1, horizon),
                                 num_nodes=input_len))
        origins.append(t)
        split_of.append(split)
    split_arr = np.array(split_of)
    splits = {s: torch.tensor(np.nonzero(split_arr == s)[0]) for s in ("train", "val", "test")}
    return ForecastData(graphs, splits, series, np.array(origins), scale, input_len, horizon, season)


def seasonal_naive(series: np.ndarray, origins: np.ndarray, horizon: int, season: int = 12) -> np.ndarray:
    r"""The seasonal-naive forecast :math:`\hat{y}_{T+h} = y_{T+h-m\lceil h/m \rceil}` from each origin :math:`T`."""
    origins = np.asarray(origins)
    if season < 1 or horizon < 1:
        raise ValidationError(f"seasonal_naive: horizon and season must be >= 1, got horizon={horizon}, "
                              f"season={season}")
    if origins.size and (origins.min() < season - 1 or origins.max() >= len(series)):
        bad = origins[(origins < season - 1) | (origins >= len(series))][0]
        raise ValidationError(f"seasonal_naive: origin {bad} has no full season of {season} values up to it in "
                              f"a series of {len(series)}; origins must lie in [{season - 1}, {len(series) - 1}]")
    out = np.empty((len(origins), horizon))
    for i, t in enumerate(origins):
        for h in range(1, horizon + 1):
            out[i, h - 1] = series[t + h - season * math.ceil(h / season)]
    return out


def forecast_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """MAE and RMSE over every window and step."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:  # broadcasting would silently score other pairs
        raise ValidationError(f"forecast_errors: pred has shape {pred.shape} but true has {true.shape}; "
                              f"give one forecast per true value")
    err = pred - true
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean()))}


@torch.no_grad()
def predict_split(model: nn.Module, data: ForecastData, split: str, method: str | None = None) -> np.ndarray:
    """The model's forecasts (in the series' units) for the windows of a split.

    The batches move to the model's device and dtype; the model's training
    mode is restored afterwards.
    """
    from torch_geometric.loader import DataLoader

    param = next(model.parameters())
    was_training = model.training
    model.eval()
    preds = []
    try:
        for batch in DataLoader(data.graphs[data.splits[split]], batch_size=256):
            batch = batch.to(param.device)
            preds.append(model(batch.x.to(param.dtype), batch.edge_index, batch.batch, method=method))
    finally:
        model.train(was_training)
    scaled = torch.cat(preds).double().cpu().numpy()
    last = data.series[data.origins[data.splits[split].numpy()]]
    return last[:, None] + data.scale * scaled


def fit_forecaster(seed: int = 0, epochs: int = 150, data: ForecastData | None = None, hidden_channels: int = 64,
                   lr: float = 3e-3, batch_size: int = 32, cell: str = "gru", method: str = "auto",
                   **trainer_kwargs: Any) -> dict[str, Any]:
    """Train :class:`ChainForecaster` on the CO2 windows through the shared Trainer (graph task, MSE loss).

    The epoch with the best validation MAE is kept. Returns the model, the
    ``FitResult`` and the test-tail errors of the model and of the
    seasonal-naive forecast (in ppm).
    """
    from graphdl.train import GraphTask, Trainer, seed_everything

    if data is None:
        data = make_forecast_data(*co2_monthly())
    seed_everything(seed)
    model = ChainForecaster(data.graphs[0].x.size(1), data.horizon, hidden_channels, cell=cell, method=method)
    trainer = Trainer(model, loss="mse", task=GraphTask(metric="mae", batch_size=batch_size), optimizer="adam",
                      lr=lr, epochs=epochs, seed=seed, progress=False, device="cpu", eval_splits=["val"],
                      **trainer_kwargs)
    result = trainer.fit(data.graphs, data.splits)
    true = data.targets("test")
    test_origins = data.origins[data.splits["test"].numpy()]
    return {
        "model": model,
        "result": result,
        "model_errors": forecast_errors(predict_split(model, data, "test"), true),
        "naive_errors": forecast_errors(seasonal_naive(data.series, test_origins, data.horizon, data.season), true),
        "data": data,
    }

