r"""Convolution and pooling as message passing on grid graphs.

A 2D convolution is message passing on the bipartite grid graph of
:func:`graphdl.graphs.grid`: each edge carries the kernel offset it stands
for, and the message along an edge multiplies the source pixel by the weight
matrix of that offset. On a regular grid the same layer lowers to
:func:`torch.nn.functional.conv2d` with the same parameters (``method="dense"``);
the message-passing path (``method="message_passing"``) computes the same
function edge by edge. ``lower="auto"`` (the default) lowers whenever the
input is a plain image tensor or an unedited grid graph.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing

from graphdl.errors import ValidationError
from graphdl.graphs.grid import (
    GridSpec,
    _cached_grid_spec,
    _grid_fields,
    _is_regular_grid,
    _pair,
    edge_offsets,
    graph_offsets,
    grid_pool,
    grid_structure,
    images_to_nodes,
    meta_spec,
    nodes_to_images,
    stored_offsets,
)
from graphdl.layers import LAYERS
from graphdl.validate import check_graph_device

__all__ = ["GridConv", "GridPool", "resolve_method"]

_LOWER = {True: "dense", False: "message_passing", "auto": "auto"}
_METHODS = ("auto", "dense", "message_passing")


def resolve_method(layer: str, lower: bool | str, method: str | None, lowerable: bool,
                   why_not: str = "the input is not a regular graph") -> str:
    """Pick ``"dense"`` or ``"message_passing"`` from a layer's ``lower`` switch and a call's ``method``."""
    if method is None:
        if lower not in _LOWER:
            raise ValidationError(f"{layer}: lower must be True, False or 'auto', got {lower!r}")
        method = _LOWER[lower]
    if method not in _METHODS:
        raise ValidationError(f"{layer}: method must be one of {_METHODS}, got {method!r}")
    if method == "auto":
        return "dense" if lowerable else "message_passing"
    if method == "dense" and not lowerable:
        raise ValidationError(f"{layer}: method='dense' needs a regular input, but {why_not}. "
                              f"Use method='message_passing'.")
    return method


def _check_spec(layer: str, graph_spec: GridSpec, kernel_size: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int]) -> None:
    got = (graph_spec.kernel_size, graph_spec.stride, graph_spec.padding, graph_spec.dilation)
    want = (kernel_size, stride, padding, dilation)
    if got != want:
        raise ValidationError(
            f"{layer}: the grid graph was built with kernel_size={got[0]}, stride={got[1]}, "
            f"padding={got[2]}, dilation={got[3]}, but the layer has kernel_size={want[0]}, "
            f"stride={want[1]}, padding={want[2]}, dilation={want[3]}. Build the graph with "
            f"graphdl.graphs.grid(images, {want[0]}, {want[1]}, {want[2]}, {want[3]})."
        )


def _check_num_pixels(layer: str, x: Tensor, num_images: int, spec: GridSpec) -> None:
    """``x`` must have one row per input pixel of the grid graph's images."""
    if x.size(0) != num_images * spec.height * spec.width:
        raise ValidationError(
            f"{layer}: the grid graph holds {num_images} image(s) of {spec.height}x{spec.width} pixels, "
            f"{num_images * spec.height * spec.width} pixel nodes, but the node features have {x.size(0)} rows; "
            f"pass the features of this graph's pixels (graph.x)"
        )


def _sort_by_offset(edge_index: Tensor, offset: Tensor, num_offsets: int,
                    layer: str) -> tuple[Tensor, list[int]]:
    """Group the edges by offset: (edge_index sorted by offset, edges per offset)."""
    if offset.numel() != edge_index.size(1):
        raise ValidationError(f"{layer}: got {offset.numel()} offsets for {edge_index.size(1)} edges")
    if offset.numel():
        lo, hi = int(offset.min()), int(offset.max())
        if lo < 0 or hi >= num_offsets:
            raise ValidationError(f"{layer}: edge offsets must lie in [0, {num_offsets}) for this kernel, "
                                  f"got values in [{lo}, {hi}]")
        if not bool((offset[1:] >= offset[:-1]).all()):
            order = torch.argsort(offset, stable=True)
            edge_index, offset = edge_index[:, order], offset[order]
    counts = torch.bincount(offset, minlength=num_offsets).tolist()
    return edge_index, counts


@LAYERS.register("grid_conv", aliases=("conv2d_graph",), graph="grid",
                 summary="2D convolution as message passing on a grid graph (weight per kernel offset)")
class GridConv(MessagePassing):
    r"""2D convolution as message passing with one weight matrix per kernel offset.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{b} + \sum_{j \in \mathcal{N}(i)}
        \mathbf{W}_{o(j,i)}^{\top} \mathbf{x}_j

    where :math:`\mathcal{N}(i)` are the input pixels in the receptive field of
    output pixel :math:`i` and :math:`o(j, i) = a k_w + b` is the kernel
    offset of edge :math:`j \to i` (see :func:`graphdl.graphs.grid`). With
    :math:`\mathbf{W}_{a k_w + b}[c, c'] = \mathbf{K}[c', c, a, b]` this is
    :class:`torch.nn.Conv2d` with kernel :math:`\mathbf{K}`, and the weight is
    stored in Conv2d's layout ``(out_channels, in_channels, kh, kw)``.

    Messages are computed as a gather of :math:`\mathbf{x}_j` followed by one
    matrix product per offset (edges grouped by offset); the sum over incoming
    edges is a scatter-add.

    Args:
        in_channels: Input channels :math:`C_{in}`.
        out_channels: Output channels :math:`C_{out}`.
        kernel_size: Kernel size (int or pair).
        stride: Stride (int or pair).
        padding: Zero padding (int or pair), or ``"valid"`` (none) / ``"same"`` (stride 1, output as
            large as the input; symmetric kernels only), as in :class:`torch.nn.Conv2d`.
        dilation: Dilation (int or pair).
        bias: Whether to add a learnable bias :math:`\mathbf{b}`.
        lower: ``"auto"`` runs the dense convolution on a regular grid and
            message passing otherwise; ``True`` always lowers, ``False`` never.

    Shapes:
        - input: images :math:`(N, C_{in}, H, W)`, or node features
          :math:`(N H W, C_{in})` with a grid graph, or node features with
          ``edge_index`` :math:`(2, |\mathcal{E}|)`, ``offset``
          :math:`(|\mathcal{E}|)` and ``size`` ``(num_src, num_dst)`` (needed
          unless the output grid is the input grid: stride 1, "same" padding;
          likewise for a graph without grid metadata)
        - output: :math:`(N, C_{out}, H_{out}, W_{out})` for images,
          :math:`(N H_{out} W_{out}, C_{out})` for graphs
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int] = 3,
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
                 dilation: int | Sequence[int] = 1, bias: bool = True, lower: bool | str = "auto") -> None:
        super().__init__(aggr="add")
        if in_channels < 1 or out_channels < 1:
            raise ValidationError(f"grid_conv: in_channels and out_channels must be >= 1, "
                                  f"got {in_channels} and {out_channels}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.dilation = _pair(dilation, "dilation", 1)
        self.padding = _resolve_padding(padding, self.kernel_size, self.stride, self.dilation)
        resolve_method("grid_conv", lower, None, True)
        self.lower = lower
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of :class:`torch.nn.Conv2d`."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def num_offsets(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def offset_weights(self) -> Tensor:
        """The weight as ``(kh*kw, in_channels, out_channels)``: one matrix per offset."""
        return self.weight.permute(2, 3, 1, 0).reshape(self.num_offsets, self.in_channels, self.out_channels)

    def spec(self, height: int, width: int) -> GridSpec:
        """The grid geometry of this layer on an ``height x width`` image."""
        return _cached_grid_spec(height, width, self.kernel_size, self.stride, self.padding, self.dilation)

    # ----------------------------------------------------------------- forward
    def forward(self, x: Tensor | Data, graph: Data | Tensor | None = None, offset: Tensor | None = None,
                size: tuple[int, int] | None = None, *, method: str | None = None,
                edge_attr: Tensor | None = None) -> Tensor:
        """Apply the convolution; see the class docstring for the accepted inputs.

        ``method`` overrides the ``lower`` switch for this call: ``"dense"``,
        ``"message_passing"`` or ``"auto"``. ``edge_attr`` is accepted as
        another name for ``offset`` (the integer kernel offset of each edge).
        """
        if offset is None and edge_attr is not None:
            offset = edge_attr
        if isinstance(x, Data):
            graph, x = x, x.x
        if not isinstance(x, Tensor):
            raise ValidationError(f"grid_conv: x must be a tensor or a grid graph, got {type(x).__name__}")
        if graph is None:
            return self._forward_images(x, method)
        if isinstance(graph, Data):
            return self._forward_graph(x, graph, method, size)
        if offset is None:
            raise ValidationError("grid_conv: with an edge_index, pass the kernel offset of each edge as "
                                  "`offset` (and size=(num_src, num_dst) for a strided or padded grid)")
        resolve_method("grid_conv", self.lower, method, False, "a bare edge_index carries no grid geometry")
        self._check_features(x)
        if not isinstance(graph, Tensor) or graph.dim() != 2 or graph.size(0) != 2 or graph.dtype != torch.long:
            got = f"{graph.dtype} of shape {tuple(graph.shape)}" if isinstance(graph, Tensor) else type(graph).__name__
            raise ValidationError(f"grid_conv: edge_index must be a long tensor of shape (2, num_edges), got {got}")
        check_graph_device("grid_conv", x, edge_index=graph, offset=offset)
        return self._message_passing(x, graph, edge_offsets(offset, "grid_conv"), self._bare_size(x, size), None)

    def _bare_size(self, x: Tensor, size: tuple[int, int] | None) -> tuple[int, int]:
        """``size`` of a call with a bare ``edge_index``: needed unless the output grid is the input grid
        (stride 1 and "same" padding); without it the output would have one (bias) row per input node."""
        if size is None:
            same = self.stride == (1, 1) and all(2 * p == d * (k - 1) for p, d, k in
                                                 zip(self.padding, self.dilation, self.kernel_size))
            if not same:
                raise ValidationError(
                    f"grid_conv: with a bare edge_index and stride={self.stride}, padding={self.padding} the "
                    f"output grid is not the input grid, so its size is unknown; pass size=(num_src, num_dst), "
                    f"e.g. (g.num_nodes, g.num_out_nodes) of the graph from graphdl.graphs.grid, or pass the "
                    f"grid graph itself")
            return (x.size(0), x.size(0))
        try:
            src, dst = (operator.index(v) for v in size)
        except (TypeError, ValueError):
            raise ValidationError(f"grid_conv: size must be a pair of ints (num_src, num_dst), got {size!r}") from None
        if src != x.size(0) or dst < 0:
            raise ValidationError(f"grid_conv: size=({src}, {dst}) must give x's {x.size(0)} rows as the source "
                                  f"nodes and a number of output nodes >= 0")
        return (src, dst)

    def _check_features(self, x: Tensor) -> None:
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValidationError(f"grid_conv: node features must have shape (num_nodes, {self.in_channels}), "
                                  f"got {tuple(x.shape)}")
        self._check_dtype(x, "x")

    def _check_dtype(self, x: Tensor, name: str) -> None:
        """``x`` must have the weights' dtype and be on their device (torch fails deep inside otherwise)."""
        if x.dtype != self.weight.dtype:
            raise ValidationError(f"grid_conv: {name} has dtype {x.dtype} but the weights are {self.weight.dtype}; "
                                  f"convert with {name}.to({self.weight.dtype}) or the layer with .to({x.dtype})")
        if x.device != self.weight.device:
            raise ValidationError(f"grid_conv: {name} is on {x.device} but the weights are on {self.weight.device}; "
                                  f"move it with {name}.to({str(self.weight.device)!r}) or the layer with "
                                  f".to({str(x.device)!r})")

    def _forward_images(self, images: Tensor, method: str | None) -> Tensor:
        if images.dim() != 4 or images.size(1) != self.in_channels:
            raise ValidationError(
                f"grid_conv: images must have shape (N, {self.in_channels}, H, W), got {tuple(images.shape)}"
                + ("; for node features pass the grid graph too" if images.dim() == 2 else "")
                + ("; for one image pass images[None]" if images.dim() == 3 else "")
            )
        self._check_dtype(images, "images")
        n, _, h, w = images.shape
        spec = self.spec(h, w)
        if resolve_method("grid_conv", self.lower, method, True) == "dense":
            return F.conv2d(images, self.weight, self.bias, self.stride, self.padding, self.dilation)
        edge_index, offset, counts = grid_structure(spec, n, images.device)
        out = self._message_passing(images_to_nodes(images), edge_index, offset,
                                    (n * h * w, n * spec.out_height * spec.out_width), counts)
        return nodes_to_images(out, n, spec.out_height, spec.out_width)

    def _forward_graph(self, x: Tensor, graph: Data, method: str | None,
                       size: tuple[int, int] | None = None) -> Tensor:
        self._check_features(x)
        edge_index, meta, offset, edge_attr, stored = _grid_fields(graph)
        check_graph_device("grid_conv", x, None, edge_index=edge_index, offset=offset, edge_attr=edge_attr)
        if meta is not None:
            spec = meta_spec(meta)
            _check_spec("grid_conv", spec, self.kernel_size, self.stride, self.padding, self.dilation)
            n = meta.size(0)
            _check_num_pixels("grid_conv", x, n, spec)
            size = (n * spec.height * spec.width, n * spec.out_height * spec.out_width)
            regular = _is_regular_grid(edge_index, stored, meta, spec)
        else:
            # no geometry: as for a bare edge_index, the output grid's size must be given unless it is
            # the input grid (it silently had one row per input node, the surplus rows only the bias)
            spec, n, regular, size = None, 0, False, self._bare_size(x, size)
        if resolve_method("grid_conv", self.lower, method, regular,
                          "the graph has no grid metadata or its edges were changed") == "dense":
            assert spec is not None
            out = F.conv2d(nodes_to_images(x, n, spec.height, spec.width), self.weight, self.bias,
                           self.stride, self.padding, self.dilation)
            return images_to_nodes(out)
        return self._message_passing(x, edge_index, graph_offsets(graph, "grid_conv"), size, None)

    def _message_passing(self, x: Tensor, edge_index: Tensor, offset: Tensor,
                         size: tuple[int, int] | None, counts: Sequence[int] | None) -> Tensor:
        if counts is None:
            edge_index, counts = _sort_by_offset(edge_index, offset, self.num_offsets, "grid_conv")
        if size is None:
            size = (x.size(0), x.size(0))
        out = self.propagate(edge_index, x=x, counts=list(counts), size=size)
        return out + self.bias if self.bias is not None else out

    def message(self, x_j: Tensor, counts: list[int]) -> Tensor:
        weights = self.offset_weights()
        parts = [xj @ weights[k] for k, xj in enumerate(torch.split(x_j, counts)) if counts[k]]
        return torch.cat(parts) if parts else x_j.new_zeros(0, self.out_channels)

    # ------------------------------------------------------------ torch.nn I/O
    @classmethod
    def from_torch(cls, conv: nn.Conv2d, lower: bool | str = "auto") -> GridConv:
        """A grid convolution with the hyper-parameters and a copy of the weights of ``conv``."""
        if not isinstance(conv, nn.Conv2d):
            raise ValidationError(f"grid_conv.from_torch expects a torch.nn.Conv2d, got {type(conv).__name__}")
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    _torch_padding(conv), conv.dilation, conv.bias is not None, lower)
        # convert before copying: a float64 module's weights copied into float32 ones were rounded
        layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
        return layer.load_from_torch(conv).train(conv.training)

    def load_from_torch(self, conv: nn.Conv2d) -> GridConv:
        """Copy the weights of ``conv`` into this layer (hyper-parameters must match)."""
        if not isinstance(conv, nn.Conv2d):
            raise ValidationError(f"grid_conv: can only load weights from a torch.nn.Conv2d, got "
                                  f"{type(conv).__name__}")
        if conv.groups != 1:
            raise ValidationError(f"grid_conv: grouped convolutions are not supported (groups={conv.groups})")
        if conv.padding_mode != "zeros":
            raise ValidationError(f"grid_conv: only zero padding is supported, got padding_mode="
                                  f"{conv.padding_mode!r}")
        mine = {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "bias": self.bias is not None}
        theirs = {"kernel_size": tuple(conv.kernel_size), "stride": tuple(conv.stride),
                  "padding": _torch_padding(conv), "dilation": tuple(conv.dilation), "bias": conv.bias is not None}
        for key in mine:
            if mine[key] != theirs[key]:
                raise ValidationError(f"grid_conv: mismatched {key}: the torch module has {theirs[key]}, "
                                      f"this layer {mine[key]}")
        if conv.weight.shape != self.weight.shape:
            raise ValidationError(
                f"grid_conv: mismatched weight shape: the torch module's weight is {tuple(conv.weight.shape)} "
                f"(out_channels, in_channels, kh, kw), this layer's is {tuple(self.weight.shape)}"
            )
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            if self.bias is not None:
                self.bias.copy_(conv.bias)
        return self

    def to_torch(self) -> nn.Conv2d:
        """The equivalent :class:`torch.nn.Conv2d`, with a copy of the weights."""
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, bias=self.bias is not None,
                         device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(self.weight)
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.train(self.training)

    def macs(self, height: int, width: int) -> int:
        """Multiply-accumulates per image of the dense convolution (``C_out H_out W_out C_in k_h k_w``)."""
        spec = self.spec(height, width)
        return self.out_channels * spec.out_height * spec.out_width * self.in_channels * self.num_offsets

    def edge_macs(self, height: int, width: int) -> int:
        """Multiply-accumulates per image of the message-passing path (``|E| C_in C_out``, no padding edges)."""
        edge_index, _, _ = grid_structure(self.spec(height, width), 1)
        return edge_index.size(1) * self.in_channels * self.out_channels

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}, "
                f"lower={self.lower!r}")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.extra_repr()})"


def _resolve_padding(padding: Any, kernel_size: tuple[int, int], stride: tuple[int, int],
                     dilation: tuple[int, int]) -> tuple[int, int]:
    """Padding as a pair of ints; ``"valid"`` and ``"same"`` as :class:`torch.nn.Conv2d` reads them."""
    if padding == "valid":
        return (0, 0)
    if padding != "same":
        return _pair(padding, "padding", 0)
    if stride != (1, 1):
        raise ValidationError(f"grid_conv: padding='same' needs stride 1 (as in torch.nn.Conv2d), got "
                              f"stride={stride}; pad explicitly")
    pads = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        if total % 2:
            raise ValidationError(f"grid_conv: padding='same' with kernel {k} and dilation {d} pads "
                                  f"asymmetrically, which grid graphs do not support; pad explicitly")
        pads.append(total // 2)
    return (pads[0], pads[1])


def _torch_padding(conv: nn.Conv2d) -> tuple[int, int]:
    return _resolve_padding(conv.padding, tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation))


@LAYERS.register("grid_pool", graph="grid", summary="Max or mean pooling as coarsening of a grid graph")
class GridPool(nn.Module):
    r"""Max or mean pooling as graph coarsening on a grid graph.

    .. math::
        \mathbf{x}^{\prime}_i = \max_{j \in \mathcal{N}(i)} \mathbf{x}_j
        \quad\text{or}\quad
        \mathbf{x}^{\prime}_i = \frac{1}{k_h k_w} \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j

    over the input pixels :math:`\mathcal{N}(i)` of window :math:`i` (the
    mean divides by the window size, padding counted as zeros, as
    :func:`~torch.nn.functional.avg_pool2d` does by default; with
    ``count_include_pad=False`` by :math:`|\mathcal{N}(i)|`). Equals
    :func:`~torch.nn.functional.max_pool2d` / :func:`~torch.nn.functional.avg_pool2d`
    (``ceil_mode=False``).

    Args:
        in_channels: Channels (pooling keeps them); inputs with others are refused, ``-1`` takes any.
        out_channels: Must equal ``in_channels`` (``None`` for the same).
        kernel_size: Window size.
        stride: Window stride (default: ``kernel_size``).
        padding: Implicit padding (at most half the window, as in torch).
        dilation: Window dilation (max pooling; mean pooling only by message passing).
        reduce: ``"max"`` or ``"mean"``.
        count_include_pad: For ``"mean"``: divide by the full window size.
        lower: ``"auto"``, ``True`` or ``False``, as in :class:`GridConv`.

    Shapes:
        - input: :math:`(N, C, H, W)` images or :math:`(N H W, C)` node
          features with a grid graph
        - output: :math:`(N, C, H_{out}, W_{out})` or :math:`(N H_{out} W_{out}, C)`
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size: int | Sequence[int] = 2,
                 stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
                 dilation: int | Sequence[int] = 1, reduce: str = "max", count_include_pad: bool = True,
                 lower: bool | str = "auto") -> None:
        super().__init__()
        if out_channels is not None and out_channels != in_channels:
            raise ValidationError(f"grid_pool: pooling keeps the channels, so out_channels must equal "
                                  f"in_channels={in_channels}, got {out_channels}")
        try:
            channels = None if isinstance(in_channels, bool) else operator.index(in_channels)
        except TypeError:
            channels = None
        if channels is None or not (channels >= 1 or channels == -1):  # 0 and -2 took any channels
            raise ValidationError(f"grid_pool: in_channels must be a number of channels >= 1 (or -1 for any), "
                                  f"got {in_channels!r}")
        if reduce not in ("max", "mean"):
            raise ValidationError(f"grid_pool: reduce must be 'max' or 'mean', got {reduce!r}")
        self.in_channels = self.out_channels = int(in_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride if stride is not None else self.kernel_size, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation", 1)
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise ValidationError(f"grid_pool: padding must be at most half the kernel size, got "
                                      f"padding={self.padding} for kernel_size={self.kernel_size}")
        self.reduce = reduce
        self.count_include_pad = count_include_pad
        resolve_method("grid_pool", lower, None, True)
        self.lower = lower

    @property
    def _dense_ok(self) -> bool:
        return self.reduce == "max" or self.dilation == (1, 1)

    def spec(self, height: int, width: int) -> GridSpec:
        return _cached_grid_spec(height, width, self.kernel_size, self.stride, self.padding, self.dilation)

    def _dense(self, images: Tensor) -> Tensor:
        if self.reduce == "max":
            return F.max_pool2d(images, self.kernel_size, self.stride, self.padding, self.dilation)
        return F.avg_pool2d(images, self.kernel_size, self.stride, self.padding,
                            count_include_pad=self.count_include_pad)

    def _check_channels(self, channels: int, message: str) -> None:
        """The channels must be ``in_channels`` (any with ``in_channels=-1``), as :class:`GridConv` checks."""
        if self.in_channels > 0 and channels != self.in_channels:
            raise ValidationError(f"grid_pool: {message}; build it with in_channels={channels} (or -1 for any)")

    def _kernel_numel(self) -> int | None:
        return self.kernel_size[0] * self.kernel_size[1] if self.count_include_pad else None

    def forward(self, x: Tensor | Data, graph: Data | None = None, *, method: str | None = None) -> Tensor:
        """Pool images ``(N, C, H, W)`` or the node features of a grid graph."""
        if isinstance(x, Data):
            graph, x = x, x.x
        why = "dilated mean pooling has no dense kernel"
        if graph is None:
            if not isinstance(x, Tensor) or x.dim() != 4:
                raise ValidationError(f"grid_pool: images must be a 4D tensor (N, C, H, W), got "
                                      f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
            self._check_channels(x.size(1), f"images must have shape (N, {self.in_channels}, H, W), got "
                                            f"{tuple(x.shape)}")
            n, _, h, w = x.shape
            spec = self.spec(h, w)
            if resolve_method("grid_pool", self.lower, method, self._dense_ok, why) == "dense":
                return self._dense(x)
            edge_index, _, _ = grid_structure(spec, n, x.device)
            out = grid_pool(images_to_nodes(x), edge_index, n * spec.out_height * spec.out_width,
                            self.reduce, self._kernel_numel())
            return nodes_to_images(out, n, spec.out_height, spec.out_width)
        edge_index, meta, offset, edge_attr, stored = _grid_fields(graph)
        if meta is None:
            raise ValidationError("grid_pool: the graph must be a grid graph from graphdl.graphs.grid")
        if not isinstance(x, Tensor) or x.dim() != 2:
            raise ValidationError(f"grid_pool: node features must have shape (num_nodes, channels), got "
                                  f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        self._check_channels(x.size(1), f"node features must have shape (num_nodes, {self.in_channels}), got "
                                        f"{tuple(x.shape)}")
        check_graph_device("grid_pool", x, None, edge_index=edge_index, offset=offset, edge_attr=edge_attr)
        spec = meta_spec(meta)
        _check_spec("grid_pool", spec, self.kernel_size, self.stride, self.padding, self.dilation)
        n = meta.size(0)
        _check_num_pixels("grid_pool", x, n, spec)
        regular = self._dense_ok and _is_regular_grid(edge_index, stored, meta, spec)
        if resolve_method("grid_pool", self.lower, method, regular, why + " or the graph is not regular") == "dense":
            return images_to_nodes(self._dense(nodes_to_images(x, n, spec.height, spec.width)))
        num_out = n * spec.out_height * spec.out_width
        return grid_pool(x, self._window_ordered(graph, x.size(0), num_out), num_out, self.reduce,
                         self._kernel_numel())

    def _window_ordered(self, graph: Data, num_in: int, num_out: int) -> Tensor:
        """The graph's edges, checked to join its pixels, in window order (by kernel offset) where the offsets
        are known: max pooling sends the gradient of a tie to the first maximal edge, and torch (and the dense
        path) to the first maximum in window order, so a shuffled grid sent it elsewhere."""
        edge_index = graph.edge_index
        if (not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2
                or edge_index.dtype != torch.long):
            got = (f"{edge_index.dtype} of shape {tuple(edge_index.shape)}" if isinstance(edge_index, Tensor)
                   else type(edge_index).__name__)
            raise ValidationError(f"grid_pool: edge_index must be a long tensor of shape (2, num_edges), got {got}")
        if edge_index.numel():
            for row, name, bound in ((0, "sources", num_in), (1, "targets", num_out)):
                lo, hi = int(edge_index[row].min()), int(edge_index[row].max())
                if lo < 0 or hi >= bound:
                    raise ValidationError(f"grid_pool: edge {name} must lie in [0, {bound}) for this grid graph "
                                          f"({graph['meta'].size(0)} image(s)), got values in [{lo}, {hi}]; "
                                          f"rebuild the graph with graphdl.graphs.grid")
        offset = stored_offsets(graph)
        if (self.reduce != "max" or not isinstance(offset, Tensor) or offset.numel() != edge_index.size(1)
                or bool((offset.view(-1)[1:] >= offset.view(-1)[:-1]).all())):
            return edge_index  # pooling needs no offsets: without usable ones the edge order stands
        return edge_index[:, torch.argsort(offset.view(-1), stable=True)]

    @classmethod
    def from_torch(cls, pool: nn.MaxPool2d | nn.AvgPool2d, in_channels: int = -1,
                   lower: bool | str = "auto") -> GridPool:
        """The grid pooling equal to a ``torch.nn.MaxPool2d`` or ``AvgPool2d`` (no ``ceil_mode``).

        A torch pooling module takes any number of channels, as does the result unless ``in_channels`` is given.
        """
        if not isinstance(pool, (nn.MaxPool2d, nn.AvgPool2d)):
            raise ValidationError(f"grid_pool.from_torch expects nn.MaxPool2d or nn.AvgPool2d, got "
                                  f"{type(pool).__name__}")
        if pool.ceil_mode:
            raise ValidationError("grid_pool: ceil_mode=True is not supported")
        if isinstance(pool, nn.MaxPool2d):
            if pool.return_indices:
                raise ValidationError("grid_pool: return_indices=True is not supported")
            return cls(in_channels, None, pool.kernel_size, pool.stride, pool.padding, pool.dilation, "max",
                       lower=lower).train(pool.training)
        if pool.divisor_override is not None:
            raise ValidationError("grid_pool: divisor_override is not supported")
        return cls(in_channels, None, pool.kernel_size, pool.stride, pool.padding, 1, "mean",
                   pool.count_include_pad, lower).train(pool.training)

    def to_torch(self) -> nn.Module:
        """The equivalent ``torch.nn.MaxPool2d`` / ``AvgPool2d``."""
        if self.reduce == "max":
            return nn.MaxPool2d(self.kernel_size, self.stride, self.padding, self.dilation).train(self.training)
        if self.dilation != (1, 1):
            raise ValidationError("grid_pool: dilated mean pooling has no torch.nn equivalent")
        return nn.AvgPool2d(self.kernel_size, self.stride, self.padding,
                            count_include_pad=self.count_include_pad).train(self.training)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, reduce={self.reduce!r}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, lower={self.lower!r}")
