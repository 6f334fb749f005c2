"""Errors that mean "the user asked for something we cannot do".

The CLI turns an :class:`SSLBenchError` into one line on stderr and exit status 2;
anything else escaping a sweep cell is a bug or a training failure and is recorded
in that cell's record instead (see :mod:`sslbench._core.runner`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    'SSLBenchError', 'MalformedPlugin', 'NonFiniteLoss', 'unknown_name', 'did_you_mean'
]


class SSLBenchError(Exception):
    """Bad input: an unknown name, a missing folder, an unreadable file, ..."""


class MalformedPlugin(SSLBenchError):
    """A plugin gave something sslbench cannot use (float images, a 2-D stage map, a hook
    returning a string). The core adds which plugin, and which distribution, it was."""


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the cell is marked failed."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` Did you mean 'rotation'?`` for the known name closest to ``name``, or ``""``:
    every command that looks a name up answers a misspelling alike."""
    close = difflib.get_close_matches(str(name), sorted(map(str, known)), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> SSLBenchError:
    """An error for an unknown plugin name that lists the known ones and the closest."""
    known = sorted(known)
    hint = did_you_mean(name, known)
    return SSLBenchError(
        f"unknown {kind} {name!r}; known {kind}s: {', '.join(known) or '(none)'}.{hint}"
    )
