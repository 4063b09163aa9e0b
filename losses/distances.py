r"""Swappable distances for the metric-learning losses.

A distance maps query embeddings :math:`\mathbf{X} \in \mathbb{R}^{B \times d}`
and reference embeddings :math:`\mathbf{Y} \in \mathbb{R}^{R \times d}` to the
:math:`B \times R` matrix of pairwise values. *Inverted* distances
(similarities) are large for close pairs; the losses use :meth:`Distance.margin`
and :meth:`Distance.dissimilarity` so that they work with either kind.

The defaults equal pytorch-metric-learning's: :class:`LpDistance` normalises
the embeddings to unit :math:`L_p` norm first.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from graphdl.errors import ValidationError
from graphdl.losses.base import check_bool

__all__ = ["Distance", "LpDistance", "CosineSimilarity", "DotProductSimilarity", "resolve_distance"]


class Distance:
    """Base class: pairwise matrix, optional normalisation, optional power."""

    is_inverted = False

    def __init__(self, normalize_embeddings: bool = True, p: float = 2, power: float = 1) -> None:
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not p > 0:
            raise ValidationError(f"{type(self).__name__}: p must be a number > 0, got {p!r}; use p=2 for "
                                  f"the Euclidean norm.")
        if not isinstance(power, (int, float)) or isinstance(power, bool) or not power > 0:
            raise ValidationError(f"{type(self).__name__}: power must be a number > 0, got {power!r}; "
                                  f"use power=1 for the plain distance.")
        self.normalize_embeddings = check_bool(type(self).__name__, "normalize_embeddings", normalize_embeddings)
        self.p = p
        self.power = power

    # -- the matrix
    def maybe_normalize(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=self.p, dim=-1) if self.normalize_embeddings else x

    def compute_mat(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def pairwise(self, x: Tensor, y: Tensor) -> Tensor:
        """Row-by-row values for equally long ``x`` and ``y`` (shape ``(n,)``)."""
        raise NotImplementedError

    def __call__(self, query: Tensor, ref: Tensor | None = None) -> Tensor:
        if ref is not None and ref.dtype != query.dtype:
            # one common dtype, as torch's elementwise ops: cdist and matmul refuse mixed dtypes (LpDistance
            # accepted a float16 query beside a float32 ref but not the reverse)
            dtype = torch.promote_types(query.dtype, ref.dtype)
            query, ref = query.to(dtype), ref.to(dtype)
        q = self.maybe_normalize(query)
        r = q if ref is None or ref is query else self.maybe_normalize(ref)
        mat = self.compute_mat(q, r)
        return mat if self.power == 1 else mat ** self.power

    # -- direction-agnostic helpers
    def margin(self, x: Any, y: Any) -> Any:
        """How much closer ``y`` is than ``x`` (``x - y`` for distances, ``y - x`` for similarities)."""
        return y - x if self.is_inverted else x - y

    def dissimilarity(self, mat: Tensor) -> Tensor:
        """``mat`` turned into a quantity that grows with distance (``-mat`` for similarities)."""
        return -mat if self.is_inverted else mat

    def _args(self) -> dict[str, Any]:
        return {"normalize_embeddings": self.normalize_embeddings, "p": self.p, "power": self.power}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._args() == other._args()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._args().items())))


class LpDistance(Distance):
    r""":math:`d(\mathbf{x}, \mathbf{y}) = \lVert \mathbf{x} - \mathbf{y} \rVert_p`
    (of the :math:`L_p`-normalised embeddings by default), raised to ``power``."""

    def compute_mat(self, x: Tensor, y: Tensor) -> Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            # torch.cdist has no half-precision kernel ("cdist" not implemented for 'Half'): compute in
            # float32 (still O(BR) memory) and return the input's dtype, as the other distances do
            return torch.cdist(x.float(), y.float(), p=self.p).to(x.dtype)
        return torch.cdist(x, y, p=self.p)

    def pairwise(self, x: Tensor, y: Tensor) -> Tensor:
        d = F.pairwise_distance(x, y, p=self.p, eps=0.0)
        return d if self.power == 1 else d ** self.power


class DotProductSimilarity(Distance):
    r""":math:`s(\mathbf{x}, \mathbf{y}) = \mathbf{x}^{\top}\mathbf{y}`.

    Like pytorch-metric-learning's, it normalises the embeddings by default
    (then it equals :class:`CosineSimilarity`); pass
    ``normalize_embeddings=False`` for the raw dot product.
    """

    is_inverted = True

    def __init__(self, normalize_embeddings: bool = True, power: float = 1) -> None:
        super().__init__(normalize_embeddings=normalize_embeddings, p=2, power=power)

    def compute_mat(self, x: Tensor, y: Tensor) -> Tensor:
        return x @ y.transpose(-1, -2)

    def pairwise(self, x: Tensor, y: Tensor) -> Tensor:
        s = (x * y).sum(-1)
        return s if self.power == 1 else s ** self.power

    def _args(self) -> dict[str, Any]:
        return {"normalize_embeddings": self.normalize_embeddings, "power": self.power}


class CosineSimilarity(DotProductSimilarity):
    r""":math:`s(\mathbf{x}, \mathbf{y}) = \frac{\mathbf{x}^{\top}\mathbf{y}}
    {\lVert\mathbf{x}\rVert_2 \lVert\mathbf{y}\rVert_2}`."""

    def __init__(self, power: float = 1) -> None:
        super().__init__(normalize_embeddings=True, power=power)

    def _args(self) -> dict[str, Any]:
        return {} if self.power == 1 else {"power": self.power}


_BY_NAME = {
    "lp": LpDistance, "euclidean": LpDistance, "l2": LpDistance,
    "cosine": CosineSimilarity, "cos": CosineSimilarity,
    "dot": DotProductSimilarity, "dotproduct": DotProductSimilarity,
}


def resolve_distance(distance: Any, default: type[Distance], owner: str) -> Distance:
    """A :class:`Distance` from ``None`` (the default), an instance, or a name."""
    if distance is None:
        return default()
    if isinstance(distance, str):
        key = distance.lower().replace("_", "").replace("-", "")
        if key not in _BY_NAME:
            raise ValidationError(
                f"{owner}: unknown distance {distance!r}; use one of 'lp', 'cosine', 'dot' or pass a "
                f"graphdl.losses.distances.Distance instance."
            )
        return _BY_NAME[key]()
    if isinstance(distance, Distance):
        return distance
    raise ValidationError(
        f"{owner}: distance must be a graphdl.losses.distances.Distance (LpDistance(), "
        f"CosineSimilarity(), DotProductSimilarity()) or one of 'lp', 'cosine', 'dot'; got "
        f"{type(distance).__name__}."
    )
