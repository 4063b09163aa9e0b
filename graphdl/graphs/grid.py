r"""Images as grid graphs: a convolution or a pooling window is message passing.

A convolution with kernel :math:`k_h \times k_w`, stride :math:`s`, padding
:math:`p` and dilation :math:`d` is a bipartite graph from the input pixels to
the output pixels. Output pixel :math:`(o_y, o_x)` receives one edge from each
input pixel of its receptive field,

.. math::
    (i_y, i_x) = (o_y s_h - p_h + a\,d_h,\; o_x s_w - p_w + b\,d_w),
    \qquad 0 \le a < k_h,\; 0 \le b < k_w,

and the edge carries the kernel offset :math:`a k_w + b` as an integer
attribute (``offset`` and ``edge_attr``). Zero padding adds no nodes and no
edges: a padded pixel contributes nothing to a sum. The output has
:math:`H_{out} = \lfloor (H + 2p_h - d_h (k_h - 1) - 1) / s_h \rfloor + 1`
rows (and likewise columns), as in :class:`torch.nn.Conv2d`.

Pooling is coarsening on the same graph: each output node reduces (max or mean)
over its incoming edges.

Node order is image-major, then row-major (``x = images.permute(0, 2, 3, 1)
.reshape(-1, C)``), so the node features of a grid graph and an
``(N, C, H, W)`` tensor convert into each other with a reshape.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter

from graphdl.errors import ValidationError
from graphdl.graphs.structure_cache import kept, passes

__all__ = [
    "GridGraph",
    "GridSpec",
    "grid",
    "grid_spec",
    "meta_spec",
    "grid_structure",
    "grid_pool",
    "max_pool",
    "mean_pool",
    "images_to_nodes",
    "nodes_to_images",
    "is_regular_grid",
    "edge_offsets",
    "edge_sources",
    "graph_offsets",
    "stored_offsets",
    "grid_graph",
]

# Layout of the ``meta`` row stored on every grid graph.
_META_FIELDS = ("height", "width", "out_height", "out_width", "kernel_h", "kernel_w",
                "stride_h", "stride_w", "padding_h", "padding_w", "dilation_h", "dilation_w")


def _pair(value: int | Sequence[int], name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValidationError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValidationError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


class GridSpec(NamedTuple):
    """Geometry of one grid graph (one image)."""

    height: int
    width: int
    out_height: int
    out_width: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    @property
    def num_offsets(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def meta(self) -> Tensor:
        """The spec as a ``(1, 12)`` long tensor (one row per image once batched)."""
        return torch.tensor([[self.height, self.width, self.out_height, self.out_width,
                              *self.kernel_size, *self.stride, *self.padding, *self.dilation]],
                            dtype=torch.long)

    @classmethod
    def from_meta(cls, row: Sequence[int]) -> GridSpec:
        h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw = (int(v) for v in row)
        return cls(h, w, oh, ow, (kh, kw), (sh, sw), (ph, pw), (dh, dw))


def grid_spec(height: int, width: int, kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
              padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1) -> GridSpec:
    """Check the convolution geometry and compute the output size."""
    k = _pair(kernel_size, "kernel_size", 1)
    s = _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    d = _pair(dilation, "dilation", 1)
    out = []
    for axis, size, kk, ss, pp, dd in (("height", height, k[0], s[0], p[0], d[0]),
                                       ("width", width, k[1], s[1], p[1], d[1])):
        span = dd * (kk - 1) + 1
        if size + 2 * pp < span:
            raise ValidationError(
                f"kernel larger than the padded image: along the {axis}, the kernel spans "
                f"{span} pixels (kernel_size={kk}, dilation={dd}) but the padded image has "
                f"{size} + 2*{pp} = {size + 2 * pp}. Use a smaller kernel or dilation, or more padding."
            )
        out.append((size + 2 * pp - span) // ss + 1)
    return GridSpec(int(height), int(width), out[0], out[1], k, s, p, d)


@lru_cache(maxsize=256, typed=True)  # typed: a height of 4.0 is not served the spec of 4
def _grid_spec_lru(height: int, width: int, kernel_size: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int]) -> GridSpec:
    return grid_spec(height, width, kernel_size, stride, padding, dilation)


def _cached_grid_spec(height: int, width: int, kernel_size: tuple[int, int], stride: tuple[int, int],
                      padding: tuple[int, int], dilation: tuple[int, int]) -> GridSpec:
    """:func:`grid_spec`, cached for the layers, which ask on every forward (a refusal is raised anew each time)."""
    try:
        return _grid_spec_lru(height, width, kernel_size, stride, padding, dilation)
    except TypeError:  # an unhashable argument (a list): not cached
        return grid_spec(height, width, kernel_size, stride, padding, dilation)


@lru_cache(maxsize=64)
@torch.inference_mode(False)  # cached for every later call: tensors made under inference_mode kept no version
def _single_structure(spec: GridSpec) -> tuple[Tensor, Tensor]:  # counter and could not be saved for backward
    """Edges of one image's grid graph, offset-major (sorted by offset)."""
    h, w, oh, ow = spec.height, spec.width, spec.out_height, spec.out_width
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = spec.kernel_size, spec.stride, spec.padding, spec.dilation
    oy = torch.arange(oh).repeat_interleave(ow)  # (Ho*Wo,) row-major output pixels
    ox = torch.arange(ow).repeat(oh)
    ky = torch.arange(kh).repeat_interleave(kw)  # (K,) offsets a*kw + b
    kx = torch.arange(kw).repeat(kh)
    iy = oy[None, :] * sh - ph + ky[:, None] * dh  # (K, Ho*Wo)
    ix = ox[None, :] * sw - pw + kx[:, None] * dw
    valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    src = (iy * w + ix)[valid]
    dst = (oy * ow + ox).expand(kh * kw, -1)[valid]
    offset = torch.arange(kh * kw)[:, None].expand(-1, oh * ow)[valid]
    return torch.stack([src, dst]), offset


@lru_cache(maxsize=64)
@torch.inference_mode(False)  # normal tensors, as _single_structure's
def _batched_structure(spec: GridSpec, num_images: int, device: str) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    edge_index, offset = _single_structure(spec)
    shift = torch.tensor([[spec.height * spec.width], [spec.out_height * spec.out_width]])
    # offset-major over the whole batch: for each offset, every image's edges
    counts = torch.bincount(offset, minlength=spec.num_offsets)
    starts = torch.cumsum(counts, 0) - counts
    parts_ei, parts_off = [], []
    for k in range(spec.num_offsets):
        sl = slice(int(starts[k]), int(starts[k] + counts[k]))
        ei = edge_index[:, sl]
        ei = (ei[:, None, :] + shift[:, :, None] * torch.arange(num_images)[None, :, None]).reshape(2, -1)
        parts_ei.append(ei)
        parts_off.append(offset[sl].repeat(num_images))
    ei = torch.cat(parts_ei, 1).to(device)
    off = torch.cat(parts_off).to(device)
    return ei, off, tuple(int(c) * num_images for c in counts)


def grid_structure(spec: GridSpec, num_images: int = 1,
                   device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """Edges of ``num_images`` disjoint grid graphs, sorted by kernel offset.

    Returns ``(edge_index, offset, counts)``: source indices run over the
    ``num_images * H * W`` input pixels, target indices over the
    ``num_images * H_out * W_out`` output pixels, and ``counts[k]`` is the
    number of edges with offset ``k`` (the edges with offset ``k`` are one
    contiguous block). Cached: layers call this on every forward.
    """
    key = (spec, int(num_images), str(torch.device(device)))
    edge_index, offset, counts = _batched_structure(*key)
    if edge_index._version or offset._version:  # a caller edited the shared tensors in place: build them anew
        _batched_structure.cache_clear()
        edge_index, offset, counts = _batched_structure(*key)
    return edge_index, offset, counts


class GridGraph(Data):
    """One image as a bipartite grid graph (see the module docstring).

    Attributes: ``x`` (input pixels, ``(H*W, C)``), ``edge_index`` (input pixel
    -> output pixel), ``offset`` and ``edge_attr`` (kernel offset of each
    edge), ``pos`` (``(row, col)`` of each input pixel) and ``meta`` (a
    ``(1, 12)`` row with the geometry; one row per image once batched).
    Batching with :class:`torch_geometric.data.Batch` shifts the sources by the
    number of input pixels and the targets by the number of output pixels.
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "edge_index":
            spec = self.spec
            return torch.tensor([[spec.height * spec.width], [spec.out_height * spec.out_width]])
        return super().__inc__(key, value, *args, **kwargs)

    @property
    def spec(self) -> GridSpec:
        """The geometry (checked to be the same for every image of a batch)."""
        return meta_spec(self["meta"])

    @property
    def num_images(self) -> int:
        return int(self["meta"].size(0))

    @property
    def num_out_nodes(self) -> int:
        spec = self.spec
        return self.num_images * spec.out_height * spec.out_width


def meta_spec(meta: Any) -> GridSpec:
    """The geometry a grid graph's ``meta`` (one row per image) holds, checked to be the same for every image.

    Kept per ``meta`` tensor until it is edited in place or replaced: the layers read it on every forward, and
    comparing the rows (and reading them back from a GPU) cost more than the small convolutions after it."""
    if not isinstance(meta, Tensor):
        raise ValidationError(f"grid graph: meta must be a (num_images, 12) tensor of the geometry, got "
                              f"{type(meta).__name__}; build the graph with graphdl.graphs.grid")
    return kept(meta, "grid spec", lambda: _read_meta(meta))


def _read_meta(meta: Tensor) -> GridSpec:
    if meta.dim() != 2 or meta.size(1) != len(_META_FIELDS):
        raise ValidationError(f"grid graph: meta must have shape (num_images, 12), got {tuple(meta.shape)}")
    if meta.size(0) == 0:  # meta[0] failed with an IndexError
        raise ValidationError("grid graph: meta has no rows, so the graph holds no image and no geometry; "
                              "build it for at least one image")
    # rows that are one row expanded (grid_graph's) are equal without comparing them
    same_row = meta.stride(0) == 0 and not meta.is_floating_point()
    if meta.size(0) > 1 and not same_row and not bool((meta == meta[:1]).all()):
        raise ValidationError("grid graph: the images of this batch have different geometries "
                              "(image size or kernel); batch only images of one size.")
    return GridSpec.from_meta(meta[0].tolist())


def _check_images(images: Any, name: str = "images") -> Tensor:
    if not isinstance(images, Tensor):
        raise ValidationError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4:
        raise ValidationError(
            f"{name} must be a 4D tensor (N, C, H, W), got a {images.dim()}D tensor of shape "
            f"{tuple(images.shape)}. Add the missing axes, e.g. images[None] for one image "
            f"or images[:, None] for single-channel images."
        )
    if images.size(0) == 0 or images.size(2) == 0 or images.size(3) == 0:
        raise ValidationError(f"{name} must have at least one image and one pixel, got shape {tuple(images.shape)}")
    return images


def images_to_nodes(images: Tensor) -> Tensor:
    """``(N, C, H, W)`` -> ``(N*H*W, C)`` node features (image-major, row-major)."""
    n, c, h, w = images.shape
    return images.permute(0, 2, 3, 1).reshape(n * h * w, c)


def nodes_to_images(x: Tensor, num_images: int, height: int, width: int) -> Tensor:
    """``(N*H*W, C)`` node features -> ``(N, C, H, W)`` (a view where possible)."""
    if x.dim() != 2 or x.size(0) != num_images * height * width:
        raise ValidationError(
            f"node features must have shape ({num_images}*{height}*{width}, C) = "
            f"({num_images * height * width}, C), got {tuple(x.shape)}"
        )
    return x.view(num_images, height, width, x.size(1)).permute(0, 3, 1, 2)


def grid(images: Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
         padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1) -> Batch:
    r"""Turn images into grid graphs, one per image, batched.

    Args:
        images: Tensor of shape :math:`(N, C, H, W)`.
        kernel_size: Kernel size :math:`(k_h, k_w)` or one int.
        stride: Stride, as in :class:`torch.nn.Conv2d`.
        padding: Zero padding on both sides (adds no nodes: padded pixels have no edges).
        dilation: Spacing between kernel elements.

    Returns:
        A :class:`torch_geometric.data.Batch` of :math:`N` :class:`GridGraph`
        objects: ``x`` :math:`(N H W, C)`, ``edge_index`` from input pixels to
        output pixels, ``offset``/``edge_attr`` the kernel offset
        :math:`a k_w + b` of each edge, ``pos`` the pixel coordinates and
        ``meta`` the geometry.

    Raises:
        ValidationError: ``images`` is not 4D, or the kernel is larger than the
            padded image.
    """
    images = _check_images(images)
    n, _, h, w = images.shape
    spec = grid_spec(h, w, kernel_size, stride, padding, dilation)
    edge_index, offset = _single_structure(spec)
    edge_index, offset = edge_index.to(images.device), offset.to(images.device)
    x = images_to_nodes(images)
    pos = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1)
    pos = pos.reshape(-1, 2).to(device=images.device, dtype=images.dtype if images.is_floating_point()
                                else torch.float)
    meta = spec.meta().to(images.device)
    hw = h * w
    graphs = [GridGraph(x=x[i * hw:(i + 1) * hw], edge_index=edge_index, offset=offset, edge_attr=offset,
                        pos=pos, meta=meta, num_nodes=hw) for i in range(n)]
    return Batch.from_data_list(graphs)


def grid_graph(spec: GridSpec, num_images: int, x: Tensor | None = None,
               device: torch.device | str | None = None) -> GridGraph:
    """The grid graph of ``num_images`` images of geometry ``spec`` as one :class:`GridGraph`.

    Unlike :func:`grid` it needs no images and builds no :class:`Batch`: the
    edges come from the cache of :func:`grid_structure` (sorted by offset), so
    models can afford it on every forward. ``meta`` has one row per image.
    """
    device = x.device if device is None and x is not None else (device or "cpu")
    edge_index, offset, _ = grid_structure(spec, num_images, device)
    graph = GridGraph(edge_index=edge_index, offset=offset, edge_attr=offset,
                      meta=spec.meta().to(device).expand(num_images, -1),
                      num_nodes=num_images * spec.height * spec.width)
    if x is not None:
        graph.x = x
    return graph


def is_regular_grid(graph: Data, spec: GridSpec | None = None) -> bool:
    """Whether ``graph`` still is the grid that its ``meta`` describes: its edges (with their offsets) are
    exactly those of its images' grids, in any order.

    The edges :func:`grid_graph` hands out pass at once (unless edited in
    place); others are compared edge by edge. ``spec`` skips re-reading
    ``meta`` when the caller already has it.
    """
    return _is_regular_grid(graph.get("edge_index"), stored_offsets(graph), graph.get("meta"), spec)


def _is_regular_grid(edge_index: Any, offset: Any, meta: Any, spec: GridSpec | None = None) -> bool:
    """:func:`is_regular_grid` of a graph's ``edge_index``, stored offsets and ``meta`` (``spec`` read from it)."""
    if meta is None or offset is None:
        return False
    if spec is None:
        try:
            spec = meta_spec(meta)
        except ValidationError:
            return False
    n = meta.size(0)
    expected = _single_structure(spec)[1].numel() * n
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2 \
            or edge_index.size(1) != expected or not isinstance(offset, Tensor) or offset.numel() != expected:
        return False
    cached_edges, cached_offset, _ = grid_structure(spec, n, edge_index.device)
    if edge_index is cached_edges and offset is cached_offset:  # not edited: grid_structure checked
        return True
    return passes(edge_index, [offset], ("grid", spec, n),
                  lambda: _holds_grid_edges(edge_index, offset.view(-1), spec))


def _holds_grid_edges(edge_index: Tensor, offset: Tensor, spec: GridSpec) -> bool:
    """Whether ``edge_index``, with as many edges as the grids have, holds each grid edge exactly once: every
    edge's source is the input pixel its target and kernel offset point to, and no (target, offset) repeats."""
    if edge_index.size(1) == 0:
        return True
    if offset.is_floating_point() and not bool((offset == offset.round()).all()):
        return False
    src, dst = edge_index
    offset, num_offsets = offset.long(), spec.num_offsets
    if int(offset.min()) < 0 or int(offset.max()) >= num_offsets or int(dst.min()) < 0:
        return False
    expected, inside = edge_sources(dst, offset, spec)
    if not bool(inside.all()) or not torch.equal(src, expected):
        return False
    return int(torch.bincount(dst * num_offsets + offset).max()) <= 1


def edge_offsets(offset: Any, owner: str = "grid graph") -> Tensor:
    """``offset`` (the kernel offset :math:`a k_w + b` of each edge) as a long vector; fractional values are
    refused rather than truncated to a neighbouring kernel weight."""
    if offset is None:
        raise ValidationError(f"{owner}: the graph has no kernel offsets; store the integer kernel offset "
                              f"a*kw + b of each edge as graph.offset (or edge_attr), as graphdl.graphs.grid does")
    if not isinstance(offset, Tensor):
        raise ValidationError(f"{owner}: offset must be a tensor of integer kernel offsets, "
                              f"got {type(offset).__name__}")
    if offset.dim() != 1:  # a flat long offset is returned itself: the structure caches know tensors by identity
        offset = offset.reshape(-1)
    if offset.is_floating_point() and not bool((offset == offset.round()).all()):
        raise ValidationError(f"{owner}: offsets must be integers (kernel offset a*kw + b of each edge), got "
                              f"fractional values such as {float(offset[offset != offset.round()][0])}")
    return offset.long()


def _grid_fields(graph: Data) -> tuple[Any, Any, Any, Any, Any]:
    """``edge_index``, ``meta``, ``offset``, ``edge_attr`` and the stored offsets (:func:`stored_offsets`) of a
    grid graph, each key read once: the layers read them on every forward, and ``key in graph`` has PyG list
    every key."""
    edge_index, meta, offset, edge_attr = (graph.get(k) for k in ("edge_index", "meta", "offset", "edge_attr"))
    return edge_index, meta, offset, edge_attr, offset if offset is not None else edge_attr


def stored_offsets(graph: Data) -> Any:
    """The kernel offsets a grid graph stores (``offset``, else ``edge_attr``), unchecked; None without either."""
    offset = graph.get("offset")  # not `"offset" in graph`: PyG lists every key for that
    return offset if offset is not None else graph.get("edge_attr")


def graph_offsets(graph: Data, owner: str = "grid graph") -> Tensor:
    """The kernel offset of each edge (:func:`stored_offsets`), checked by :func:`edge_offsets`."""
    return edge_offsets(stored_offsets(graph), owner)


def edge_sources(dst: Tensor, offset: Tensor, spec: GridSpec) -> tuple[Tensor, Tensor]:
    """The input pixel that each edge's target (an output pixel, numbered over all images) and kernel offset point
    to, and whether that pixel lies inside its image (not in the padding)."""
    kw, (sh, sw), (ph, pw), (dh, dw) = spec.kernel_size[1], spec.stride, spec.padding, spec.dilation
    out_pixels = spec.out_height * spec.out_width
    image, pixel = dst.div(out_pixels, rounding_mode="floor"), dst.remainder(out_pixels)
    iy = pixel.div(spec.out_width, rounding_mode="floor") * sh - ph + offset.div(kw, rounding_mode="floor") * dh
    ix = pixel.remainder(spec.out_width) * sw - pw + offset.remainder(kw) * dw
    inside = (iy >= 0) & (iy < spec.height) & (ix >= 0) & (ix < spec.width)
    return image * (spec.height * spec.width) + iy * spec.width + ix, inside


def grid_pool(x: Tensor, edge_index: Tensor, num_out_nodes: int, reduce: str = "max",
              kernel_numel: int | None = None) -> Tensor:
    r"""Pooling as graph coarsening: reduce each output node's incoming messages.

    .. math::
        \mathbf{x}^{\prime}_i = \bigoplus_{j \in \mathcal{N}(i)} \mathbf{x}_j,
        \qquad \bigoplus \in \{\max, \mathrm{mean}\}

    With ``reduce="mean"`` and ``kernel_numel`` given, the sum is divided by
    the full window size (padding counted as zeros, like ``avg_pool2d`` with
    ``count_include_pad=True``); without it, by the number of edges.
    """
    if reduce not in ("max", "mean"):
        raise ValidationError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    src, dst = edge_index
    msg = x.index_select(0, src)
    if reduce == "max":
        return _first_max(msg, dst, num_out_nodes)
    if kernel_numel is not None:
        return scatter(msg, dst, dim=0, dim_size=num_out_nodes, reduce="sum") / kernel_numel
    return scatter(msg, dst, dim=0, dim_size=num_out_nodes, reduce="mean")


def _first_max(msg: Tensor, dst: Tensor, num_out_nodes: int) -> Tensor:
    r"""Max of each output node's messages, differentiated as :func:`~torch.nn.functional.max_pool2d`.

    The gradient of :math:`\max_j m_j` goes to the first maximal message (in
    edge order, which is window order on grid graphs), as ``max_pool2d`` sends
    it to the first maximum of the window. ``scatter(reduce="max")`` is not
    usable here: its backward splits the gradient among ties and counts the
    zero it starts from as one, so a window whose maximum is exactly 0 passed
    on only half of its gradient. Output nodes without messages are 0.
    """
    num_edges = msg.size(0)
    if num_edges == 0:
        return msg.new_zeros((num_out_nodes, *msg.shape[1:]))
    with torch.no_grad():
        best = scatter(msg, dst, dim=0, dim_size=num_out_nodes, reduce="max")
        hit = msg == best.index_select(0, dst)
        if msg.is_floating_point():
            hit |= torch.isnan(msg)
        pos = torch.arange(num_edges, device=msg.device).view(-1, *([1] * (msg.dim() - 1))).expand_as(msg)
        first = scatter(torch.where(hit, pos, num_edges), dst, dim=0, dim_size=num_out_nodes, reduce="min")
        empty = ~torch.zeros(num_out_nodes, dtype=torch.bool, device=msg.device).index_fill_(0, dst, True)
    out = msg.gather(0, first.clamp(max=num_edges - 1))
    if bool(empty.any()):
        out = out.masked_fill(empty.view(-1, *([1] * (msg.dim() - 1))), 0)
    return out


def _pool_graph(graph: Data, reduce: str, count_include_pad: bool = True) -> Tensor:
    if not isinstance(graph, GridGraph):
        raise ValidationError(f"expected a grid graph from graphdl.graphs.grid, got {type(graph).__name__}")
    spec = graph.spec
    return grid_pool(graph.x, graph.edge_index, graph.num_out_nodes, reduce,
                     spec.num_offsets if (reduce == "mean" and count_include_pad) else None)


def max_pool(graph: Data) -> Tensor:
    """Max pooling of ``graph.x`` over each window of a grid graph (= ``max_pool2d``)."""
    return _pool_graph(graph, "max")


def mean_pool(graph: Data, count_include_pad: bool = True) -> Tensor:
    """Mean pooling of ``graph.x`` over each window of a grid graph (= ``avg_pool2d``)."""
    return _pool_graph(graph, "mean", count_include_pad)
