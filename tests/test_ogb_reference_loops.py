"""graphdl's OGB set-ups against literal transcriptions of the official examples' loops.

The transcriptions follow the ogb repository's ``examples/linkproppred/ddi/gnn.py`` line by line.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from graphdl.bench.ogbl import OGBLinkGNN, OGBLinkTask
from test_bench import _small_ddi  # a small graph in ogbl-ddi's split format


def _official_ddi_test(h: torch.Tensor, lins: torch.nn.ModuleList, split_edge: dict) -> dict[str, float]:
    """The example's ``test()`` for K = 20: its ``LinkPredictor`` (eval mode) ends in ``torch.sigmoid``, and
    the Evaluator ranks those float32 probabilities (``y_pred_pos > kth negative``)."""
    from ogb.linkproppred import Evaluator
    from torch.utils.data import DataLoader

    def predictor(x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        x = x_i * x_j
        for lin in lins[:-1]:
            x = F.dropout(F.relu(lin(x)), p=0.5, training=False)
        return torch.sigmoid(lins[-1](x))

    def scores(edges: torch.Tensor) -> torch.Tensor:  # (E, 2) pairs, as in split_edge
        preds = []
        for perm in DataLoader(range(edges.size(0)), 64 * 1024):
            edge = edges[perm].t()
            preds += [predictor(h[edge[0]], h[edge[1]]).squeeze().cpu()]
        return torch.cat(preds, dim=0)

    evaluator = Evaluator(name="ogbl-ddi")
    evaluator.K = 20
    neg_valid, neg_test = scores(split_edge["valid"]["edge_neg"]), scores(split_edge["test"]["edge_neg"])
    return {
        "train": evaluator.eval({"y_pred_pos": scores(split_edge["eval_train"]["edge"]),
                                 "y_pred_neg": neg_valid})["hits@20"],
        "val": evaluator.eval({"y_pred_pos": scores(split_edge["valid"]["edge"]), "y_pred_neg": neg_valid})["hits@20"],
        "test": evaluator.eval({"y_pred_pos": scores(split_edge["test"]["edge"]), "y_pred_neg": neg_test})["hits@20"],
    }


def test_ddi_hits_ranks_the_examples_sigmoid_probabilities() -> None:
    """A confident predictor (logits near 20, where float32's sigmoid is 1.0): the example's Evaluator sees
    tied probabilities and, counting only positives strictly above the 20th negative, scores 0; graphdl
    must score what the example scores, not the untied logits."""
    data, splits = _small_ddi()
    torch.manual_seed(0)
    model = OGBLinkGNN(layer="sage", in_channels=None, num_nodes=data.num_nodes, hidden_channels=16,
                       num_layers=2, decoder="mlp", decoder_layers=2, decoder_dropout=0.5)
    with torch.no_grad():
        model.decoder.lins[-1].bias.fill_(20.0)
    task = OGBLinkTask(metric="ogbl-ddi", batch_size=64)
    task.setup(data, splits, "cpu")
    model.eval()
    got = task.evaluate(model, ["train", "val", "test"])

    train = splits["train"]["edge"]
    torch.manual_seed(12345)  # the example's eval_train sample
    idx = torch.randperm(train.size(0))[:splits["valid"]["edge"].size(0)]
    split_edge = {**splits, "eval_train": {"edge": train[idx]}}
    with torch.no_grad():
        expected = _official_ddi_test(task.predict(model), model.decoder.lins, split_edge)
    assert expected["val"] == 0.0  # the case this test is about: every probability ties at 1.0
    assert got == {f"{split}_hits@20": value for split, value in expected.items()}


def test_ddi_hits_matches_the_example_on_an_ordinary_predictor() -> None:
    """The same check without saturation (the common case), so the scoring is not just right at the extreme."""
    data, splits = _small_ddi()
    torch.manual_seed(1)
    model = OGBLinkGNN(layer="gcn", in_channels=None, num_nodes=data.num_nodes, hidden_channels=16,
                       num_layers=2, decoder="mlp", decoder_layers=2, decoder_dropout=0.5)
    task = OGBLinkTask(metric="ogbl-ddi", batch_size=64)
    task.setup(data, splits, "cpu")
    model.eval()
    got = task.evaluate(model, ["train", "val", "test"])
    train = splits["train"]["edge"]
    torch.manual_seed(12345)
    idx = torch.randperm(train.size(0))[:splits["valid"]["edge"].size(0)]
    with torch.no_grad():
        expected = _official_ddi_test(task.predict(model), model.decoder.lins,
                                      {**splits, "eval_train": {"edge": train[idx]}})
    assert got == {f"{split}_hits@20": value for split, value in expected.items()}
