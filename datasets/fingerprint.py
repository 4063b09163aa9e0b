"""Fingerprints of the ``pre_transform`` / ``pre_filter`` a dataset was processed with.

PyG decides whether processed files may be reused by comparing ``repr()`` of the
pre-transform after replacing every ``<function ...>`` with ``<function>``, so
two different functions, or two transforms whose ``repr`` omits a parameter
(``RandomNodeSplit(num_val=100)`` and ``RandomNodeSplit(num_val=300)``), compare
equal and stale data comes back. :func:`fingerprint` tells them apart:

* functions and lambdas: module, qualified name, byte code and constants
  (nested code included), default arguments, closure values, and the values of
  the globals the code reads (functions of the same module recursively);
* ``functools.partial`` and bound methods: the function and what is bound;
* other objects: the class, its ``__call__`` / ``forward`` code and the
  fingerprint of every attribute (``vars()`` and ``__slots__``);
* tensors and numpy arrays: dtype, shape and a hash of the values.

When some part cannot be fingerprinted (an object without attributes that is
not a known value type, a structure nested too deep), :func:`fingerprint`
returns ``None`` and the caller must not reuse processed files.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import types
from typing import Any

__all__ = ["fingerprint", "describe"]

_MAX_DEPTH = 24
_PLAIN = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis), type(NotImplemented))


class _Unknown(Exception):
    """Internal: the object (or a part of it) cannot be fingerprinted."""


def fingerprint(obj: Any) -> str | None:
    """A hex digest that differs whenever ``obj`` would process data differently; ``None`` if unknown."""
    try:
        text = _Walk().fp(obj, 0, None)
    except Exception:  # noqa: BLE001 - _Unknown, RecursionError, a tensor that cannot be read, ...
        return None
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def describe(obj: Any) -> str:
    """A short human-readable name of ``obj`` for messages and the stored record."""
    if obj is None:
        return "None"
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)):
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break loading
        text = f"<{type(obj).__qualname__} object>"
    return text if len(text) <= 200 else text[:197] + "..."


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


class _Walk:
    """One fingerprint computation: each object is described once (``memo``), cycles are marked."""

    def __init__(self) -> None:
        self.memo: dict[int, str] = {}
        self.active: set[int] = set()

    def fp(self, obj: Any, depth: int, module: str | None) -> str:
        """The fingerprint text of ``obj``; functions of ``module`` are followed into (others: by name)."""
        if depth > _MAX_DEPTH:
            raise _Unknown
        if isinstance(obj, _PLAIN):
            return f"{type(obj).__name__}:{obj!r}"
        if isinstance(obj, (type, types.ModuleType, types.BuiltinFunctionType, types.BuiltinMethodType)):
            return f"{type(obj).__name__}:{_name(obj)}"
        if isinstance(obj, types.FunctionType) and module is not None and obj.__module__ != module:
            return f"function:{_name(obj)}"  # library code: by name
        key = id(obj)
        if key in self.active:
            return "<cycle>"
        if key not in self.memo:
            self.active.add(key)
            try:
                self.memo[key] = self._fresh(obj, depth, module)
            finally:
                self.active.discard(key)
        return self.memo[key]

    def _fresh(self, obj: Any, depth: int, module: str | None) -> str:
        fp = self.fp
        if isinstance(obj, types.FunctionType):
            return self.function(obj, depth)
        if isinstance(obj, types.MethodType):
            return f"method({fp(obj.__func__, depth + 1, None)},{fp(obj.__self__, depth + 1, module)})"
        if isinstance(obj, functools.partial):
            return (f"partial({fp(obj.func, depth + 1, None)},{fp(obj.args, depth + 1, module)},"
                    f"{fp(obj.keywords, depth + 1, module)})")
        if isinstance(obj, (tuple, list)):
            return f"{type(obj).__name__}[" + ",".join(fp(x, depth + 1, module) for x in obj) + "]"
        if isinstance(obj, (set, frozenset)):
            return f"{type(obj).__name__}{{" + ",".join(sorted(fp(x, depth + 1, module) for x in obj)) + "}"
        if isinstance(obj, dict):
            items = [f"{fp(k, depth + 1, module)}:{fp(v, depth + 1, module)}" for k, v in obj.items()]
            return f"{_name(type(obj))}{{" + ",".join(items if type(obj) is not dict else sorted(items)) + "}"
        array = _array(obj)
        if array is not None:
            return array
        if hasattr(obj, "__fspath__"):
            return f"path:{obj.__fspath__()!r}"
        return self.instance(obj, depth)

    def code(self, code: types.CodeType, depth: int, module: str | None) -> str:
        """Byte code, constants (nested code included) and names of ``code``."""
        consts = ",".join(self.code(c, depth + 1, module) if isinstance(c, types.CodeType)
                          else self.fp(c, depth + 1, module) for c in code.co_consts)
        return f"code({code.co_name}|{code.co_code.hex()}|{consts}|{','.join(code.co_names)})"

    def function(self, fn: types.FunctionType, depth: int) -> str:
        """Name, code, defaults, closure and the globals ``fn`` reads."""
        module = fn.__module__
        parts = [_name(fn), self.code(fn.__code__, depth, module),
                 self.fp(fn.__defaults__, depth + 1, module), self.fp(fn.__kwdefaults__, depth + 1, module)]
        for cell in fn.__closure__ or ():
            try:
                parts.append(self.fp(cell.cell_contents, depth + 1, module))
            except ValueError:  # an empty cell
                parts.append("<empty cell>")
        names: set[str] = set()
        stack = [fn.__code__]
        while stack:  # the global names read by the function and by the code nested in it
            code = stack.pop()
            names.update(code.co_names)
            stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        for name in sorted(names):
            if name in fn.__globals__:
                try:
                    parts.append(f"{name}={self.fp(fn.__globals__[name], depth + 1, module)}")
                except _Unknown:  # module state such as a lock or a logger: by type
                    parts.append(f"{name}=?{_name(type(fn.__globals__[name]))}")
            elif hasattr(builtins, name):
                parts.append(f"{name}=builtin")
        return "fn(" + ";".join(parts) + ")"

    def instance(self, obj: Any, depth: int) -> str:
        """Any other object: its class, its ``__call__`` / ``forward`` code and its attributes."""
        cls = type(obj)
        state: dict[str, Any] = {}
        has_state = hasattr(obj, "__dict__")
        if has_state:
            state.update(vars(obj))
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                has_state = True
                if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                    state[f"slot:{slot}"] = getattr(obj, slot)
        if not has_state:
            raise _Unknown  # a C object whose content cannot be seen
        parts = [f"class:{_name(cls)}"]
        for method in ("__call__", "forward"):
            code = getattr(cls, method, None)
            if isinstance(code, types.FunctionType):
                parts.append(f"{method}={self.function(code, depth + 1)}")
        parts += sorted(f"{key}={self.fp(value, depth + 1, None)}" for key, value in state.items())
        return "obj(" + ";".join(parts) + ")"


def _array(obj: Any) -> str | None:
    """Tensors and numpy arrays by dtype, shape and a hash of their values."""
    kind = type(obj).__module__.split(".")[0]
    if kind == "torch":
        import torch

        if isinstance(obj, torch.Tensor):
            if obj.layout != torch.strided or obj.is_quantized:
                raise _Unknown
            flat = obj.detach().cpu().contiguous().reshape(-1)
            digest = hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest() if flat.numel() else ""
            return f"tensor({flat.dtype},{tuple(obj.shape)},{digest},{isinstance(obj, torch.nn.Parameter)})"
    if kind == "numpy":
        import numpy as np

        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise _Unknown
            return f"ndarray({obj.dtype},{obj.shape},{hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()})"
        if isinstance(obj, np.generic):
            return f"{type(obj).__name__}:{obj!r}"
    return None
