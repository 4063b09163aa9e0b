"""Writing tiny datasets in OGB's raw format (``raw/*.csv.gz``), for tests of the official loaders."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def write_csv_gz(path: Path, rows: np.ndarray, fmt: str) -> None:
    """``rows`` as one comma-separated line each (a 1-D array: one value per line), gzipped, as OGB ships them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = rows.reshape(len(rows), -1)
    with gzip.open(path, "wt") as handle:
        for row in rows:
            handle.write(",".join(fmt % v for v in row) + "\n")
