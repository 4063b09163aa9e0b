r"""LeNet-5 as a graph network: grid convolutions and coarsening on pixel graphs.

LeNet (LeCun et al., 1998) is convolution - ReLU - pooling, twice, then an
MLP. Here every stage is a layer on a grid graph (:func:`graphdl.graphs.grid`):
:class:`~graphdl.layers.grid.GridConv` passes messages with one weight per
kernel offset, :class:`~graphdl.layers.grid.GridPool` coarsens the grid (max
over each window), and the readout concatenates the node features of the last
grid in ``(channel, row, col)`` order (as :class:`torch.nn.Flatten` does)
before the MLP. With ``method="dense"`` (or ``"auto"`` on regular grids) each
grid layer lowers to its dense torch kernel; ``method="message_passing"``
runs every layer edge by edge. :meth:`LeNetGrid.to_torch` gives the
equivalent ``torch.nn`` network with the same weights.

The helpers :func:`digits_graphs`, :func:`stratified_split` and
:func:`fit_digits` train the model on scikit-learn's bundled 8x8 digits
through the shared :class:`graphdl.train.Trainer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphdl.errors import ValidationError
from graphdl.graphs.grid import (GridGraph, GridSpec, _pair, edge_offsets, edge_sources, grid_graph, grid_spec,
                                 grid_structure, images_to_nodes)
from graphdl.graphs.structure_cache import passes
from graphdl.layers.grid import GridConv, GridPool
from graphdl.models import MODELS
from graphdl.validate import require_int

__all__ = ["LeNetGrid", "LayerSummary", "GraphList", "digits_graphs", "stratified_split", "fit_digits",
           "format_summary"]


@dataclass(frozen=True)
class LayerSummary:
    """One row of :meth:`LeNetGrid.summary` (counts per image)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int  # multiply-accumulates of the dense computation (what torch.nn runs)
    edges: int  # edges of the layer's graph (0 for dense layers)
    mp_macs: int  # multiply-accumulates of the message-passing path (padding edges absent)


def format_summary(rows: Sequence[LayerSummary]) -> str:
    """The rows of a summary as a markdown table with a total line."""
    lines = ["| layer | kind | output | params | MACs | graph edges | MACs (message passing) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.kind} | {'x'.join(map(str, r.output_shape))} | {r.params:,} | "
                     f"{r.macs:,} | {r.edges:,} | {r.mp_macs:,} |")
    lines.append(f"| total | | | {sum(r.params for r in rows):,} | {sum(r.macs for r in rows):,} | "
                 f"{sum(r.edges for r in rows):,} | {sum(r.mp_macs for r in rows):,} |")
    return "\n".join(lines)


def _int_sequence(values: Any) -> bool:
    """A list or tuple of ints >= 1 (layer widths), not a str or a bare int."""
    return isinstance(values, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)


@MODELS.register("lenet_grid", summary="LeNet-5 as a graph network: grid convolutions and pooling as coarsening")
class LeNetGrid(nn.Module):
    r"""LeNet-5 on grid graphs.

    .. math::
        \mathbf{h}^{(1)} = \operatorname{pool}(\operatorname{ReLU}(\operatorname{conv}_1(\mathbf{x}))),\quad
        \mathbf{h}^{(2)} = \operatorname{pool}(\operatorname{ReLU}(\operatorname{conv}_2(\mathbf{h}^{(1)}))),\quad
        \hat{\mathbf{y}} = \operatorname{MLP}\big(\Vert_{c, v} \mathbf{h}^{(2)}_{v, c}\big)

    with :math:`\operatorname{conv}` a :class:`~graphdl.layers.grid.GridConv`
    and :math:`\operatorname{pool}` a max :class:`~graphdl.layers.grid.GridPool`.
    The defaults fit 8x8 digits (3x3 kernels, padding 1: 8 -> 4 -> 2, a
    64-120-84-10 MLP); ``image_size=32, kernel_size=5, padding=0`` is the
    original LeNet-5 (400-120-84-10).

    Args:
        in_channels: Image channels.
        out_channels: Classes.
        image_size: ``H`` or ``(H, W)``.
        channels: Channels of the two convolutions.
        kernel_size: Convolution kernel size.
        padding: Convolution padding.
        pool_size: Pooling window (and stride).
        hidden: Hidden sizes of the MLP.
        method: ``"auto"``, ``"dense"`` or ``"message_passing"`` for every grid layer.
        dropout: Dropout before each hidden linear layer of the MLP (training only; no parameters).

    Shapes:
        - input: images :math:`(N, C, H, W)`, or pixel node features
          :math:`(N H W, C)` (optionally with the first convolution's grid:
          ``edge_index`` and kernel offsets as ``edge_attr``)
        - output: logits :math:`(N, \text{out\_channels})`
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 10, image_size: int | Sequence[int] = 8,
                 channels: Sequence[int] = (6, 16), kernel_size: int = 3, padding: int = 1, pool_size: int = 2,
                 hidden: Sequence[int] = (120, 84), method: str = "auto", dropout: float = 0.0) -> None:
        super().__init__()
        if method not in ("auto", "dense", "message_passing"):
            raise ValidationError(f"lenet_grid: method must be 'auto', 'dense' or 'message_passing', got {method!r}")
        require_int("lenet_grid", "in_channels", in_channels)  # torch failed deep inside, or True read as 1
        require_int("lenet_grid", "out_channels", out_channels)  # 0 built a head with no outputs
        if not _int_sequence(channels) or len(channels) != 2:
            raise ValidationError(f"lenet_grid: channels must hold the two convolutions' widths, ints >= 1, "
                                  f"e.g. (6, 16), got {channels!r}")
        if not _int_sequence(hidden):
            raise ValidationError(f"lenet_grid: hidden must be a sequence of the hidden layers' widths, ints >= 1, "
                                  f"e.g. (120, 84) or () for none, got {hidden!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            # -1 and NaN built a model that never dropped, a string failed inside a comparison
            raise ValidationError(f"lenet_grid: dropout must lie in [0, 1), got {dropout!r}")
        self.in_channels, self.out_channels, self.method = in_channels, out_channels, method
        self.image_size = _pair(image_size, "image_size", 1)
        c1, c2 = channels
        self.conv1 = GridConv(in_channels, c1, kernel_size, padding=padding)
        self.pool1 = GridPool(c1, kernel_size=pool_size)
        self.conv2 = GridConv(c1, c2, kernel_size, padding=padding)
        self.pool2 = GridPool(c2, kernel_size=pool_size)
        h, w = self.image_size
        self.specs: list[GridSpec] = []
        for layer in (self.conv1, self.pool1, self.conv2, self.pool2):
            spec = grid_spec(h, w, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
            self.specs.append(spec)
            h, w = spec.out_height, spec.out_width
        self.out_grid = (h, w)
        sizes = [c2 * h * w, *hidden, out_channels]
        mlp: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            if dropout > 0 and i > 0:
                mlp.append(nn.Dropout(dropout))
            mlp.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                mlp.append(nn.ReLU())
        self.mlp = nn.Sequential(*mlp)

    def reset_parameters(self) -> None:
        """Re-draw every weight, in the order the constructor drew them (so, under one seed, as a new model)."""
        for module in (self.conv1, self.conv2, *self.mlp):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, method={self.method!r}"

    def _num_images(self, x: Tensor, batch: Tensor | None) -> int:
        h, w = self.image_size
        if x.dim() != 2 or x.size(1) != self.in_channels or x.size(0) % (h * w):
            raise ValidationError(f"lenet_grid: pixel node features must have shape (N*{h}*{w}, {self.in_channels}) "
                                  f"for {h}x{w} images, got {tuple(x.shape)}")
        n = x.size(0) // (h * w)
        if batch is not None and batch.numel() and int(batch.max()) + 1 != n:
            raise ValidationError(f"lenet_grid: {x.size(0)} pixel nodes make {n} images of {h}x{w}, but batch "
                                  f"holds {int(batch.max()) + 1} graphs")
        return n

    def _check_input_grid(self, edge_index: Tensor, edge_attr: Tensor, offset: Tensor, n: int) -> None:
        """Every edge must be an edge of the first convolution's grid of these images (some may be missing):
        its source the input pixel that its target and kernel offset point to. Graphs built for another padding
        (another output grid) were read with the model's pixel numbering, so their messages silently landed in
        other pixels, and once batched in the neighbouring images."""
        s1 = self.specs[0]
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
            raise ValidationError(f"lenet_grid: edge_index must have shape (2, num_edges), got {got}")
        if offset.numel() != edge_index.size(1):
            raise ValidationError(f"lenet_grid: edge_attr must hold one kernel offset per edge, got "
                                  f"{offset.numel()} values for {edge_index.size(1)} edges")
        (kh, kw), (ph, _) = s1.kernel_size, s1.padding
        src, dst = edge_index

        def joined() -> Tensor:  # per edge: is it an edge of the grid
            expected, inside = edge_sources(dst, offset, s1)
            return ((dst >= 0) & (dst < n * s1.out_height * s1.out_width) & (offset >= 0) & (offset < kh * kw)
                    & inside & (src == expected))

        if passes(edge_index, [edge_attr], ("lenet_grid input", s1, n), lambda: bool(joined().all())):
            return
        ok = joined()
        if not bool(ok.all()):
            raise ValidationError(
                f"lenet_grid: edge_index is not the first convolution's grid of these {n} image(s) of "
                f"{s1.height}x{s1.width} pixels (kernel_size={s1.kernel_size}, padding={s1.padding}: "
                f"{s1.out_height}x{s1.out_width} outputs per image): {int((~ok).sum())} edge(s) do not join the "
                f"input pixel that their target and kernel offset point to; build the graphs with the model's "
                f"kernel_size and padding, e.g. digits_graphs(kernel_size={kh}, padding={ph})")

    def forward(self, x: Tensor, edge_index: Tensor | None = None, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, *, method: str | None = None) -> Tensor:
        method = method or self.method
        if not isinstance(x, Tensor):  # failed on x.dim() with an AttributeError
            raise ValidationError(f"lenet_grid: x must be a torch.Tensor of images (N, {self.in_channels}, H, W) or of "
                                  f"pixel node features (N*H*W, {self.in_channels}), got {type(x).__name__}")
        if x.dim() == 4:
            if tuple(x.shape[1:]) != (self.in_channels, *self.image_size):
                raise ValidationError(f"lenet_grid: images must have shape (N, {self.in_channels}, "
                                      f"{self.image_size[0]}, {self.image_size[1]}), got {tuple(x.shape)}")
            x = images_to_nodes(x)
        n = self._num_images(x, batch)
        s1, p1, s2, p2 = self.specs
        if edge_index is not None:  # the input graph is the first convolution's grid
            if edge_attr is None:
                raise ValidationError("lenet_grid: with edge_index, pass the kernel offsets as edge_attr")
            offset = edge_offsets(edge_attr, "lenet_grid")
            self._check_input_grid(edge_index, edge_attr, offset, n)
            g1 = GridGraph(edge_index=edge_index, offset=offset, edge_attr=offset,
                           meta=s1.meta().to(x.device).expand(n, -1), num_nodes=x.size(0))
        else:
            g1 = grid_graph(s1, n, device=x.device)
        h = F.relu(self.conv1(x, g1, method=method))
        h = self.pool1(h, grid_graph(p1, n, device=x.device), method=method)
        h = F.relu(self.conv2(h, grid_graph(s2, n, device=x.device), method=method))
        h = self.pool2(h, grid_graph(p2, n, device=x.device), method=method)
        oh, ow = self.out_grid
        h = h.view(n, oh * ow, -1).transpose(1, 2).reshape(n, -1)  # (channel, row, col) order
        return self.mlp(h)

    # ---------------------------------------------------------------- summary
    def summary(self) -> list[LayerSummary]:
        """Per-layer parameter and multiply-accumulate counts for one image.

        ``macs`` counts what the dense network computes (``C_out H_out W_out
        C_in k_h k_w`` for a convolution, ``in * out`` for a linear layer,
        nothing for ReLU and pooling), the convention of torch.nn profilers;
        ``mp_macs`` counts the message-passing path, whose grids have no
        edges into the zero padding.
        """
        rows: list[LayerSummary] = []
        s1, p1, s2, p2 = self.specs
        for name, layer, spec in (("conv1", self.conv1, s1), ("pool1", self.pool1, p1),
                                  ("conv2", self.conv2, s2), ("pool2", self.pool2, p2)):
            edges = grid_structure(spec, 1)[0].size(1)
            shape = (layer.out_channels, spec.out_height, spec.out_width)
            if isinstance(layer, GridConv):
                params = sum(p.numel() for p in layer.parameters())
                rows.append(LayerSummary(name, "grid_conv", shape, params, layer.macs(spec.height, spec.width),
                                         edges, layer.edge_macs(spec.height, spec.width)))
            else:
                rows.append(LayerSummary(name, f"grid_pool ({layer.reduce})", shape, 0, 0, edges, 0))
        k = 0
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                k += 1
                params = sum(p.numel() for p in module.parameters())
                macs = module.in_features * module.out_features
                rows.append(LayerSummary(f"fc{k}", "linear", (module.out_features,), params, macs, 0, macs))
        return rows

    def to_torch(self) -> nn.Sequential:
        """The equivalent ``torch.nn`` LeNet (Conv2d, ReLU, MaxPool2d, ..., Flatten, MLP) with copied weights."""
        layers: list[nn.Module] = [self.conv1.to_torch(), nn.ReLU(), self.pool1.to_torch(),
                                   self.conv2.to_torch(), nn.ReLU(), self.pool2.to_torch(), nn.Flatten()]
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                lin = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                                device=module.weight.device, dtype=module.weight.dtype)
                lin.load_state_dict(module.state_dict())
                layers.append(lin)
            elif isinstance(module, nn.Dropout):
                layers.append(nn.Dropout(module.p))
            else:
                layers.append(nn.ReLU())
        # in this model's mode: a fresh Sequential trains, so an eval model's dropout was active in the copy
        return nn.Sequential(*layers).train(self.training)


class GraphList(list):
    """A list of graphs that can be indexed by a tensor of indices (as :class:`~graphdl.train.GraphTask` does)."""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, Tensor):
            if index.dtype == torch.bool:
                index = index.nonzero().view(-1)
            return GraphList(list.__getitem__(self, int(i)) for i in index.view(-1).tolist())
        if isinstance(index, slice):
            return GraphList(list.__getitem__(self, index))
        if isinstance(index, (list, tuple)):
            return GraphList(list.__getitem__(self, int(i)) for i in index)
        return list.__getitem__(self, index)


def digits_graphs(kernel_size: int = 3, padding: int = 1) -> GraphList:
    """scikit-learn's 8x8 digits (1797 images, pixels scaled to [0, 1]) as grid graphs with labels ``y``.

    Each graph is the first convolution's grid of one image (``x`` the 64
    pixels, ``edge_attr`` the kernel offsets).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).div_(16.0)
    labels = torch.tensor(digits.target, dtype=torch.long)
    spec = grid_spec(8, 8, kernel_size, 1, padding, 1)
    edge_index, offset, _ = grid_structure(spec, 1)
    meta = spec.meta()
    return GraphList(GridGraph(x=img.reshape(64, 1), edge_index=edge_index, offset=offset, edge_attr=offset,
                               meta=meta, y=label.view(1), num_nodes=64)
                     for img, label in zip(images, labels))


def stratified_split(labels: Tensor | Sequence[int], seed: int, test_size: float = 0.2) -> dict[str, Tensor]:
    """Stratified train/test indices (scikit-learn's ``train_test_split`` with ``random_state=seed``)."""
    from sklearn.model_selection import train_test_split

    labels = torch.as_tensor(labels).view(-1).numpy()
    idx = list(range(len(labels)))
    train, test = train_test_split(idx, test_size=test_size, stratify=labels, random_state=seed)
    return {"train": torch.tensor(sorted(train)), "test": torch.tensor(sorted(test))}


def fit_digits(seed: int = 0, epochs: int = 60, batch_size: int = 64, lr: float = 1e-3, method: str = "auto",
               data: GraphList | None = None, dropout: float = 0.0, splits: dict[str, Tensor] | None = None,
               **trainer_kwargs: Any) -> Any:
    """Train :class:`LeNetGrid` on the digits through the shared Trainer; return the ``FitResult``.

    The protocol of the torch.nn reference: a stratified 80/20 split with
    ``random_state=seed``, Adam, no validation split (``splits`` overrides it). The Trainer monitors the
    training loss (so the reported test accuracy is the one of the epoch with
    the lowest training loss, nearly always one of the last); the test split
    is evaluated each epoch but never used for selection.
    """
    from graphdl.train import GraphTask, Trainer, seed_everything

    data = data if data is not None else digits_graphs()
    splits = splits if splits is not None else stratified_split(torch.cat([g.y for g in data]), seed)
    seed_everything(seed)
    model = LeNetGrid(method=method, dropout=dropout)
    trainer = Trainer(model, loss="cross_entropy", task=GraphTask(metric="acc", batch_size=batch_size),
                      optimizer="adam", lr=lr, epochs=epochs, seed=seed, progress=False, monitor="train_loss",
                      eval_splits=["test"], device="cpu", **trainer_kwargs)
    result = trainer.fit(data, splits)
    result.extra["model"] = model
    return result

