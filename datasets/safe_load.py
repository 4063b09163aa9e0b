"""A scoped ``torch.load`` allow-list for the official dataset files.

``ogb`` 1.3.6 calls ``torch.load(path)`` on its own processed files and on the
``split/*.pt`` files of the link-prediction datasets without passing
``weights_only``. Since torch 2.6 that argument defaults to ``True``, and the
restricted unpickler refuses the classes those files contain:

* processed files pickle a PyG ``Data`` object, whose state references
  ``DataEdgeAttr``, ``DataTensorAttr`` and ``GlobalStorage``;
* the OGB link split files (``valid.pt``, ``test.pt`` of ``ogbl-ddi``, ...) are
  plain pickles of numpy arrays, which reference
  ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``.

Instead of turning ``weights_only`` off (which would let a crafted file run
arbitrary code), :func:`trusted_dataset_files` adds exactly these classes to
the weights-only allow-list, only while the block runs::

    with trusted_dataset_files():
        dataset = PygGraphPropPredDataset("ogbg-molbace", root)

Everything else (``os.system``, arbitrary classes, ...) is still refused inside
the block, and the allow-list is back to what it was when the block exits.

Note: torch keeps the allow-list of ``safe_globals`` in process-wide state, so
another thread calling ``torch.load`` while the block runs also sees these
(harmless, data-only) classes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["trusted_dataset_files", "dataset_safe_globals"]

SafeGlobal = Callable[..., Any] | tuple[Callable[..., Any], str]


def _numpy_globals() -> list[SafeGlobal]:
    """The numpy callables and types a pickled ``numpy.ndarray`` references.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; files written with numpy 1
    name the old module, files written with numpy 2 the new one, so both names
    are allowed for the same objects.
    """
    import numpy as np

    core = getattr(np, "_core", None)
    if core is None:  # numpy < 2
        core = np.core  # type: ignore[attr-defined]
    found: list[SafeGlobal] = [np.ndarray, np.dtype]
    for func_name in ("_reconstruct", "scalar"):
        func = getattr(core.multiarray, func_name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            found.append((func, f"{module}.{func_name}"))
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles the DType class
    if dtypes is not None:
        for dtype_name in (
            "BoolDType",
            "Int8DType", "Int16DType", "Int32DType", "Int64DType",
            "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType",
            "Float16DType", "Float32DType", "Float64DType",
            "StrDType", "BytesDType",
        ):
            cls = getattr(dtypes, dtype_name, None)
            if cls is not None:
                found.append(cls)
    return found


def _pyg_globals() -> list[SafeGlobal]:
    """The PyG classes a pickled ``Data``/``HeteroData`` object references."""
    from torch_geometric.data import Data, HeteroData
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.feature_store import TensorAttr
    from torch_geometric.data.graph_store import EdgeAttr, EdgeLayout
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    return [
        Data, HeteroData, DataEdgeAttr, DataTensorAttr, TensorAttr, EdgeAttr,
        EdgeLayout, GlobalStorage, NodeStorage, EdgeStorage,
    ]


def dataset_safe_globals() -> list[SafeGlobal]:
    """Every global :func:`trusted_dataset_files` allows, for inspection."""
    return [*_pyg_globals(), *_numpy_globals()]


@contextlib.contextmanager
def trusted_dataset_files() -> Iterator[None]:
    """Let weights-only ``torch.load`` read official PyG/OGB dataset files.

    Inside the block, the PyG data classes and numpy array types listed by
    :func:`dataset_safe_globals` are allowed; no other global is, and
    ``weights_only`` stays on. On torch without ``safe_globals`` (< 2.4, where
    ``weights_only`` defaults to ``False`` anyway) this does nothing.
    """
    scope = getattr(torch.serialization, "safe_globals", None)
    if scope is None:  # pragma: no cover - torch < 2.4
        yield
        return
    with scope(dataset_safe_globals()):
        yield
