"""graphdl.datasets.fingerprint: an edit of a user's pre_transform / pre_filter that changes what it
returns changes its fingerprint, and an unchanged one keeps it (in another process too).

Each case writes the user's code to module files in a tmp folder, imports them, fingerprints the
callable, edits a file, imports it again (as a new run of the user's script would) and
fingerprints again. The edit is checked to change the callable's output, so that every case is
one where reusing processed files would serve wrong data.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

import test_datasets_cache

from graphdl.datasets.fingerprint import _Walk, fingerprint

_NAMES = ("fp_user", "fp_helpers", "fp_sub")
_isolated_env = test_datasets_cache._isolated_env  # autouse: a cache folder per test, no GRAPHDL_DATA
_writable_copy = test_datasets_cache._writable_copy


class _Sources:
    """User module files in a tmp folder, imported afresh on each :meth:`load`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            (self.folder / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")

    def load(self, name: str = "fp_user") -> ModuleType:
        _forget()
        importlib.invalidate_caches()
        return importlib.import_module(name)


def _forget() -> None:
    for name in _NAMES:
        sys.modules.pop(name, None)


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Sources]:
    folder = tmp_path / "user_code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no .pyc that could outlive an edit
    yield _Sources(folder)
    _forget()


def _graph() -> Any:
    from torch_geometric.data import Data

    return Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))


def _output(transform: Callable[..., Any]) -> Any:
    out = transform(_graph())
    return out if isinstance(out, bool) else out.x.tolist()


def _assert_edit_noticed(sources: _Sources, before: dict[str, str], after: dict[str, str],
                         attr: str = "transform") -> None:
    """``before`` -> ``after`` changes the output of ``fp_user.<attr>``: the fingerprint must change."""
    sources.write(before)
    old = getattr(sources.load(), attr)
    old_fp, old_out = fingerprint(old), _output(old)
    assert old_fp is not None
    assert fingerprint(getattr(sources.load(), attr)) == old_fp  # unchanged files: the same
    sources.write(after)
    new = getattr(sources.load(), attr)
    assert _output(new) != old_out  # the edit matters to the data
    new_fp = fingerprint(new)
    assert new_fp is not None and new_fp != old_fp


# ------------------------------------------------------------ methods and classes
_HELPER_METHOD = """
class Scale:
    def __call__(self, data):
        data.x = self._scaled(data.x)
        return data

    def _scaled(self, x):
        return x * {k}

transform = Scale()
"""


def test_an_edited_helper_method_is_noticed(sources: _Sources) -> None:
    _assert_edit_noticed(sources, {"fp_user": _HELPER_METHOD.format(k=2)}, {"fp_user": _HELPER_METHOD.format(k=3)})


_FORWARD_HELPER = """
from torch_geometric.transforms import BaseTransform

class Shift(BaseTransform):
    def forward(self, data):
        data.x = data.x + self.amount()
        return data

    {decorator}
    def amount({arg}):
        return {k}

transform = Shift()
"""


@pytest.mark.parametrize("decorator,arg", [("", "self"), ("@staticmethod", ""), ("@classmethod", "cls"),
                                           ("@property", "self")])
def test_an_edited_helper_of_a_base_transform_subclass_is_noticed(sources: _Sources, decorator: str,
                                                                  arg: str) -> None:
    text = _FORWARD_HELPER if decorator != "@property" else _FORWARD_HELPER.replace("self.amount()", "self.amount")
    before, after = (text.format(decorator=decorator, arg=arg, k=k) for k in (1, 5))
    _assert_edit_noticed(sources, {"fp_user": before}, {"fp_user": after})


_CLASS_ATTRIBUTE = """
class Scale:
    factor = {k}

    def __call__(self, data):
        data.x = data.x * self.factor
        return data

transform = Scale()
"""


def test_an_edited_class_attribute_is_noticed(sources: _Sources) -> None:
    _assert_edit_noticed(sources, {"fp_user": _CLASS_ATTRIBUTE.format(k=2)},
                         {"fp_user": _CLASS_ATTRIBUTE.format(k=3)})


_INHERITED = """
import fp_helpers

class Scale(fp_helpers.Base):
    def __call__(self, data):
        data.x = self.scaled(data.x)
        return data

transform = Scale()
"""
_BASE = """
class Base:
    def scaled(self, x):
        return x * {k}
"""


def test_an_edited_method_of_a_base_class_in_another_module_is_noticed(sources: _Sources) -> None:
    _assert_edit_noticed(sources, {"fp_user": _INHERITED, "fp_helpers": _BASE.format(k=2)},
                         {"fp_user": _INHERITED, "fp_helpers": _BASE.format(k=3)})


_CLASS_USED_BY_FUNCTION = """
class Scaler:
    def __init__(self, k):
        self.k = k

    def apply(self, x):
        return x * self.k + {b}

def transform(data):
    data.x = Scaler(2).apply(data.x)
    return data
"""


def test_an_edited_class_that_a_function_uses_is_noticed(sources: _Sources) -> None:
    _assert_edit_noticed(sources, {"fp_user": _CLASS_USED_BY_FUNCTION.format(b=0)},
                         {"fp_user": _CLASS_USED_BY_FUNCTION.format(b=1)})


_MODULE_TRANSFORM = """
import torch

class Project(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("weight", torch.ones(2, 2))

    def forward(self, data):
        data.x = self.project(data.x)
        return data

    def project(self, x):
        return x @ self.weight + {b}

transform = Project()
"""


def test_an_edited_helper_method_of_an_nn_module_is_noticed(sources: _Sources) -> None:
    _assert_edit_noticed(sources, {"fp_user": _MODULE_TRANSFORM.format(b=0)},
                         {"fp_user": _MODULE_TRANSFORM.format(b=1)})


_COMPOSED = """
from torch_geometric.transforms import Compose, NormalizeFeatures

class AddBias:
    def __call__(self, data):
        data.x = self.biased(data.x)
        return data

    def biased(self, x):
        return x + {b}

transform = Compose([AddBias(), NormalizeFeatures()])
"""


def test_an_edited_helper_method_inside_a_compose_is_noticed(sources: _Sources) -> None:
    # NormalizeFeatures divides by the row sums: a bias of 1 or of 2 gives rows of 0.5 either way
    before, after = _COMPOSED.format(b=1), _COMPOSED.format(b="torch.arange(2.0)").replace(
        "from torch_geometric", "import torch\nfrom torch_geometric")
    _assert_edit_noticed(sources, {"fp_user": before}, {"fp_user": after})


# ------------------------------------------------------------ other modules and module state
_IMPORTS_FUNCTION = """
from fp_helpers import scaled

def transform(data):
    data.x = scaled(data.x)
    return data
"""
_SCALED = """
def scaled(x):
    return x * {k}
"""


def test_an_edited_function_imported_from_another_module_is_noticed(sources: _Sources) -> None:
    _assert_edit_noticed(sources, {"fp_user": _IMPORTS_FUNCTION, "fp_helpers": _SCALED.format(k=2)},
                         {"fp_user": _IMPORTS_FUNCTION, "fp_helpers": _SCALED.format(k=3)})


_READS_MODULE = """
import fp_helpers

def transform(data):
    data.x = data.x * fp_helpers.FACTOR + fp_helpers.fp_sub.shift(data.x)
    return data
"""
_MODULE_CONSTANT = """
import fp_sub

FACTOR = {k}
"""
_SUBMODULE = """
def shift(x):
    return x * {s}
"""


@pytest.mark.parametrize("k,s", [(3, 0), (2, 1)])
def test_an_edited_constant_or_function_read_through_a_module_is_noticed(sources: _Sources, k: int,
                                                                          s: int) -> None:
    before = {"fp_user": _READS_MODULE, "fp_helpers": _MODULE_CONSTANT.format(k=2), "fp_sub": _SUBMODULE.format(s=0)}
    after = {**before, "fp_helpers": _MODULE_CONSTANT.format(k=k), "fp_sub": _SUBMODULE.format(s=s)}
    _assert_edit_noticed(sources, before, after)


_GLOBAL_DTYPE = """
import torch

DTYPE = torch.{dtype}

def transform(data):
    data.x = (data.x / 3).to(DTYPE)
    return data
"""


def test_an_edited_module_level_dtype_is_noticed(sources: _Sources) -> None:
    """A torch.dtype has no attributes to read: it was fingerprinted as '?torch.dtype' whatever it was."""
    _assert_edit_noticed(sources, {"fp_user": _GLOBAL_DTYPE.format(dtype="float32")},
                         {"fp_user": _GLOBAL_DTYPE.format(dtype="float16")})


_HELPER_READS_GLOBAL = """
SETTINGS = {{"scale": {k}, "names": ("x",)}}

class Scale:
    def __call__(self, data):
        return self._apply(data)

    def _apply(self, data):
        data.x = data.x * SETTINGS["scale"]
        return data

transform = Scale()
"""


def test_an_edited_global_read_by_a_helper_method_is_noticed(sources: _Sources) -> None:
    _assert_edit_noticed(sources, {"fp_user": _HELPER_READS_GLOBAL.format(k=2)},
                         {"fp_user": _HELPER_READS_GLOBAL.format(k=3)})


# ------------------------------------------------------------ what was already covered (kept so)
_FUNCTIONS = """
import functools

FACTOR = {factor}

def _scaled(x, k={default}):
    return x * k * FACTOR

def _add(data, k):
    data.x = data.x + k
    return data

def make(k):
    def add(data):
        data.x = _scaled(data.x) + k
        return data
    return add

class Add:
    def __init__(self, k):
        self.k = k

    def __call__(self, data):
        data.x = data.x + self.k
        return data

closure = make({closure})
partial = functools.partial(_add, k={partial})
instance = Add({init})

def keep(data):
    return bool(_scaled(data.x).sum() > {threshold})
"""
_DEFAULTS = {"factor": 1, "default": 1, "closure": 0, "partial": 1, "init": 1, "threshold": 7}


@pytest.mark.parametrize("attr,key,value", [("closure", "factor", 2), ("closure", "default", 2),
                                            ("closure", "closure", 1), ("partial", "partial", 2),
                                            ("instance", "init", 2), ("keep", "threshold", 5)])
def test_edits_of_globals_defaults_closures_partials_and_attributes_are_noticed(sources: _Sources, attr: str,
                                                                                key: str, value: int) -> None:
    before = {"fp_user": _FUNCTIONS.format(**_DEFAULTS)}
    after = {"fp_user": _FUNCTIONS.format(**{**_DEFAULTS, key: value})}
    _assert_edit_noticed(sources, before, after, attr)


# ------------------------------------------------------------ stability
_CYCLIC = """
import torch
from torch_geometric.transforms import Compose, NormalizeFeatures

NAMES = {"x", "pos", "edge_attr"}
TABLE = {"b": 2, "a": frozenset({"u", "v", "w"})}

class Node:
    def __init__(self):
        self.me = self
        self.kind = Node

    def __call__(self, data):
        return self.step(data)

    def step(self, data):
        if "x" in NAMES and TABLE["b"] == 2:
            data.x = data.x.to(torch.float32)
        return Node.step2(self, data)

    def step2(self, data):
        return data

transform = Compose([Node(), NormalizeFeatures()])
"""

_BUILTINS = "[NormalizeFeatures(), ToUndirected(), Compose([NormalizeFeatures(), ToUndirected()])]"
_SCRIPT = f"""
import json, sys
from torch_geometric.transforms import Compose, NormalizeFeatures, ToUndirected
from graphdl.datasets.fingerprint import fingerprint
import fp_user
print(json.dumps([fingerprint(t) for t in {_BUILTINS} + [fp_user.transform]]))
"""


def test_an_unchanged_pre_transform_keeps_its_fingerprint_in_another_process(sources: _Sources) -> None:
    from torch_geometric.transforms import Compose, NormalizeFeatures, ToUndirected

    sources.write({"fp_user": _CYCLIC})
    transform = sources.load().transform
    builtin = [NormalizeFeatures(), ToUndirected(), Compose([NormalizeFeatures(), ToUndirected()])]
    here = [fingerprint(t) for t in builtin] + [fingerprint(transform)]
    assert None not in here and len(set(here)) == len(here)
    assert fingerprint(sources.load().transform) == here[-1]  # imported again
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": os.pathsep.join([str(sources.folder), *sys.path]),
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == here


def test_fingerprints_of_builtin_transforms_hold_no_memory_address() -> None:
    from torch_geometric.transforms import Compose, NormalizeFeatures, RandomNodeSplit, ToUndirected

    for transform in (NormalizeFeatures(), ToUndirected(), Compose([NormalizeFeatures(), ToUndirected()]),
                      RandomNodeSplit(num_val=10), torch.float32, torch.device("cpu")):
        text = _Walk().fp(transform, 0)
        assert not re.search(r"0x[0-9a-fA-F]{6,}", text), text
        assert fingerprint(transform) is not None
    assert fingerprint(torch.float32) != fingerprint(torch.float64)


def test_third_party_code_is_fingerprinted_by_name_and_version() -> None:
    """PyG's own transform code is not walked into: its name and the installed version stand for it."""
    import torch_geometric
    from torch_geometric.transforms import NormalizeFeatures

    text = _Walk().fp(NormalizeFeatures(), 0)
    assert torch_geometric.__version__ in text
    assert "code(" not in text  # no byte code of PyG's forward


_DEEP_GLOBAL = """
SETTINGS = {k}
for _ in range(60):
    SETTINGS = [SETTINGS]

def transform(data):
    value = SETTINGS
    while isinstance(value, list):
        value = value[0]
    data.x = data.x * value
    return data
"""


def test_a_global_nested_too_deep_to_fingerprint_is_never_reused(sources: _Sources) -> None:
    """It counted as an unknown global ('?list'): an edit deep inside went unnoticed. Now: no fingerprint."""
    sources.write({"fp_user": _DEEP_GLOBAL.format(k=2)})
    assert fingerprint(sources.load().transform) is None


_MUTUAL = """
import fp_helpers

class Scale:
    me = None

    def __call__(self, data):
        data.x = data.x * fp_helpers.factor(self)
        return data

transform = Scale()
transform.me = Scale.me = transform
"""
_MUTUAL_HELPERS = """
import fp_user

def factor(transform):
    return {k} if isinstance(transform, fp_user.Scale) and fp_user.fp_helpers.factor else 0
"""


def test_modules_and_classes_that_refer_to_each_other_are_fingerprinted(sources: _Sources) -> None:
    """Cycles (module <-> module, object <-> class) are bounded; an edit behind them is still seen."""
    _assert_edit_noticed(sources, {"fp_user": _MUTUAL, "fp_helpers": _MUTUAL_HELPERS.format(k=2)},
                         {"fp_user": _MUTUAL, "fp_helpers": _MUTUAL_HELPERS.format(k=3)})


# ------------------------------------------------------------ end to end
def test_load_processes_again_after_a_helper_method_is_edited(sources: _Sources, shared_data: Path,
                                                              tmp_path: Path) -> None:
    """The processed Cora made with ``x * 2`` was served again after ``_scaled`` became ``x * 3``."""
    import graphdl.datasets as datasets

    _writable_copy(shared_data / "planetoid" / "Cora", tmp_path / "planetoid" / "Cora")
    sources.write({"fp_user": _HELPER_METHOD.format(k=2)})
    assert datasets.load("cora", root=tmp_path, pre_transform=sources.load().transform)._data.x.max().item() == 2.0
    sources.write({"fp_user": _HELPER_METHOD.format(k=3)})
    assert datasets.load("cora", root=tmp_path, pre_transform=sources.load().transform)._data.x.max().item() == 3.0
