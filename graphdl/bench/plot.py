"""Learning curves of benchmark records as one PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphdl.errors import ConfigError
from graphdl.io import atomic_write

__all__ = ["plot_curves"]


def _band(runs: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and std over seeds (runs of unequal length are cut to the shortest).

    The std is the sample std (``ddof=1``), as the records' ``std``; an epoch that only one
    seed scored has none (NaN: no band there).
    """
    length = min(len(r) for r in runs)
    arr = np.asarray([r[:length] for r in runs], dtype=float)
    with warnings.catch_warnings():  # an epoch with fewer than two scores: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.arange(length), np.nanmean(arr, axis=0), np.nanstd(arr, axis=0, ddof=1)


def plot_curves(records: Sequence[dict[str, Any]], path: str | Path, title: str | None = None) -> Path:
    """Plot validation and test metric per epoch (mean ± std over seeds), one panel per record.

    The reference result, when the record has one, is drawn as a dotted
    horizontal line. The file is written atomically.
    """
    # a Figure on an Agg canvas, not pyplot: matplotlib.use("Agg") switched the caller's backend (a notebook's
    # inline one) for the rest of the session, and pyplot keeps every figure it makes until closed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from graphdl.bench.runner import _model_labels

    # a record without status is finished, as for the table and merge_records
    records = [r for r in records if r.get("status", "ok") == "ok" and r.get("curves")]
    if not records:
        raise ConfigError("no finished record has learning curves to plot (a record pooled from pieces of which "
                          "one kept no curves has none); leave out the plot (--png), or pass records with 'curves'")
    cols = min(3, len(records))
    rows = math.ceil(len(records) / cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, rec, model in zip(axes.flat, records, _model_labels(records)):  # differing configurations named
        for split, style in (("train", ":"), ("val", "-"), ("test", "--")):
            runs = [r for r in rec["curves"].get(split, []) if r and not all(math.isnan(v) for v in r)]
            if not runs:
                continue
            x, mean, std = _band(runs)
            ax.plot(x, mean, style, label=split)
            if len(runs) > 1:
                ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        if rec.get("reference") is not None:
            ax.axhline(rec["reference"], color="grey", linestyle="dotted", linewidth=1, label="reference")
        n = len(rec["runs"])
        ax.set_title(f"{rec['dataset']} / {model} ({n} seed{'s' if n != 1 else ''})", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(rec["metric"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(records):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=90)
    return path
