"""LeNet-5 as a graph network: summary vs a torch.nn LeNet, equivalence, a smoke training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import graphdl.models.lenet  # noqa: F401  (registers lenet_grid until the package imports it)
from graphdl.errors import ValidationError
from graphdl.graphs import grid
from graphdl.models import MODELS
from graphdl.models.lenet import LeNetGrid, digits_graphs, fit_digits, format_summary, stratified_split


def torch_lenet(in_channels: int = 1, image: int = 8, k: int = 3, pad: int = 1) -> nn.Sequential:
    side = ((image + 2 * pad - k + 1) // 2 + 2 * pad - k + 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, k, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, k, padding=pad), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * side * side, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def torch_counts(net: nn.Sequential, image: tuple[int, int, int]) -> list[tuple[str, int, int]]:
    """(kind, params, MACs per image) of each Conv2d/MaxPool2d/Linear, counted with forward hooks."""
    rows: list[tuple[str, int, int]] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        params = sum(p.numel() for p in module.parameters())
        per_image = output[0].numel()
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            rows.append(("conv", params, per_image * module.in_channels * kh * kw))
        elif isinstance(module, nn.Linear):
            rows.append(("linear", params, module.in_features * per_image))
        else:
            rows.append(("pool", params, 0))

    handles = [m.register_forward_hook(hook) for m in net if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d))]
    net(torch.zeros(2, *image))
    for h in handles:
        h.remove()
    return rows


@pytest.mark.parametrize("config", [dict(), dict(image_size=32, kernel_size=5, padding=0)])
def test_summary_matches_torch_lenet(config):
    model = LeNetGrid(**config)
    image = config.get("image_size", 8)
    ref = torch_counts(torch_lenet(1, image, config.get("kernel_size", 3), config.get("padding", 1)), (1, image, image))
    rows = model.summary()
    assert [(r.kind.split("_")[-1].split(" ")[0], r.params, r.macs) for r in rows] == \
        [(k if k != "pool" else "pool", p, m) for k, p, m in ref]
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    # message passing skips the padding edges, and never does more than the dense convolution
    for r in rows:
        assert r.mp_macs <= r.macs
    table = format_summary(rows)
    assert "| total |" in table and f"{sum(r.params for r in rows):,}" in table


def test_equals_torch_lenet_both_paths():
    torch.manual_seed(0)
    model = LeNetGrid()
    ref = model.to_torch()
    images = torch.rand(4, 1, 8, 8)
    expected = ref(images)
    for method in ("dense", "message_passing"):
        torch.testing.assert_close(model(images, method=method), expected, atol=1e-5, rtol=1e-5)
    # the same through a batch of grid graphs, as the Trainer calls it
    g = grid(images, 3, padding=1)
    for method in ("dense", "message_passing"):
        out = model(g.x, g.edge_index, g.edge_attr, g.batch, method=method)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert isinstance(MODELS.create("lenet_grid"), LeNetGrid)


def test_to_torch_keeps_the_models_dtype():
    """The Linear layers were rebuilt in float32 beside float64 convolutions: the network failed on its input."""
    torch.manual_seed(0)
    model = LeNetGrid().double()
    ref = model.to_torch()
    assert {p.dtype for p in ref.parameters()} == {torch.float64}
    images = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(model(images), ref(images))


def test_smoke_training_through_trainer():
    data = digits_graphs()
    assert len(data) == 1797 and data[0].x.shape == (64, 1)
    splits = stratified_split(torch.cat([g.y for g in data]), seed=0)
    assert len(splits["test"]) == 360
    result = fit_digits(seed=0, epochs=2, data=data)
    assert len(result.history) == 2
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.test["test_acc"] > 0.3  # 10 classes: chance is 0.1


def test_bad_input():
    model = LeNetGrid()
    with pytest.raises(ValidationError, match=r"images must have shape \(N, 1, 8, 8\)"):
        model(torch.rand(2, 1, 7, 8))
    with pytest.raises(ValidationError, match="pixel node features"):
        model(torch.rand(65, 1))
    with pytest.raises(ValidationError, match="method must be"):
        LeNetGrid(method="fast")
