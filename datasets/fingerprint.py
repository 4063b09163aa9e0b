"""Fingerprints of the ``pre_transform`` / ``pre_filter`` a dataset was processed with.

PyG decides whether processed files may be reused by comparing ``repr()`` of the
pre-transform after replacing every ``<function ...>`` with ``<function>``, so
two different functions, or two transforms whose ``repr`` omits a parameter
(``RandomNodeSplit(num_val=100)`` and ``RandomNodeSplit(num_val=300)``), compare
equal and stale data comes back. :func:`fingerprint` tells them apart.

The user's own code (any module that is not installed in the Python library
folders, ``site-packages`` or the standard library, a ``code.py`` of the user's
included) is followed:

* functions and lambdas: module, qualified name, byte code and constants
  (nested code included), default arguments, closure values, attributes set
  on the function, and the values of
  the globals the code reads: functions and classes followed in turn, whatever
  user module they come from, and a user module read as ``mod.NAME`` by the
  value of every attribute whose name the code uses;
* classes: every entry of the class body (all methods, so the helpers that
  ``__call__`` / ``forward`` call through ``self`` too, static and class methods,
  properties, class attributes) and the bases;
* ``functools.partial`` and bound methods (builtin ones too): the function and
  what is bound;
* other objects: the class as above and the fingerprint of every attribute
  (``vars()`` and ``__slots__``); random generators (``random.Random``, NumPy,
  torch) also by their state, the process-wide ones by name only;
* subclasses of ``int``, ``str``, ``list``, ``dict``... (an ``IntEnum``, a
  ``namedtuple``, a ``defaultdict`` with its factory): the value, the class and
  the attributes;
* tensors and numpy arrays: dtype, shape and a hash of the values.

Installed libraries (torch, torch_geometric, numpy, the standard library, ...)
stand for their code by name and version: a class, function or module of theirs
is not walked into, only the state of their objects (``vars()``, slots, or a
``repr`` without a memory address for objects without attributes, such as a
``torch.dtype``).

When some part cannot be fingerprinted (an object without attributes whose
``repr`` holds an address, a structure nested too deep), :func:`fingerprint`
returns ``None`` and the caller must not reuse processed files. A global the
code reads that cannot be fingerprinted (a lock, a logger) counts by its type.

Limits: what the code reads other than through its globals, closure, defaults,
``self`` and its class (files, environment variables, ``getattr`` with a
computed name, a module reached other than as a global of the code) is not
seen; nor is an edit of an installed library that keeps its version; user code
installed into ``site-packages`` (not as an editable install) counts as a library.
"""

from __future__ import annotations

import builtins
import collections
import functools
import hashlib
import os
import random
import re
import site
import sys
import sysconfig
import types
from typing import Any

__all__ = ["fingerprint", "describe"]

_MAX_DEPTH = 40
_PLAIN = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis), type(NotImplemented))
_DESCRIPTORS = (types.MethodDescriptorType, types.WrapperDescriptorType, types.MethodWrapperType,
                types.ClassMethodDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType)
# class body entries that do not change what the code does, or that Python adds lazily / per process
_SKIPPED_CLASS_KEYS = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__",
                                 "__annotations__", "__firstlineno__", "__static_attributes__", "__slotnames__",
                                 "_abc_impl", "__abstractmethods__", "__orig_bases__", "__parameters__",
                                 "__type_params__"})
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_BUILTIN_TYPES = frozenset({*_PLAIN, tuple, list, set, frozenset, dict, types.MappingProxyType})
_TUPLEGETTER = type(collections.namedtuple("_Pair", "a").a)  # a namedtuple's field accessor (a C object)


class _Unknown(Exception):
    """Internal: the object (or a part of it) cannot be fingerprinted."""


class _TooDeep(Exception):
    """Internal: nested deeper than ``_MAX_DEPTH`` (never read as a mere unknown global)."""


def fingerprint(obj: Any) -> str | None:
    """A hex digest that differs whenever ``obj`` would process data differently; ``None`` if unknown."""
    try:
        text = _Walk().fp(obj, 0)
    except Exception:  # noqa: BLE001 - _Unknown, _TooDeep, RecursionError, a tensor that cannot be read, ...
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
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = [paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    try:
        dirs += [*site.getsitepackages(), site.getusersitepackages()]
    except Exception:  # noqa: BLE001 - some embedded interpreters lack them
        pass
    return tuple(sorted({os.path.join(os.path.realpath(d), "") for d in dirs if d}))


_LIBRARIES: dict[str, str | None] = {}


def _library(module: Any) -> str | None:
    """``name@version`` when ``module`` (a module name) is installed library code, ``None`` for the user's code."""
    if not isinstance(module, str) or not module:
        return None
    if module in _LIBRARIES:
        return _LIBRARIES[module]
    top = module.partition(".")[0]
    python = "python" + ".".join(map(str, sys.version_info[:3]))
    loaded = sys.modules.get(module) or sys.modules.get(top)
    file = getattr(loaded, "__file__", None)
    if top in sys.builtin_module_names or (top in getattr(sys, "stdlib_module_names", ()) and not (
            file and not os.path.realpath(file).startswith(_library_dirs()))):  # not the user's code.py
        version = python
    else:
        if loaded is None:
            return None  # not imported (yet): followed as user code, and not remembered
        if not file or not os.path.realpath(file).startswith(_library_dirs()):
            _LIBRARIES[module] = None
            return None
        version = getattr(sys.modules.get(top), "__version__", None)
        if not isinstance(version, str):
            try:
                from importlib import metadata

                version = metadata.version(top)
            except Exception:  # noqa: BLE001 - no distribution of that name
                version = "?"
    _LIBRARIES[module] = f"{top}@{version}"
    return _LIBRARIES[module]


class _Walk:
    """One fingerprint computation: each object is described once (``memo``), cycles are marked."""

    def __init__(self) -> None:
        self.memo: dict[int, tuple[Any, str]] = {}  # the object is kept alive so that its id is not reused
        self.active: set[int] = set()

    def fp(self, obj: Any, depth: int) -> str:
        """The fingerprint text of ``obj``."""
        if depth > _MAX_DEPTH:
            raise _TooDeep
        if type(obj) in _PLAIN:
            return f"{type(obj).__name__}:{obj!r}"
        if isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)) and _bound_to(obj) is None:
            return f"builtin:{_name(obj)}"
        if isinstance(obj, _DESCRIPTORS) and _bound_to(obj) is None:
            return _descriptor(obj)
        if isinstance(obj, type):
            library = _library(obj.__module__)
            if library is not None:
                return f"type:{_name(obj)}@{library}"
        elif isinstance(obj, types.ModuleType):
            library = _library(obj.__name__)
            return f"module:{obj.__name__}" + (f"@{library}" if library is not None else "")
        elif isinstance(obj, types.FunctionType):
            library = _library(obj.__module__)
            if library is not None:
                return f"function:{_name(obj)}@{library}"  # library code: by name and version
        key = id(obj)
        if key in self.active:
            return "<cycle>"
        if key not in self.memo:
            self.active.add(key)
            try:
                self.memo[key] = (obj, self._fresh(obj, depth))
            finally:
                self.active.discard(key)
        return self.memo[key][1]

    def _fresh(self, obj: Any, depth: int) -> str:
        fp = self.fp
        if isinstance(obj, _PLAIN):  # a subclass (an IntEnum member, a str subclass): the value and its class
            base = next(t for t in type(obj).__mro__ if t in _PLAIN)
            return f"{base.__name__}:{base.__repr__(obj)}" + self.subclass(obj, depth)
        if isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)):  # bound to an object
            return f"builtin:{_name(obj)}({fp(obj.__self__, depth + 1)})"
        if isinstance(obj, _DESCRIPTORS):  # a method-wrapper bound to an object
            return f"{_descriptor(obj)}({fp(obj.__self__, depth + 1)})"
        if isinstance(obj, _TUPLEGETTER):
            return f"tuplegetter{fp(obj.__reduce__()[1], depth + 1)}"
        if isinstance(obj, types.FunctionType):
            return self.function(obj, depth)
        if isinstance(obj, type):
            return self.cls(obj, depth)
        if isinstance(obj, types.MethodType):
            return f"method({fp(obj.__func__, depth + 1)},{fp(obj.__self__, depth + 1)})"
        if isinstance(obj, functools.partial):
            return f"partial({fp(obj.func, depth + 1)},{fp(obj.args, depth + 1)},{fp(obj.keywords, depth + 1)})"
        if isinstance(obj, (staticmethod, classmethod)):
            return f"{type(obj).__name__}({fp(obj.__func__, depth + 1)})"
        if isinstance(obj, property):
            return f"property({fp(obj.fget, depth + 1)},{fp(obj.fset, depth + 1)},{fp(obj.fdel, depth + 1)})"
        if isinstance(obj, functools.cached_property):
            return f"cached_property({fp(obj.func, depth + 1)})"
        if isinstance(obj, (tuple, list)):
            return (f"{type(obj).__name__}[" + ",".join(fp(x, depth + 1) for x in obj) + "]"
                    + self.subclass(obj, depth))
        if isinstance(obj, (set, frozenset)):
            return (f"{type(obj).__name__}{{" + ",".join(sorted(fp(x, depth + 1) for x in obj)) + "}"
                    + self.subclass(obj, depth))
        if isinstance(obj, (dict, types.MappingProxyType)):
            items = [f"{fp(k, depth + 1)}:{fp(v, depth + 1)}" for k, v in obj.items()]
            ordered = type(obj) not in (dict, types.MappingProxyType)
            return (f"{_name(type(obj))}{{" + ",".join(items if ordered else sorted(items)) + "}"
                    + self.subclass(obj, depth))
        array = _array(obj)
        if array is not None:
            return array
        if hasattr(obj, "__fspath__"):
            return f"path:{obj.__fspath__()!r}"
        return self.instance(obj, depth)

    def code(self, code: types.CodeType, depth: int) -> str:
        """Byte code, constants (nested code included) and names of ``code``."""
        consts = ",".join(self.code(c, depth + 1) if isinstance(c, types.CodeType)
                          else self.fp(c, depth + 1) for c in code.co_consts)
        table = getattr(code, "co_exceptiontable", b"").hex()
        return f"code({code.co_name}|{code.co_code.hex()}|{table}|{consts}|{','.join(code.co_names)})"

    def function(self, fn: types.FunctionType, depth: int) -> str:
        """Name, code, defaults, closure and the globals ``fn`` reads."""
        names: set[str] = set()
        stack = [fn.__code__]
        while stack:  # the global (and attribute) names read by the function and by the code nested in it
            code = stack.pop()
            names.update(code.co_names)
            stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        parts = [_name(fn), self.code(fn.__code__, depth),
                 self.fp(fn.__defaults__, depth + 1), self.fp(fn.__kwdefaults__, depth + 1)]
        if vars(fn):  # attributes set on the function (``fn.scale = 2``, ``__wrapped__``)
            parts.append(f"attrs={self.fp(dict(vars(fn)), depth + 1)}")
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                parts.append("<empty cell>")
                continue
            parts.append(self.read(value, names, depth + 1))
        for name in sorted(names):
            if name in fn.__globals__:
                parts.append(f"{name}={self.read(fn.__globals__[name], names, depth + 1)}")
            elif hasattr(builtins, name):
                parts.append(f"{name}=builtin")
        return "fn(" + ";".join(parts) + ")"

    def read(self, value: Any, names: set[str], depth: int) -> str:
        """A value the code reads by name: a user module by the attributes named in the code."""
        if isinstance(value, types.ModuleType) and _library(value.__name__) is None:
            return self.module(value, names, depth)
        try:
            return self.fp(value, depth)
        except _Unknown:  # module state such as a lock or a logger: by type
            return f"?{_name(type(value))}"

    def module(self, module: types.ModuleType, names: set[str], depth: int) -> str:
        """A user module: the value of each of its attributes named in ``names`` (submodules likewise)."""
        if depth > _MAX_DEPTH:
            raise _TooDeep
        key = id(module)
        if key in self.active:
            return f"<cycle {module.__name__}>"
        self.active.add(key)
        try:
            space = vars(module)
            parts = [f"{name}={self.read(space[name], names, depth + 1)}" for name in sorted(names) if name in space]
        finally:
            self.active.discard(key)
        return f"module:{module.__name__}{{" + ";".join(parts) + "}"

    def cls(self, cls: type, depth: int) -> str:
        """A user class: its bases, its metaclass and every entry of its body."""
        parts = [f"class:{_name(cls)}", "bases=" + ",".join(self.fp(base, depth + 1) for base in cls.__bases__)]
        if type(cls) is not type:
            parts.append(f"meta={self.fp(type(cls), depth + 1)}")
        for key in sorted(vars(cls)):
            if key not in _SKIPPED_CLASS_KEYS:
                parts.append(f"{key}={self.fp(vars(cls)[key], depth + 1)}")
        return "cls(" + ";".join(parts) + ")"

    def instance(self, obj: Any, depth: int) -> str:
        """Any other object: its class and its attributes."""
        state = _attributes(obj)
        if state is None:
            return self.opaque(obj)
        return self.described(obj, state, depth)

    def subclass(self, obj: Any, depth: int) -> str:
        """What an instance of a subclass of a builtin value or container type adds: its class and attributes."""
        if type(obj) in _BUILTIN_TYPES:
            return ""
        state = _attributes(obj) or {}
        if isinstance(obj, collections.defaultdict):
            state["default_factory"] = obj.default_factory
        return "+" + self.described(obj, state, depth)

    def described(self, obj: Any, state: dict[str, Any], depth: int) -> str:
        """``obj`` by its class and ``state``."""
        parts = [f"class:{self.fp(type(obj), depth + 1)}"]
        parts += sorted(f"{key}={self.fp(value, depth + 1)}" for key, value in state.items())
        return "obj(" + ";".join(parts) + ")"

    def opaque(self, obj: Any) -> str:
        """An object without attributes: a library one by its ``repr`` if that holds no address."""
        library = _library(type(obj).__module__)
        if library is None:
            raise _Unknown  # a C object whose content cannot be seen
        try:
            text = repr(obj)
        except Exception as exc:  # noqa: BLE001
            raise _Unknown from exc
        if _ADDRESS.search(text) or text.startswith("<"):
            raise _Unknown
        return f"repr:{_name(type(obj))}@{library}:{text}"


def _descriptor(obj: Any) -> str:
    return f"descriptor:{_name(getattr(obj, '__objclass__', type(obj)))}.{getattr(obj, '__name__', '?')}"


def _bound_to(obj: Any) -> Any:
    """The object a builtin method or method-wrapper is bound to; ``None`` for a module's function or unbound."""
    bound = getattr(obj, "__self__", None)
    return None if isinstance(bound, types.ModuleType) else bound


def _attributes(obj: Any) -> dict[str, Any] | None:
    """``vars()`` and slots of ``obj`` and the state of a random generator; ``None`` for an object without any."""
    state: dict[str, Any] = {}
    has_state = hasattr(obj, "__dict__")
    if has_state:
        state.update(vars(obj))
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            has_state = True
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                state[f"slot:{slot}"] = getattr(obj, slot)
    generator = _generator_state(obj)
    if generator is not None:
        has_state = True
        state["<generator state>"] = generator
    return state if has_state else None


def _generator_state(obj: Any) -> Any:
    """The state of a seeded random generator (``random.Random``, NumPy, torch), which is not in its ``vars()``.

    The process-wide generators (``random.random``'s, ``np.random.rand``'s, torch's) stand for themselves by
    name: a function that draws from them reads global state, not its own settings.
    """
    process_wide = "<process-wide generator>"
    if isinstance(obj, random.Random):
        if obj is getattr(random, "_inst", None):
            return process_wide
        try:
            return obj.getstate()
        except NotImplementedError:  # SystemRandom: not reproducible
            raise _Unknown from None
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(obj, numpy.random.RandomState):
            return process_wide if obj is getattr(numpy.random.mtrand, "_rand", None) else obj.get_state(legacy=False)
        if isinstance(obj, numpy.random.Generator):
            return obj.bit_generator.state
        if isinstance(obj, numpy.random.BitGenerator):
            return obj.state
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Generator):
        return process_wide if obj is torch.default_generator else (str(obj.device), obj.get_state())
    return None


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
