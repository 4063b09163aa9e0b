"""Run configurations: one schema for CLI flags and YAML files.

A YAML file for ``graphdl train --config FILE`` holds the same keys as the
command line's long options (with ``_`` or ``-``)::

    dataset: cora
    layer: gat
    seeds: 10
    epochs: 200
    hidden_channels: 64
    heads: 8
    loss_kwargs: {label_smoothing: 0.1}

Unknown keys and values of the wrong type raise :class:`ConfigError` naming
the key (with close matches) and the expected type. ``~`` in a path
(``root``, ``json``, ``log``, ``checkpoint_dir``) is the home folder, as in a shell.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graphdl.errors import ConfigError, did_you_mean

__all__ = ["TrainConfig", "load_config", "MODEL_KEYS", "MAX_SEEDS", "config_changes", "json_plain"]

#: The most seeds one run takes: a larger number is a typo (``--seeds 1e11`` would exhaust memory listing them);
#: a larger benchmark is split into runs with ``--first-seed``.
MAX_SEEDS = 10_000


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading floats as YAML 1.2 does: ``1e-3`` is a number (YAML 1.1 wants ``1.0e-3``
    and PyYAML reads ``1e-3`` as a string, the way learning rates are usually written); integers too
    (:func:`_construct_int`); a key given twice in one mapping is refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # YAML keeps the last of two equal keys, so the first value was silently ignored; keys that ``<<``
        # merges in may be overridden (that is what merging is for), so they are not counted
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=deep), key_node.start_mark.line + 1
            try:
                if key in lines:
                    raise ConfigError(f"key {key!r} is given twice (lines {lines[key]} and {line}); keep one")
                lines[key] = line
            except TypeError:  # an unhashable key: the base class names it
                continue
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    """Integers as YAML 1.2 reads them: ``010`` is ten and ``1:30`` is text (YAML 1.1 reads octal eight and
    base-60 ninety); ``0x1f``, ``0b101`` and ``1_000`` as before."""
    text = loader.construct_scalar(node)
    digits = text.replace("_", "")
    if ":" in digits:
        return text
    if re.fullmatch(r"[-+]?[0-9]+", digits):
        return int(digits, 10)
    return loader.construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9][0-9_]*$"),  # 08: eight
                              list("-+0123456789"))


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                   |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


@dataclass
class TrainConfig:
    """Everything ``graphdl train`` needs; ``None`` means "the dataset's default"."""

    dataset: str = "cora"
    layer: str | None = None
    loss: str | None = None
    loss_kwargs: dict[str, Any] | None = None
    seeds: int = 1
    epochs: int | None = None
    root: str | None = None
    json: str | None = None
    log: str | None = None
    hidden_channels: int | None = None
    num_layers: int | None = None
    dropout: float | None = None
    lr: float | None = None
    weight_decay: float | None = None
    heads: int | None = None
    batch_size: int | None = None
    virtual_node: bool | None = None  # None: the dataset's default (OGB molecules' default model has one)
    norm: str | None = None
    residual: bool | None = None
    jk: str | None = None
    num_neighbors: list[int] | None = None
    patience: int | None = None
    monitor: str | None = None
    device: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    nproc: int = 1
    progress: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def model_overrides(self) -> dict[str, Any]:
        """The model/optimisation settings the user set (``None`` ones left out)."""
        out = {k: getattr(self, k) for k in MODEL_KEYS if getattr(self, k) is not None}
        out.update(self.extra)
        return out


_JK_MODES = ("last", "cat", "max", "sum")
MODEL_KEYS = ("layer", "loss", "loss_kwargs", "hidden_channels", "num_layers", "dropout", "lr", "weight_decay", "heads",
              "batch_size", "virtual_node", "norm", "residual", "jk", "num_neighbors", "patience", "monitor")
#: Keys holding a path: ``~`` is expanded, as a shell expands it in a flag (``root: ~/data`` in a YAML file)
PATH_KEYS = ("root", "json", "log", "checkpoint_dir")
_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _allowed(tp: Any) -> tuple[type, ...]:
    """Concrete runtime types a (possibly optional) annotation admits."""
    tp = typing.get_type_hints(TrainConfig)[tp] if isinstance(tp, str) else tp
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    return tuple(typing.get_origin(a) or a for a in args)


def _check_value(key: str, value: Any) -> Any:
    allowed = _allowed(key)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool) and bool not in allowed:
        raise ConfigError(f"config key {key!r} must be {_describe(allowed)}, got {value!r}")
    if isinstance(value, int) and float in allowed and not isinstance(value, bool):
        if abs(value) > sys.float_info.max:  # float() would raise OverflowError
            raise ConfigError(f"config key {key!r} must be a finite number, got an int too large for a float")
        value = float(value)
    if not isinstance(value, allowed):
        raise ConfigError(f"config key {key!r} must be {_describe(allowed)}, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key!r} must be a finite number, got {value}")
    if key in ("seeds", "nproc", "epochs", "hidden_channels", "num_layers", "heads", "batch_size", "patience") \
            and value is not None and value < 1:
        raise ConfigError(f"config key {key!r} must be >= 1, got {value}")
    if key == "seeds" and value > MAX_SEEDS:
        raise ConfigError(f"config key 'seeds' must be at most {MAX_SEEDS} (the number of seeds of one run), got "
                          f"{value}; split a larger benchmark into runs (graphdl bench run --first-seed K)")
    if key == "weight_decay" and value is not None and value < 0:
        raise ConfigError(f"config key 'weight_decay' must be >= 0, got {value}")
    if key == "jk" and value is not None and value not in _JK_MODES:
        raise ConfigError(f"config key 'jk' must be one of {', '.join(_JK_MODES)}, got {value!r}."
                          f"{did_you_mean(str(value), _JK_MODES)}")
    if key == "loss_kwargs" and value is not None and not all(isinstance(k, str) for k in value):
        raise ConfigError(f"config key 'loss_kwargs' must map keyword names (strings) to values, got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"config key {key!r} must not be empty")
    if key in ("lr",) and value is not None and value <= 0:
        raise ConfigError(f"config key 'lr' must be > 0, got {value}")
    if key == "dropout" and value is not None and not 0 <= value < 1:
        raise ConfigError(f"config key 'dropout' must lie in [0, 1), got {value}")
    if key == "num_neighbors" and (not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= -1
                                                   for v in value)):
        raise ConfigError(f"config key 'num_neighbors' must be a non-empty list of ints >= -1, got {value!r}")
    return value


#: The most values (scalars and containers, YAML aliases expanded) one configuration holds
MAX_VALUES = 100_000


def _check_structure(key: str, value: Any, source: str) -> None:
    """Refuse a value that holds itself (``loss_kwargs: &a {x: *a}``) or that YAML aliases nested in aliases
    expand to more than :data:`MAX_VALUES` values: checks and error messages walk the expanded value."""
    count = 0

    def walk(v: Any, inside: set[int]) -> None:
        nonlocal count
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"config key {key!r} in {source} expands to more than {MAX_VALUES} values (YAML "
                              f"aliases inside aliases?); write the value out")
        if isinstance(v, (list, tuple, dict)):
            if id(v) in inside:
                raise ConfigError(f"config key {key!r} in {source} holds itself (a YAML alias inside its own "
                                  f"anchor); write the value out")
            inside.add(id(v))
            for item in (list(v.keys()) + list(v.values()) if isinstance(v, dict) else v):
                walk(item, inside)
            inside.discard(id(v))

    try:
        walk(value, set())
    except RecursionError:
        raise ConfigError(f"config key {key!r} in {source} is nested too deeply; write a flat value") from None


def _describe(types_: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types_)


def config_from_dict(values: dict[str, Any], source: str = "config") -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping (keys with ``-`` or ``_``)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source} must hold a mapping of keys to values, got {type(values).__name__}")
    cfg = TrainConfig()
    given: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in _FIELDS or key == "extra":
            raise ConfigError(f"unknown key {raw_key!r} in {source}.{did_you_mean(key, [k for k in _FIELDS if k != 'extra'])}"
                              f" Known keys: {', '.join(k for k in _FIELDS if k != 'extra')}")
        if key in given:  # hidden_channels and hidden-channels: the later would silently win
            raise ConfigError(f"{source}: {given[key]!r} and {raw_key!r} are the same key; keep one")
        given[key] = raw_key
        _check_structure(key, value, source)
        value = _check_value(key, value)
        if key in PATH_KEYS and value is not None:  # not a folder named '~' in the working folder
            value = os.path.expanduser(value)
        setattr(cfg, key, value)
    return cfg


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read and validate a YAML run configuration."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give the path of the YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise ConfigError(f"config file {path} is not valid YAML: it holds NUL bytes (a binary file?)")
    try:
        values = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except ConfigError as exc:  # a key given twice
        raise ConfigError(f"config file {path}: {exc}") from None
    except (ValueError, RecursionError, OverflowError) as exc:  # e.g. a timestamp out of range
        raise ConfigError(f"config file {path} is not valid YAML: {type(exc).__name__}: {exc}") from None
    if values is None:  # not {}: a run of every default from a file whose keys were all commented out
        raise ConfigError(f"config file {path} holds no keys (it is empty or all comments); write the run's "
                          f"settings, e.g. 'dataset: cora', or leave --config out to run the defaults")
    return config_from_dict(values, source=str(path))


_UNSET = object()


#: The address in a default repr (``<function f at 0x7f...>``): another process gives the same object another one
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+(?=>)")


def _plain_value(value: Any) -> Any:
    """A value JSON cannot write: numpy and torch numbers and arrays as their Python values, other objects by
    their repr without a memory address (a function is the same function in the process that resumes it)."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, type):
        try:
            return tolist()
        except Exception:  # noqa: BLE001 - an object whose tolist is something else: its repr
            pass
    return _ADDRESS.sub("", repr(value))


def json_plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples as lists, numpy numbers as numbers, other objects by their repr
    without a memory address), for comparisons; strings lose such addresses too (a file written before)."""
    return json.loads(_ADDRESS.sub("", json.dumps(value, sort_keys=True, default=_plain_value)))


def _same(old: Any, new: Any) -> bool:
    """Equal JSON values; NaN equals NaN (JSON writes both ``NaN``), 1 equals 1.0."""
    if old is _UNSET or new is _UNSET:
        return old is new
    return old == new or json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def config_changes(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """``["lr 0.01 -> 0.5", "monitor (not set) -> \"val_loss\""]``: the keys whose values differ (JSON-compared,
    see :func:`json_plain`; a key only one side has is ``(not set)`` on the other: an option without a default
    value, or a setting turned off with null), sorted, ``ignore`` left out."""
    old, new = json_plain(old), json_plain(new)
    changes = []
    for key in sorted(set(old) | set(new)):
        if key in ignore or _same(old.get(key, _UNSET), new.get(key, _UNSET)):
            continue
        show = ["(not set)" if v is _UNSET else json.dumps(v) for v in (old.get(key, _UNSET), new.get(key, _UNSET))]
        changes.append(f"{key} {show[0]} -> {show[1]}")
    return changes

