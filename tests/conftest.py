"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only mirror of official raw dataset files (``../shared/data``).

    CI clones the repository with ``shared/`` beside it; a test that needs the
    mirror fails (it does not skip) when the mirror is not there.
    """
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "ogb").is_dir() or not (path / "planetoid").is_dir():
        pytest.fail(
            f"the dataset mirror is missing: expected {path} with planetoid/ and ogb/ "
            f"inside (CI clones the repository with ../shared/data beside it). Put the "
            f"mirror there to run this test.",
            pytrace=False,
        )
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread():
    """The tests use tiny graphs, where OpenMP threads only add overhead (two xdist workers share
    two cores; on a busy machine small kernels ran 100x slower with two threads each)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
