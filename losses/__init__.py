"""Loss functions, as a plugin registry (importable as ``graphdl.losses``).

>>> import graphdl
>>> loss = graphdl.losses.create("ntxent", temperature=0.1)
"""

import weakref

from graphdl.errors import ConfigError, did_you_mean
from graphdl.registry import Entry, Registry, expose_as_module, normalize


def entry_kind(entry: Entry) -> str | None:
    """A registered loss's kind: the one given at registration, else its class's ``kind`` attribute."""
    return entry.meta.get("kind") or (getattr(entry.obj, "kind", None) if isinstance(entry.obj, type) else None)


#: loss object -> the entry whose factory :func:`create` built it (a factory's kind is not on the object)
_BUILT: "weakref.WeakKeyDictionary[object, Entry]" = weakref.WeakKeyDictionary()


def _remember(entry: Entry, loss: object) -> object:
    """``on_create`` hook: keep which entry built ``loss``, so that :func:`entry_of` finds its kind."""
    try:
        _BUILT[loss] = entry
    except TypeError:  # not weakly referenceable or not hashable: found by its class alone
        pass
    return loss


def entry_of(loss: object) -> Entry | None:
    """The registry entry that built ``loss`` with :func:`create`, else the one whose class ``loss`` is an
    instance of (exactly), if any."""
    try:
        built = _BUILT.get(loss)
    except TypeError:
        built = None
    if built is not None and LOSSES._entries.get(normalize(built.name)) is built:  # still registered
        return built
    return next((e for e in LOSSES.entries() if e.obj is type(loss)), None)


def kind_of(loss: object) -> str | None:
    """A loss object's kind: that of the entry that built it or whose class it is (:func:`entry_of`,
    :func:`entry_kind`: the kind given at registration, else the class's), else its own ``kind`` attribute (a
    module a factory registered without a kind built)."""
    entry = entry_of(loss)
    return (entry_kind(entry) if entry is not None else None) or getattr(loss, "kind", None)


def _check_kind(entry: Entry) -> None:
    """A loss's kind must be one the Trainer knows; a :class:`~graphdl.losses.base.Loss` subclass must have one."""
    from graphdl.losses.base import KINDS, Loss

    kind = entry_kind(entry)
    if kind is None and isinstance(entry.obj, type) and issubclass(entry.obj, Loss):
        # no default kind: classification would call and score a metric loss as a classifier, without a word
        raise ConfigError(f"loss {entry.name!r} ({entry.obj.__name__}) has no kind, which tells the Trainer how to "
                          f"call and score it; register it with kind=... or set kind = '...' on the class. Kinds: "
                          f"{', '.join(KINDS)}")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"loss {entry.name!r}: unknown kind {kind!r}.{did_you_mean(str(kind), KINDS)} Kinds: "
                          f"{', '.join(KINDS)} (they tell the Trainer how to call the loss)")


LOSSES = Registry("losses", on_register=_check_kind, on_create=_remember)
expose_as_module(__name__, LOSSES)

__all__ = ["LOSSES", "entry_kind", "entry_of", "kind_of"]

# The built-in losses register themselves on import (one flat module per group).
from graphdl.losses import (  # noqa: E402,F401
    base,
    classification,
    distances,
    divergence,
    graph,
    metric,
    ranking,
)
from graphdl.losses.base import Loss  # noqa: E402
from graphdl.losses.distances import (  # noqa: E402
    CosineSimilarity,
    Distance,
    DotProductSimilarity,
    LpDistance,
)

__all__ += ["Loss", "Distance", "LpDistance", "CosineSimilarity", "DotProductSimilarity"]
