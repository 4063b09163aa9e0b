"""Audit of graphdl.datasets.fingerprint (what decides that processed files are stale) and seed_everything.

Each fingerprint case is one where the old fingerprint stayed the same although the pre_transform's
output changed, so that processed files made with the old one would have been served.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

import graphdl
from graphdl.datasets import fingerprint as fingerprint_module
from graphdl.datasets.fingerprint import fingerprint

_NAMES = ("fp_audit_user", "this")  # "this": a user module named like a standard-library one


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """write(text, name) -> the module imported afresh from ``text``, as a new run of the user's script would."""
    folder = tmp_path / "user_code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    saved = {name: sys.modules[name] for name in _NAMES if name in sys.modules}

    def load(text: str, name: str = "fp_audit_user") -> ModuleType:
        (folder / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return importlib.import_module(name)

    yield load
    for name in _NAMES:
        sys.modules.pop(name, None)
    sys.modules.update(saved)


def _x() -> torch.Tensor:
    return torch.tensor([1.0, -2.0, 3.0])


def _assert_noticed(write, before: str, after: str, run, name: str = "fp_audit_user") -> None:
    """``before`` -> ``after`` changes what ``run(module)`` returns: the fingerprint of ``module.transform`` too."""
    old = write(before, name)
    old_fp, old_out = fingerprint(old.transform), run(old)
    assert old_fp is not None
    assert fingerprint(write(before, name).transform) == old_fp  # the same file imported again: the same
    new = write(after, name)
    new_fp = fingerprint(new.transform)  # before the run, which may change state (fill a defaultdict)
    assert not torch.equal(run(new), old_out)  # the edit matters to the data
    assert new_fp not in (None, old_fp)


_LIST_SUBCLASS = """
class Pipeline(list):
    def __call__(self, x):
        for step in self:
            x = step(x)
        return x

transform = Pipeline([abs])
"""


def test_an_edited_method_of_a_list_subclass_is_noticed(write) -> None:
    after = _LIST_SUBCLASS.replace("x = step(x)", "x = -step(x)")
    _assert_noticed(write, _LIST_SUBCLASS, after, lambda m: m.transform(_x()))


_DICT_SUBCLASS = """
class Settings(dict):
    def factor(self):
        return self["k"] * 2

SETTINGS = Settings(k=1)

def transform(x):
    return x * SETTINGS.factor()
"""


def test_an_edited_method_of_a_dict_subclass_read_by_the_transform_is_noticed(write) -> None:
    after = _DICT_SUBCLASS.replace('self["k"] * 2', 'self["k"] * 3')
    _assert_noticed(write, _DICT_SUBCLASS, after, lambda m: m.transform(_x()))


_INT_ENUM = """
import enum

class Mode(enum.IntEnum):
    SCALE = 2

    def apply(self, x):
        return x * int(self)

transform = Mode.SCALE
"""


def test_an_edited_method_of_an_int_enum_is_noticed(write) -> None:
    after = _INT_ENUM.replace("x * int(self)", "x + int(self)")
    _assert_noticed(write, _INT_ENUM, after, lambda m: m.transform.apply(_x()))


_FUNCTION_ATTRIBUTE = """
def transform(x):
    return x * transform.scale

transform.scale = 2
"""


def test_an_edited_attribute_of_the_function_is_noticed(write) -> None:
    after = _FUNCTION_ATTRIBUTE.replace("scale = 2", "scale = 3")
    _assert_noticed(write, _FUNCTION_ATTRIBUTE, after, lambda m: m.transform(_x()))


_DEFAULTDICT = """
import collections

SCALES = collections.defaultdict(lambda: 2)

def transform(x):
    return x * SCALES["x"]
"""


def test_an_edited_defaultdict_factory_is_noticed(write) -> None:
    after = _DEFAULTDICT.replace("lambda: 2", "lambda: 3")
    _assert_noticed(write, _DEFAULTDICT, after, lambda m: m.transform(_x()))


def test_a_user_module_named_like_a_standard_library_module_is_followed(write) -> None:
    before = "def transform(x):\n    return x * 2\n"
    _assert_noticed(write, before, before.replace("* 2", "* 3"), lambda m: m.transform(_x()), name="this")


class _Jitter:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rng.random()


def test_a_seeded_random_generator_is_fingerprinted_by_its_state() -> None:
    assert _Jitter(0)(_x())[0] != _Jitter(1)(_x())[0]  # the seed matters to the data
    assert fingerprint(_Jitter(0)) == fingerprint(_Jitter(0))
    assert fingerprint(_Jitter(0)) not in (None, fingerprint(_Jitter(1)))
    # NumPy's and torch's generators: by their state too (they used to be unknown, so never reused)
    for make in (np.random.default_rng, np.random.RandomState, lambda s: torch.Generator().manual_seed(s)):
        assert fingerprint(make(0)) == fingerprint(make(0))
        assert fingerprint(make(0)) not in (None, fingerprint(make(1)))
    assert fingerprint(random.SystemRandom()) is None  # not reproducible: never reused


def test_a_builtin_method_is_fingerprinted_with_the_object_it_is_bound_to() -> None:
    assert fingerprint(torch.tensor([1.0]).add) not in (None, fingerprint(torch.tensor([2.0]).add))
    assert fingerprint(torch.tensor([1.0]).add) == fingerprint(torch.tensor([1.0]).add)
    assert fingerprint((2).__mul__) not in (None, fingerprint((3).__mul__))  # a method-wrapper
    assert fingerprint(torch.sigmoid) is not None and fingerprint(len) == fingerprint(len)


_SCRIPT = """
import collections, enum, importlib.util, json, random, sys
import numpy as np, torch

spec = importlib.util.spec_from_file_location("fingerprint_under_test", sys.argv[1])  # without graphdl's imports
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
fingerprint = module.fingerprint

class Mode(enum.IntEnum):
    A = 1

class Pipeline(list):
    def __call__(self, data):
        return data

def objects():
    random.random(); np.random.rand()  # the process-wide generators are not part of a transform
    return [Mode.A, Pipeline([abs, torch.nn.Identity()]), collections.namedtuple("P", "a b", defaults=(2,))(1),
            collections.defaultdict(list, a=[1]), collections.Counter("abca"), np.float64(1.5),
            torch.Size([2, 3]), random.Random(3), np.random.default_rng(4), torch.Generator().manual_seed(5),
            torch.arange(3).add, random.shuffle, np.random.shuffle]

print(json.dumps([fingerprint(obj) for obj in objects()]))
"""


def test_fingerprints_of_subclasses_generators_and_bound_methods_hold_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "fp_script.py"
    script.write_text(_SCRIPT, encoding="utf-8")
    runs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run([sys.executable, str(script), fingerprint_module.__file__], env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert None not in runs[0] and len(set(runs[0])) == len(runs[0])


# ------------------------------------------------------------ seed_everything
@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1])
def test_seed_everything_seeds_what_pyg_seeds(seed: int) -> None:
    import torch_geometric

    def draws() -> tuple:
        return random.random(), np.random.rand(), torch.rand(2).tolist()

    graphdl.seed_everything(seed)
    ours = draws()
    torch_geometric.seed_everything(seed)
    assert draws() == ours
