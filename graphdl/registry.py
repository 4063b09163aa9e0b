"""One generic plugin registry, shared by every plugin family.

Layers, losses, datasets and models are each one :class:`Registry`. Entries are
registered by a decorator in user code or arrive from other distributions
through an entry-point group (``graphdl.layers``, ``graphdl.losses``, ...),
which is read lazily the first time the registry is listed or a name is missed.

Names are normalised the way PyG's resolvers do it: case, ``-``, ``_`` and
spaces do not matter, so ``"GATv2"``, ``"gat_v2"`` and ``"gat-v2"`` are one name.

Set ``GRAPHDL_NO_PLUGINS=1`` to turn off entry-point loading.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import re
import sys
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

from graphdl.errors import ConfigError, DuplicateNameError, UnknownNameError, close_matches

__all__ = ["Entry", "Registry", "normalize", "expose_as_module", "NO_PLUGINS_ENV"]

NO_PLUGINS_ENV = "GRAPHDL_NO_PLUGINS"


def normalize(name: str) -> str:
    """Canonical lookup key: lower case without ``-``, ``_`` and spaces."""
    if not isinstance(name, str):
        raise TypeError(f"a registry name must be a str, got {type(name).__name__}")
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


_RST_ROLE = re.compile(r":(?:class|func|meth|mod|attr|math|data):`~?([^`]*)`")


def _summary_of(obj: Any) -> str:
    """The docstring's first line as plain text (``:class:`torch.nn.MSELoss``` reads torch.nn.MSELoss)."""
    doc = (inspect.getdoc(obj) or "").strip()
    if not doc:
        return ""
    line = _RST_ROLE.sub(r"\1", doc.splitlines()[0].strip())
    return line.replace("``", "")


def _origin_of(obj: Any) -> str:
    return getattr(obj, "__module__", None) or type(obj).__module__


_UNEXPECTED_KEYWORD = re.compile(r"unexpected keyword argument '([^']+)'")  # any key of a **dict ("edge-dim")
_MULTIPLE_VALUES = re.compile(r"got multiple values for (?:keyword )?argument '([^']+)'")


def keyword_names(target: Callable) -> tuple[list[str], bool]:
    """The keyword arguments ``target`` accepts, in signature order, and whether that list is complete.

    ``**kwargs`` is followed where it visibly leads: for a class, into the
    constructor of the next class up its MRO that defines one (cooperative
    ``super().__init__(**kwargs)``); for a function, into the constructor of the
    class it is annotated to return (``def gat(...) -> GATConv``). Anywhere else
    (``nn.Module``'s own ``**kwargs``, an unannotated factory) the list is incomplete.
    """
    names: list[str] = []
    current: Any = target
    while current is not None:
        try:
            params = inspect.signature(current.__init__ if isinstance(current, type) else current).parameters
        except (TypeError, ValueError):  # builtins without a signature
            return names, False
        names += [p.name for p in params.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self" and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names, True
        if isinstance(current, type):
            current = next((c for c in current.__mro__[1:] if "__init__" in vars(c)), object)
            if current is object or current.__module__.startswith("torch.nn.modules"):
                return names, False
        else:
            try:
                returned = typing.get_type_hints(current).get("return")
            except Exception:  # an annotation that does not resolve tells nothing
                returned = None
            current = returned if isinstance(returned, type) else None
    return names, False


def _same_definition(old: Any, new: Any) -> bool:
    """Whether ``new`` is ``old`` itself or its redefinition: the same ``__module__`` and ``__qualname__``
    (a re-run notebook cell, ``importlib.reload``), so that registering it again is not a clash."""
    if old is new:
        return True
    qualname = getattr(new, "__qualname__", None)
    if not (isinstance(qualname, str) and qualname == getattr(old, "__qualname__", None)
            and getattr(new, "__module__", None) == getattr(old, "__module__", None)):
        return False
    old_code, new_code = getattr(old, "__code__", None), getattr(new, "__code__", None)
    if ("<lambda>" in qualname or "<locals>" in qualname) and old_code is not None and new_code is not None:
        # every lambda of a module has one qualname: a redefinition is the same code from the same place
        return (old_code.co_filename, old_code.co_firstlineno, old_code.co_code) == (
            new_code.co_filename, new_code.co_firstlineno, new_code.co_code)
    return True


@dataclass(frozen=True)
class Entry:
    """One registered plugin."""

    name: str
    obj: Any
    aliases: tuple[str, ...] = ()
    origin: str = ""
    summary: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """A named collection of plugins (classes or factory callables).

    Args:
        family: The plural noun the registry holds (``"layers"``); it names the
            entry-point group ``graphdl.<family>`` and appears in error messages.
        entry_point_group: Override of the entry-point group, ``None`` for the
            default, ``""`` for none.
        on_create: Called as ``on_create(entry, obj)`` on every object
            :meth:`create` builds; returns the object to hand out (the layer
            registry attaches its input checks there).
        on_register: Called as ``on_register(entry)`` before an entry is added;
            raises :class:`ConfigError` for meta the family cannot use (the
            loss registry checks ``kind``).
    """

    def __init__(self, family: str, entry_point_group: str | None = None,
                 on_create: Callable[[Entry, Any], Any] | None = None,
                 on_register: Callable[[Entry], None] | None = None) -> None:
        self.family = family
        self.on_create = on_create
        self.on_register = on_register
        self.group = f"graphdl.{family}" if entry_point_group is None else entry_point_group
        self._entries: dict[str, Entry] = {}  # normalised primary name -> entry
        self._keys: dict[str, str] = {}  # normalised name or alias -> primary key
        self._plugins_loaded = False
        self._failed: dict[str, str] = {}  # normalised entry-point name -> why that plugin is not registered

    # ------------------------------------------------------------------ writing
    def register(
        self,
        name: str | Callable | None = None,
        obj: Any = None,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        override: bool = False,
        summary: str | None = None,
        origin: str | None = None,
        **meta: Any,
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        ``@registry.register`` (no call) uses the object's ``__name__``.
        Registering a taken name raises :class:`DuplicateNameError` unless
        ``override=True``. Extra keyword arguments are stored in ``Entry.meta``
        (for example the capability flags of a layer).
        """
        if callable(name) and obj is None:  # bare @register, or register(cls, aliases=..., **meta)
            return self.register(name.__name__, name, aliases=aliases, override=override, summary=summary,
                                 origin=origin, **meta)
        if obj is None:
            def decorator(target: Any) -> Any:
                self.register(name or target.__name__, target, aliases=aliases,
                              override=override, summary=summary, origin=origin, **meta)
                return target
            return decorator

        if not isinstance(name, str) or not normalize(name):
            raise ConfigError(f"a {self._singular} is registered under a non-empty string name, got {name!r}")
        if not callable(obj):
            raise ConfigError(f"{self._singular} {name!r}: a registered {self._singular} is a class or a factory "
                              f"function that builds one, got {type(obj).__name__} {obj!r}")
        module_type = getattr(sys.modules.get("torch.nn"), "Module", None)
        if module_type is not None and isinstance(obj, module_type):  # callable, but create() would run forward
            raise ConfigError(f"{self._singular} {name!r}: a registered {self._singular} is a class or a factory "
                              f"function that builds one, got a {type(obj).__name__} instance; register the "
                              f"class {type(obj).__name__} (or a function returning a new module) instead")
        if isinstance(aliases, str):  # aliases="gat2" is one alias, not the aliases 'g', 'a', 't', '2'
            aliases = (aliases,)
        for alias in aliases:
            if not isinstance(alias, str) or not normalize(alias):
                raise ConfigError(f"{self._singular} {name!r}: an alias is a non-empty string name, got {alias!r}")
        entry = Entry(
            name=name,
            obj=obj,
            aliases=tuple(aliases),
            origin=origin or _origin_of(obj),
            summary=_summary_of(obj) if summary is None else summary,
            meta=dict(meta),
        )
        if self.on_register is not None:
            self.on_register(entry)
        names = [name, *entry.aliases]
        keys = [normalize(n) for n in names]
        if not override:
            redefined = set()
            for given, key in zip(names, keys):
                if key in self._keys:
                    taken = self._entries[self._keys[key]]
                    if normalize(taken.name) == keys[0] and _same_definition(taken.obj, obj):
                        # the same object again, or a notebook cell / reloaded module that defines it anew:
                        # the new definition replaces the old one (with its aliases), as override=True would
                        redefined.add(self._keys[key])
                        continue
                    as_name = "" if normalize(taken.name) == key else f" as {taken.name!r}"
                    raise DuplicateNameError(
                        f"{self.family} name {given!r} is already registered{as_name} (by "
                        f"{taken.origin}). Pick another name, or pass override=True "
                        f"to replace it."
                    )
            for primary in redefined:
                self._remove(primary)
        else:
            for key in keys:  # an entry whose name is taken is replaced; one that only has a taken alias loses it
                if key not in self._keys:
                    continue
                primary = self._keys[key]
                if key == primary:
                    self._remove(primary)
                else:
                    held = self._entries[primary]
                    self._entries[primary] = replace(held, aliases=tuple(a for a in held.aliases
                                                                         if normalize(a) != key))
                    del self._keys[key]
        self._entries[keys[0]] = entry
        for key in keys:
            self._keys[key] = keys[0]
        return obj

    def unregister(self, name: str) -> None:
        """Remove a registered name (and its aliases)."""
        self._remove(self._resolve(name))

    def _remove(self, primary: str) -> None:
        self._entries.pop(primary, None)
        for key in [k for k, p in self._keys.items() if p == primary]:
            del self._keys[key]

    # ------------------------------------------------------------------ reading
    def _resolve(self, name: str) -> str:
        if not isinstance(name, str):  # layer=None, layer=GCNConv: normalize's bare TypeError named neither
            given = (name.__name__ if isinstance(name, type) else
                     repr(name) if name is None else f"{type(name).__name__} {name!r}")
            fix = (f"; to use {name.__name__} register it first with graphdl.{self.family}.register(\"<name>\", "
                   f"{name.__name__}) and pass that name" if callable(name) and hasattr(name, "__name__") else "")
            raise ConfigError(f"a {self._singular} is chosen by its registered name, a str, got {given}{fix}. "
                              f"See `graphdl list {self.family}`.")
        key = normalize(name)
        if key not in self._keys and not self._plugins_loaded:
            self.load_plugins()
        if key not in self._keys:
            if key in self._failed:
                raise UnknownNameError(f"{self._singular} {name!r} is the {self._failed[key]}; fix or reinstall "
                                       f"that distribution (or uninstall it). See `graphdl list {self.family}`.")
            raise UnknownNameError(self._unknown_message(name))
        return self._keys[key]

    @property
    def _singular(self) -> str:
        return self.family[:-2] if self.family.endswith("sses") else self.family.rstrip("s")

    def _unknown_message(self, name: str) -> str:
        spelled = {}  # normalised key -> the spelling it was registered with
        for entry in self._entries.values():
            for label in (entry.name, *entry.aliases):
                spelled[normalize(label)] = label
        by_entry: dict[str, str] = {}  # primary key -> its closest spelling, best entries first
        for key in close_matches(normalize(name), spelled, n=max(len(spelled), 1)):  # difflib refuses n=0
            by_entry.setdefault(self._keys[key], spelled[key])
        close = list(by_entry.values())[:5]
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        known = sorted((e.name for e in self._entries.values()), key=normalize)
        return (f"unknown {self._singular} {name!r}.{hint} Registered {self.family}: "
                f"{', '.join(known) or '(none)'}. See `graphdl list {self.family}`.")

    def entry(self, name: str) -> Entry:
        """The :class:`Entry` registered under ``name`` (or an alias)."""
        return self._entries[self._resolve(name)]

    def get(self, name: str) -> Any:
        """The class or factory registered under ``name``."""
        return self.entry(name).obj

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the plugin ``name`` with the given arguments (then the ``on_create`` hook).

        Arguments the plugin does not take raise :class:`ConfigError` naming
        the plugin, the closest accepted keyword and all it accepts. ``name`` is
        positional-only, so a plugin may itself take a ``name=`` keyword.
        """
        obj = self.build(name, *args, **kwargs)
        return obj if self.on_create is None else self.on_create(self.entry(name), obj)

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """:meth:`create` without the ``on_create`` hook (for containers that check inputs themselves)."""
        entry = self.entry(name)
        try:
            return entry.obj(*args, **kwargs)
        except TypeError as exc:
            message = self._call_error(entry, exc, kwargs)
            if message is None:
                raise
            raise ConfigError(message) from exc

    def _call_error(self, entry: Entry, exc: TypeError, kwargs: dict[str, Any]) -> str | None:
        """The message for a TypeError caused by the caller's arguments, else None (a fault inside)."""
        accepted, complete = keyword_names(entry.obj)
        if accepted:
            accepts = "It accepts: " + ", ".join(accepted) + (
                "." if complete else ", and those it passes on to what it builds.")
        else:
            accepts = "It takes no keyword arguments." if complete else \
                "It accepts only those it passes on to what it builds."
        unexpected = _UNEXPECTED_KEYWORD.search(str(exc))
        if unexpected and unexpected.group(1) in kwargs and unexpected.group(1) not in accepted:
            word = unexpected.group(1)
            by_lower = {a.lower(): a for a in accepted}  # 'k' is close to 'K' (ChebConv's K)
            close = [by_lower[m] for m in close_matches(word.lower(), by_lower)]
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            return f"{self._singular} {entry.name!r} got an unexpected keyword argument {word!r}.{hint} {accepts}"
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
            # raised while binding the arguments, before the plugin's own code ran
            return f"{self._singular} {entry.name!r} cannot be built from these arguments: {exc}. {accepts}"
        multiple = _MULTIPLE_VALUES.search(str(exc))
        if multiple and multiple.group(1) in kwargs:  # a factory passes it itself and forwards **kwargs too
            word = multiple.group(1)
            return (f"{self._singular} {entry.name!r} sets {word!r} itself and got it again as a keyword "
                    f"argument; leave {word}= out.")
        return None

    def entries(self, pattern: str | None = None) -> list[Entry]:
        """Entries sorted by name, optionally filtered by a wildcard pattern."""
        if not self._plugins_loaded:
            self.load_plugins()
        found = sorted(self._entries.values(), key=lambda e: normalize(e.name))
        if pattern:  # by name or alias, as a lookup finds them
            pat = normalize(pattern)
            found = [e for e in found if any(fnmatch.fnmatchcase(normalize(label), pat)
                                             for label in (e.name, *e.aliases))]
        return found

    def list(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names; ``pattern`` may hold ``*`` and ``?`` wildcards."""
        return [e.name for e in self.entries(pattern)]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = normalize(name)
        if key not in self._keys and not self._plugins_loaded:
            self.load_plugins()
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.entries())

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {len(self._entries)} entries)"

    # ------------------------------------------------------------------ plugins
    def load_plugins(self, force: bool = False) -> None:
        """Import the entry points of this registry's group (once).

        An entry point may name a class or factory, registered under the entry
        point's name, or a module that registers its plugins when imported. A
        plugin that fails to load is skipped with a warning naming it.
        """
        if (self._plugins_loaded and not force) or not self.group:
            return
        self._plugins_loaded = True
        self._failed.clear()  # a plugin fixed since the last load is no longer reported as broken
        if os.environ.get(NO_PLUGINS_ENV, "").strip() not in ("", "0"):
            return
        for ep in metadata.entry_points(group=self.group):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
            try:
                target = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break us
                self._plugin_failed(ep.name, f"{self.family} plugin {ep.name!r} ({ep.value}) from {dist}, which "
                                             f"could not be loaded: {type(exc).__name__}: {exc}",
                                    f"graphdl: could not load {self.family} plugin {ep.name!r} "
                                    f"({ep.value}) from {dist}: {type(exc).__name__}: {exc}")
                continue
            if isinstance(target, types.ModuleType):
                continue  # a module that registered itself
            key = normalize(ep.name)
            if key in self._keys:  # already there: registered by its own module when the entry point loaded it
                taken = self._entries[self._keys[key]]
                if taken.obj is not target:
                    warnings.warn(f"graphdl: skipped {self.family} plugin {ep.name!r} ({ep.value}) from {dist}: "
                                  f"the name is taken by {taken.name!r} from {taken.origin}",
                                  RuntimeWarning, stacklevel=2)
                continue
            # a plugin its module registered under another name keeps what it was registered with (a loss's kind)
            known = next((e for e in self._entries.values() if e.obj is target), None)
            try:
                self.register(ep.name, target, origin=f"{dist} ({ep.value})", **(known.meta if known else {}))
            except ConfigError as exc:  # not a class or factory, or meta the family cannot use
                self._plugin_failed(ep.name, f"{self.family} plugin {ep.name!r} ({ep.value}) from {dist}, which "
                                             f"was skipped: {exc}",
                                    f"graphdl: skipped {self.family} plugin {ep.name!r} ({ep.value}) from "
                                    f"{dist}: {exc}")

    def _plugin_failed(self, name: str, reason: str, warning: str) -> None:
        """Warn about an entry point that did not register, and keep why for a later lookup of its name."""
        with_key = normalize(name) if isinstance(name, str) else ""
        if with_key:
            self._failed[with_key] = reason
        warnings.warn(warning, RuntimeWarning, stacklevel=3)


class _RegistryModule(types.ModuleType):
    """A module that also answers ``name in module`` and ``len(module)``."""

    def __contains__(self, name: object) -> bool:
        return name in self.registry  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[str]:
        return iter(self.registry)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.registry)  # type: ignore[attr-defined]


def expose_as_module(module_name: str, registry: Registry) -> None:
    """Give a package the registry API: ``pkg.list()``, ``"x" in pkg`` ...

    Defines ``registry``, ``register``, ``get``, ``create``, ``list`` and
    ``entries`` in the module and lets ``in`` and ``len`` see the registry.
    """
    module = sys.modules[module_name]
    module.registry = registry  # type: ignore[attr-defined]
    for attr in ("register", "unregister", "get", "create", "list", "entries", "entry"):
        setattr(module, attr, getattr(registry, attr))
    module.__class__ = _RegistryModule
