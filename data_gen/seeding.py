"""Deterministic random generators named by strings (never Python's salted hash())."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_rng(*parts: str | int) -> np.random.Generator:
    """A generator seeded from the parts' sha256: same parts -> same stream on every machine."""
    text = "\x1f".join(f"{type(p).__name__}:{p}" for p in parts)
    digest = hashlib.sha256(text.encode()).digest()
    words = np.frombuffer(digest, dtype="<u4")  # 8 x 32-bit words of entropy
    return np.random.default_rng(np.random.SeedSequence([int(w) for w in words]))
