"""Audit of the input checks (graphdl.validate), atomic file writing (graphdl.io) and the plugin test kits
(graphdl.testing): each test failed before its fix."""

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from graphdl import validate
from graphdl.errors import ConfigError, ValidationError
from graphdl.io import atomic_torch_save, atomic_write, atomic_write_json, atomic_write_text
from graphdl.losses import Loss
from graphdl.testing import check_layer, check_loss

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ testing/losses.py
class _SquaredError(Loss):
    """Squared error through a custom autograd function: a correct loss, or with ``wrong`` a backward off by 2x."""

    kind = "regression"

    def __init__(self, wrong: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.wrong = wrong

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self._reduce(_Square.apply(input - target, self.wrong))


class _Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, wrong: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.wrong = wrong
        return x * x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return (4 if ctx.wrong else 2) * x * grad, None


def _float32_pair() -> tuple[tuple[Tensor, Tensor], dict]:
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(8, 2, generator=gen).requires_grad_(), torch.randn(8, 2, generator=gen)), {}


def test_check_loss_gradchecks_float32_inputs_in_float64() -> None:
    # before: float32 inputs (as the docstring's example gives them) went to gradcheck as they were, where a finite
    # difference with eps=1e-6 is rounding noise: "mse: gradcheck failed ... Jacobian mismatch" for torch's MSE
    assert check_loss("mse", inputs=_float32_pair())["name"] == "mse"
    check_loss(_SquaredError(), inputs=_float32_pair())
    with pytest.raises(AssertionError, match=r"^_SquaredError: gradcheck failed: .*Jacobian mismatch"):
        check_loss(_SquaredError(wrong=True), inputs=_float32_pair())  # still checked, in float64


class _NaNLoss(Loss):
    kind = "regression"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self._reduce((input - target) * float("nan"))


def test_check_loss_checks_under_python_O() -> None:
    # before: the checks were assert statements, which python -O strips: a loss of NaN passed. The module is
    # compiled here as python -O compiles it (optimize=1), without the cost of a second interpreter.
    import graphdl.testing.losses as kit

    source = Path(kit.__file__).read_text()
    optimised: dict[str, Any] = {"__name__": "graphdl.testing.losses_O", "__file__": kit.__file__}
    exec(compile(source, kit.__file__, "exec", optimize=1), optimised)  # noqa: S102 - graphdl's own module
    with pytest.raises(AssertionError, match=r"^_NaNLoss\[mean\]: value is not finite"):
        optimised["check_loss"](_NaNLoss(), gradcheck=False)


@pytest.mark.parametrize("check", [lambda: check_layer("gcn", checks=("shape", "gradients")),
                                   lambda: check_loss("mse")], ids=["check_layer", "check_loss"])
def test_the_kits_leave_the_callers_random_generator_alone(check: Any) -> None:
    # before: they reseeded the global generator, so a script that seeds, runs a check and builds its model got
    # the same initial weights whatever its seed
    torch.manual_seed(11)
    expected = torch.rand(4)
    torch.manual_seed(11)
    check()
    assert torch.equal(torch.rand(4), expected)


# ------------------------------------------------------------------ io.py
def test_atomic_write_writes_through_a_symlink(tmp_path: Path) -> None:
    # before: os.replace swapped the link itself for a regular file; the linked file kept the old contents
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "best.json"
    target.write_text("old")
    link = tmp_path / "best.json"
    link.symlink_to(target)
    atomic_write_json(link, {"mean": 0.9})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == '{\n  "mean": 0.9\n}\n'
    atomic_torch_save({"w": torch.ones(2)}, link)
    assert link.is_symlink() and torch.equal(torch.load(target)["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "shared"]
    assert sorted(p.name for p in shared.iterdir()) == ["best.json"]


@pytest.mark.parametrize("mode", ["a", "r", "wz", "wbt"])
def test_atomic_write_refuses_a_mode_that_is_not_a_write(tmp_path: Path, mode: str) -> None:
    # before: "a" silently dropped the file's contents (it appended to an empty temporary file); "r" and "wz" left
    # an open file descriptor behind
    log = tmp_path / "log.txt"
    log.write_text("line 1\n")
    with pytest.raises(ValueError, match=rf"^atomic_write writes a new file, so mode must be a write mode such as "
                                         rf"'w' or 'wb', got '{mode}'; to add to a file, read it, then write the "
                                         rf"old and the new contents$"):
        with atomic_write(log, mode) as handle:
            handle.write("line 2\n")
    assert log.read_text() == "line 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]


def test_atomic_write_names_a_folder_in_the_way_before_writing(tmp_path: Path) -> None:
    # before: the whole file was written, then os.replace failed with "[Errno 21] Is a directory" naming the
    # temporary file
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(IsADirectoryError, match=rf"^cannot write '{tmp_path}/ckpt': it is a folder; give the path "
                                                rf"of a file in it$"):
        atomic_write_text(tmp_path / "ckpt", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_a_folder_behind_a_broken_link_is_named(tmp_path: Path) -> None:
    # before: mkdir's "FileExistsError: [Errno 17] File exists" for a path that does not exist
    (tmp_path / "runs").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match=rf"^cannot use '{tmp_path}/runs' as the folder for metrics.json: "
                                          rf"'{tmp_path}/runs' is a link to '{tmp_path}/gone', which does not exist. "
                                          rf"Create that folder, or choose another path.$"):
        atomic_write_json(tmp_path / "runs" / "metrics.json", {})


# ------------------------------------------------------------------ validate.py
def test_overlap_warning_counts_items_not_repeated_indices() -> None:
    # before: "share 3 nodes" for one node that the val split lists three times
    with pytest.warns(UserWarning, match=r"^the 'train' and 'val' splits share 1 nodes, so"):
        validate.warn_if_train_overlaps({"train": torch.tensor([0, 1]), "val": torch.tensor([1, 1, 1, 2])}, 4,
                                        "nodes")


EDGES = torch.tensor([[0, 1, 2], [1, 2, 0]])


@pytest.mark.parametrize("call, message", [
    (lambda: validate.check_call("L", torch.randn(3, 2), EDGES, batch=torch.tensor([0, -2, 0])),
     "L: batch holds negative graph indices (down to -2); number the graphs 0, 1, ..., as torch_geometric's "
     "Batch.from_data_list(graphs).batch does"),
    (lambda: validate.check_call("L", torch.randn(3, 2), EDGES, edge_weight=torch.ones(3, 1)),
     "L: edge_weight must have shape (num_edges,), got (3, 1); one weight per edge in a (num_edges, 1) column "
     "becomes one with edge_weight.view(-1), several per edge are edge features: pass them as edge_attr"),
    (lambda: validate.check_features(torch.randn(3, 2), 4),
     "x has 3 rows but the graph has 4 nodes; give one row per node (data.num_nodes, when set, must match)"),
    (lambda: validate.check_features(torch.randn(3, 2, 5)),
     "x must have shape (num_nodes, num_features), got (3, 2, 5); flatten each node's features into one row "
     "with x.flatten(1)"),
    (lambda: validate.check_split_index(torch.tensor([0, 7]), 5, "split 'test'", "node"),
     "split 'test' indices must lie in [0, 4], got [0, 7]; there are 5 nodes: drop the indices out of range, or "
     "check that the split was made for this data"),
], ids=["negative batch", "edge_weight column", "x rows", "3-d x", "split range"])
def test_messages_name_the_fix(call: Any, message: str) -> None:
    # before: no fix (batch, rows, split, edge_weight column) or the 1-d hint .unsqueeze(-1) for a 3-d x
    with pytest.raises(ValidationError) as info:
        call()
    assert str(info.value) == message


def test_check_loss_gradchecks_float32_logits_with_integer_targets() -> None:
    # before: the same false "gradcheck failed"; the float64 copies keep the class ids integer
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 3, generator=gen).requires_grad_()
    check_loss("cross_entropy", inputs=((logits, torch.tensor([0, 1, 2, 0, 1, 2])), {}))
