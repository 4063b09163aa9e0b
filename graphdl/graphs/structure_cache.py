"""Remember the graphs that passed a structure check (a grid's, a chain's, a complete graph's edges).

The layers ask on every forward whether a graph is still the special graph it was built as, to take the dense
path (``conv2d``, cuDNN's RNN, ``scaled_dot_product_attention``). Comparing every edge costs about as much as
the forward itself, so a verdict is kept per ``edge_index`` tensor, with the other tensors it was checked
against, until any of them is edited in place (``Tensor._version`` counts those edits) or replaced.
:func:`kept` keeps any value read from one tensor (a grid's geometry from its ``meta``) the same way.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

T = TypeVar("T")

# per tensor, a few keys -> what was kept: entries go with their tensors. Several keys per tensor, as one
# edge_index may be checked as the grid of a model's input and as a layer's grid: one slot made them evict each
# other, and both checks ran on every forward.
_PASSED: WeakIdKeyDictionary = WeakIdKeyDictionary()
_KEPT: WeakIdKeyDictionary = WeakIdKeyDictionary()
_KEYS_PER_TENSOR = 8


def _state(tensors: Sequence[Tensor | None]) -> tuple[int | None, ...]:
    return tuple(None if t is None else t._version for t in tensors)


def _store(cache: WeakIdKeyDictionary, tensor: Tensor, key: Hashable, entry: tuple) -> None:
    entries = cache.get(tensor)
    if entries is None or len(entries) >= _KEYS_PER_TENSOR:
        entries = cache[tensor] = {}
    entries[key] = entry


def passes(edge_index: Tensor, others: Sequence[Tensor | None], key: Hashable, check: Callable[[], bool]) -> bool:
    """``check()``, or True at once when ``edge_index`` passed it before with the same ``key`` and the same
    ``others`` (the same objects, unedited).

    Inference tensors (made under ``torch.inference_mode()``) keep no version counter, so an in-place edit could
    not be seen: their verdict is not kept, and ``check()`` runs on every call."""
    if edge_index.is_inference() or any(t is not None and t.is_inference() for t in others):
        return check()
    seen = _PASSED.get(edge_index)
    seen = None if seen is None else seen.get(key)
    if seen is not None:
        versions, refs = seen
        if (versions == _state([edge_index, *others])
                and all((r() if r is not None else None) is t for r, t in zip(refs, others, strict=True))):
            return True
    if not check():
        return False
    _store(_PASSED, edge_index, key, (_state([edge_index, *others]),
                                      tuple(None if t is None else weakref.ref(t) for t in others)))
    return True


def kept(tensor: Tensor, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` (a value read from ``tensor``), or the value it returned for the same ``tensor`` (the same
    object, unedited since) and ``key``. A call that raises keeps nothing, and an inference tensor nothing either
    (an in-place edit of it could not be seen)."""
    if tensor.is_inference():
        return compute()
    entries = _KEPT.get(tensor)
    seen = None if entries is None else entries.get(key)
    version = tensor._version
    if seen is not None and seen[0] == version:
        return seen[1]
    value = compute()
    _store(_KEPT, tensor, key, (version, value))
    return value
