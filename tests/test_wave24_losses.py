"""Bad input to every registered loss gives a ValidationError that names the loss, the problem and the fix:
float class ids with fractions (not truncated), tensors on the meta device (no values), NaN targets (a data
problem, not the model's), non-bool switches, class-index targets given as a column."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

import graphdl
from graphdl.errors import ValidationError
from graphdl.losses.distances import LpDistance

L = graphdl.losses
METRIC = ["contrastive", "triplet", "ntxent", "supcon", "multi_similarity", "lifted_structure", "arcface"]


def build(name: str, **kw):
    return L.create(name, **{**getattr(L.get(name), "example_init", {}), **kw})


def metric_inputs(loss):
    (emb, labels), _ = loss.example_inputs(torch.float32, torch.Generator().manual_seed(0))
    return emb, labels


@pytest.mark.parametrize("name", METRIC)
def test_fractional_float_labels_are_refused_not_truncated(name: str) -> None:
    """labels.long() turned 1.5 into class 1 without a word; the old advice was exactly that."""
    loss = build(name)
    emb, labels = metric_inputs(loss)
    bad = labels.float()
    bad[0] = 1.5
    owner = type(loss).__name__
    with pytest.raises(ValidationError, match=rf"^{owner}: labels must hold integer class ids, but it holds "
                                              rf"torch.float32 values that are not whole numbers, e.g. 1.5: "):
        loss(emb, bad)


@pytest.mark.parametrize("name", METRIC)
def test_whole_float_labels_name_the_graphs_labels(name: str) -> None:
    loss = build(name)
    emb, labels = metric_inputs(loss)
    with pytest.raises(ValidationError, match=r"Convert it with labels.long\(\) \(for a graph given to the "
                                              r"Trainer, its labels: data.y = data.y.long\(\)\)\.$"):
        loss(emb, labels.float())


def test_trainer_with_float_graph_labels_says_to_convert_data_y() -> None:
    """Through the Trainer the user holds data.y, not the loss's labels argument."""
    g = torch.Generator().manual_seed(0)
    n = 12
    data = Data(x=torch.randn(n, 4, generator=g), edge_index=torch.randint(0, n, (2, 24), generator=g),
                y=torch.arange(n).remainder(3).float())
    data.train_mask = torch.arange(n) < 8
    data.val_mask = (torch.arange(n) >= 8) & (torch.arange(n) < 10)
    data.test_mask = torch.arange(n) >= 10
    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=4,
                                  num_layers=2)
    trainer = graphdl.train.Trainer(model, "supcon", "node", epochs=1, progress=False)
    with pytest.raises(ValidationError, match=r"data\.y = data\.y\.long\(\)"):
        trainer.fit(data)


@pytest.mark.parametrize("name", ["cross_entropy", "focal"])
def test_fractional_float_class_targets_are_refused_not_truncated(name: str) -> None:
    loss = build(name)
    (x, y), _ = loss.example_inputs(torch.float32, torch.Generator().manual_seed(0))
    bad = y.float()
    bad[2] = 1.5
    with pytest.raises(ValidationError, match=r"holds values that are not whole numbers, e.g. 1.5: not class "
                                              r"ids \(target.long\(\) would truncate them\)\. Give integer "
                                              r"class indices; "):
        loss(x, bad)
    with pytest.raises(ValidationError, match=r"pass class indices as target.long\(\)"):  # whole numbers
        loss(x, y.float())


@pytest.mark.parametrize("name", ["cross_entropy", "focal"])
def test_column_of_class_ids_says_how_to_reshape(name: str) -> None:
    """OGB keeps labels as an (N, 1) column."""
    loss = build(name)
    (x, y), _ = loss.example_inputs(torch.float32, torch.Generator().manual_seed(0))
    with pytest.raises(ValidationError, match=r"got \(8, 1\)\. Reshape it with target.view\(8\)\.$"):
        loss(x, y[:, None])
    assert torch.equal(loss(x, y[:, None].view(8)), loss(x, y))


def _example(name: str):
    loss = build(name)
    args, kw = loss.example_inputs(torch.float32, torch.Generator().manual_seed(0))
    return loss, list(args), kw


@pytest.mark.parametrize("name", L.list())
def test_tensor_on_meta_device_is_named(name: str) -> None:
    """Each tensor argument on the meta device (as a tensor on another device) failed deep inside torch
    ('Tensor.item() cannot be called on meta tensors', 'Cannot copy out of meta tensor')."""
    loss, args, kw = _example(name)
    owner = type(loss).__name__
    for i, a in enumerate(args):
        if not isinstance(a, torch.Tensor):
            continue
        bad = list(args)
        bad[i] = a.detach().to("meta")
        with pytest.raises(ValidationError, match=rf"^{owner}: \S+ is on the meta device, which holds shapes but "
                                                  rf"no values; pass a tensor with data \("):
            loss(*bad, **kw)


@pytest.mark.parametrize("name,arg", [("ntxent", "labels"), ("cross_entropy", "target"), ("mse", "target"),
                                      ("margin_ranking", "target"), ("kl_div", "target")])
def test_meta_target_names_the_device_to_create_it_on(name: str, arg: str) -> None:
    loss, args, kw = _example(name)
    args[-1] = args[-1].detach().to("meta")
    with pytest.raises(ValidationError, match=rf"{arg} is on the meta device.*\(create it on cpu, the device of "):
        loss(*args, **kw)


@pytest.mark.parametrize("name", ["mse", "l1", "huber", "bce_with_logits", "kl_div", "js_div"])
def test_nan_target_is_a_data_problem(name: str) -> None:
    """A NaN target comes from the data (e.g. OGB's missing labels); the message blamed the model output."""
    loss, args, kw = _example(name)
    target = args[1].detach().clone()
    target.view(-1)[0] = float("nan")
    args[1] = target
    with pytest.raises(ValidationError, match=r"target contains 1 NaN.*Check the data: leave out the entries "
                                              r"without a target") as info:
        loss(*args, **kw)
    assert "model output" not in str(info.value)


def test_nan_class_weight_is_not_blamed_on_the_model() -> None:
    with pytest.raises(ValidationError, match=r"^CrossEntropyLoss: weight contains 1 NaN or inf value\(s\) "
                                              r"\(shape \(2,\)\)\. Give finite values\.$"):
        L.create("cross_entropy", weight=[1.0, float("nan")])


@pytest.mark.parametrize("name,flag", [("triplet_margin", "swap"), ("soft_margin_triplet", "swap"),
                                       ("triplet", "swap"), ("triplet", "smooth_loss"),
                                       ("kl_div", "log_target"), ("kl_div", "from_logits"),
                                       ("js_div", "log_target"), ("js_div", "from_logits")])
def test_switches_must_be_bools(name: str, flag: str) -> None:
    """bool('no') is True: swap='no' swapped, log_target='False' read the target as log-probabilities."""
    owner = type(build(name)).__name__
    for bad in ("no", "False", 0.5, None):
        with pytest.raises(ValidationError, match=rf"^{owner}: {flag} must be a bool \(True or False\), got "):
            build(name, **{flag: bad})
    assert getattr(build(name, **{flag: np.bool_(True)}), flag) is True


def test_distance_normalize_embeddings_must_be_a_bool() -> None:
    with pytest.raises(ValidationError, match=r"^LpDistance: normalize_embeddings must be a bool"):
        LpDistance(normalize_embeddings="no")
    assert LpDistance(normalize_embeddings=np.bool_(False)).normalize_embeddings is False


def test_valid_inputs_unchanged_by_the_checks() -> None:
    """The refusals above leave valid calls bit-identical to torch's."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, generator=g), torch.randint(0, 3, (6,), generator=g)
    assert torch.equal(L.create("cross_entropy")(x, y), torch.nn.functional.cross_entropy(x, y))
    assert torch.equal(L.create("cross_entropy")(x, y.float().long()), torch.nn.functional.cross_entropy(x, y))
    t = torch.randn(6, 3, generator=g)
    assert torch.equal(L.create("mse")(x, t), torch.nn.functional.mse_loss(x, t))


def test_a_loss_subclass_registered_without_a_kind_is_refused():
    """Loss.kind defaulted to 'classification': a metric loss registered without kind= was called with class
    logits and scored by argmax accuracy (test_acc 0.136 on Cora) without a word."""
    from graphdl.errors import ConfigError
    from graphdl.losses import LOSSES

    class Center(graphdl.losses.Loss):
        def forward(self, embeddings, labels):
            return self._reduce(embeddings.pow(2).sum(-1))

    with pytest.raises(ConfigError, match=r"^loss 'center_without_kind' \(Center\) has no kind, which tells the "
                                          r"Trainer how to call and score it; register it with kind=\.\.\. or set "
                                          r"kind = '\.\.\.' on the class\. Kinds: classification, regression, "
                                          r"metric, ranking, divergence, graph$"):
        LOSSES.register("center_without_kind")(Center)
    assert "center_without_kind" not in LOSSES
    LOSSES.register("center_with_kind", kind="metric")(Center)
    try:
        assert graphdl.losses.entry_kind(LOSSES.entry("center_with_kind")) == "metric"
    finally:
        LOSSES.unregister("center_with_kind")
