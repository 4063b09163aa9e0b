"""graphdl.validate: numpy num_nodes checked as Python ones, switches that must be bools, one-item splits."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch_geometric.datasets import FakeDataset

import graphdl
from graphdl import validate
from graphdl.errors import ConfigError, ValidationError


@pytest.mark.parametrize("value", ["no", "0", 0.5, 1])
def test_set_debug_takes_a_bool_only(value) -> None:
    """set_debug("no") turned per-batch scanning on (bool("no") is True)."""
    before = validate.DEBUG
    try:
        with pytest.raises(ConfigError, match=rf"^set_debug's enabled must be a bool \(True or False\), got "
                                              rf"{type(value).__name__} {re.escape(repr(value))}$"):
            validate.set_debug(value)
        assert validate.DEBUG is before
        validate.set_debug(np.bool_(True))
        assert validate.DEBUG is True
    finally:
        validate.set_debug(before)


def test_check_edge_index_refuses_a_negative_numpy_num_nodes() -> None:
    """A Python -1 was refused; np.int64(-1) passed (an empty graph) or was named as a graph of -1 nodes."""
    empty = torch.zeros(2, 0, dtype=torch.long)
    for num_nodes in (-1, np.int64(-1)):
        with pytest.raises(ValidationError, match=r"^num_nodes must be >= 0, got -1$"):
            validate.check_edge_index(empty, num_nodes)
    validate.check_edge_index(torch.tensor([[0], [2]]), np.int64(3))


def test_a_0d_index_is_a_split_of_one_graph() -> None:
    """torch.tensor(5) as a split of a PyG dataset made the subset dataset[5], one Data graph (len: its number of
    attributes), instead of a dataset of one graph."""
    torch.manual_seed(0)
    data = FakeDataset(num_graphs=6, avg_num_nodes=5, num_channels=3, num_classes=2)
    index = validate.check_split_index(torch.tensor(5), len(data), "split", "graph")
    assert index.tolist() == [5]
    task = graphdl.train.GraphTask(batch_size=2)
    task.setup(data, {"train": torch.tensor([0, 1, 2, 3]), "test": torch.tensor(5)})
    test = task.subsets["test"]
    assert len(test) == 1 and torch.equal(test[0].x, data[5].x)
    assert validate.check_split_index(torch.tensor([[4], [5]]), 6).tolist() == [4, 5]


@pytest.mark.parametrize("value", [5, np.int64(5)])
def test_a_single_int_split_is_named_with_its_fix(value) -> None:
    """np.int64(5) failed with "got a int64 that is neither (object of type 'numpy.int64' has no len())"."""
    with pytest.raises(ValidationError, match=rf"^splits\['test'\] must be a boolean mask or integer indices, got the "
                                              rf"single {type(value).__name__} {re.escape(repr(value))}; give a split "
                                              rf"of one graph as a list, \[5\]$"):
        validate.check_split_index(value, 6, "splits['test']", "graph")
