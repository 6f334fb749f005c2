"""Seeds derived from (cell seed, purpose), so that each source of randomness is independent
and a CPU run gives the same numbers every time."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(seed: int, purpose: str) -> int:
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def make_generator(seed: int, purpose: str, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, purpose))
    return g


def seed_everything(seed: int, purpose: str = "global") -> None:
    s = derive_seed(seed, purpose)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
