"""Names that become parts of file names, and names as they are shown to others.

A results folder, a cache and a published site name their files after cells, checkpoints,
data sets and backbones. Those names come from the user's flags, from plugins, and, when
reading, from records that anyone may have written: :data:`SAFE_NAME` is the one rule they
must pass before they become a path (letters, digits and ``_.+-``, not starting with a dot,
so never ``..``, a separator or an absolute path).
"""

from __future__ import annotations

import re
from pathlib import Path

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}$")


def slug(text: str) -> str:
    """A file-name-safe version of a name: ``imagefolder:../data/flowers`` -> ``flowers``."""
    base, _, arg = text.partition(":")
    if arg:
        text = Path(arg.rstrip("/\\")).name or base
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "x"


def public_name(dataset: str) -> str:
    """A data set as reports and published sites show it: ``imagefolder:/home/me/flowers``
    -> ``imagefolder:flowers`` (the maker's folders are theirs, not the reader's); names
    without a path stay as they are."""
    kind, sep, argument = dataset.partition(":")
    if not sep or ("/" not in argument and "\\" not in argument and "~" not in argument):
        return dataset
    return f"{kind}:{slug(dataset)}"
