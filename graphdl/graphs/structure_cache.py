"""Remember the graphs that passed a structure check (a grid's, a chain's, a complete graph's edges).

The layers ask on every forward whether a graph is still the special graph it was built as, to take the dense
path (``conv2d``, cuDNN's RNN, ``scaled_dot_product_attention``). Comparing every edge costs about as much as
the forward itself, so a verdict is kept per ``edge_index`` tensor, with the other tensors it was checked
against, until any of them is edited in place (``Tensor._version`` counts those edits) or replaced.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Sequence

from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

_PASSED: WeakIdKeyDictionary = WeakIdKeyDictionary()  # entries go with their edge_index tensors


def _state(tensors: Sequence[Tensor | None]) -> tuple[int | None, ...]:
    return tuple(None if t is None else t._version for t in tensors)


def passes(edge_index: Tensor, others: Sequence[Tensor | None], key: Hashable, check: Callable[[], bool]) -> bool:
    """``check()``, or True at once when ``edge_index`` passed it before with the same ``key`` and the same
    ``others`` (the same objects, unedited).

    Inference tensors (made under ``torch.inference_mode()``) keep no version counter, so an in-place edit could
    not be seen: their verdict is not kept, and ``check()`` runs on every call."""
    if edge_index.is_inference() or any(t is not None and t.is_inference() for t in others):
        return check()
    seen = _PASSED.get(edge_index)
    if seen is not None:
        seen_key, versions, refs = seen
        if (seen_key == key and versions == _state([edge_index, *others])
                and all((r() if r is not None else None) is t for r, t in zip(refs, others, strict=True))):
            return True
    if not check():
        return False
    _PASSED[edge_index] = (key, _state([edge_index, *others]),
                           tuple(None if t is None else weakref.ref(t) for t in others))
    return True
