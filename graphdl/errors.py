"""Exceptions raised by graphdl.

Every error a user can trigger with bad input derives from :class:`GraphDLError`
and says what was wrong and how to fix it. The command line turns these into a
single line and a non-zero exit code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "GraphDLError",
    "UnknownNameError",
    "DuplicateNameError",
    "ValidationError",
    "ConfigError",
    "DataError",
    "close_matches",
]


class GraphDLError(Exception):
    """Base class of every error graphdl raises on purpose."""


class UnknownNameError(GraphDLError, KeyError):
    """A name that no registry entry (or config key, or split) answers to."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(GraphDLError, ValueError):
    """A registry name that is already taken."""


class ValidationError(GraphDLError, ValueError):
    """An argument of the wrong shape, dtype, range or type."""


class ConfigError(GraphDLError, ValueError):
    """An invalid configuration value or key."""


class DataError(GraphDLError, RuntimeError):
    """A dataset that cannot be found, read or processed."""


def close_matches(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Return up to ``n`` candidates close to ``word`` (best first)."""
    candidates = list(candidates)
    found = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if not found:  # fall back to substring matches ("conv" -> "gcn_conv"...)
        found = [c for c in candidates if word and (word in c or c in word)][:n]
    return found


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix, or '' when nothing is close."""
    found = close_matches(word, candidates)
    return f" Did you mean {', '.join(repr(f) for f in found)}?" if found else ""
