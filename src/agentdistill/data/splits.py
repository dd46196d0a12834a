"""Train/validation assignment by episode: a stable hash of the episode id, never a random draw.

Hashing (rather than shuffling) means a record's split depends only on its episode id, the seed and the
fraction, so every dataset built from one run agrees on which episodes are held out, and adding episodes to
a run never moves old ones between splits.
"""

from __future__ import annotations

import hashlib

CURATED_PREFIX = "curated:"


def hash_unit(key: str, seed: int = 0) -> float:
    """A deterministic number in [0, 1) for a key (sha256, so it does not depend on PYTHONHASHSEED)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(episode_id: str, val_fraction: float, seed: int = 0) -> str:
    """'train' or 'val' for every record of this episode; curated cases always train."""
    if episode_id.startswith(CURATED_PREFIX):
        return "train"
    return "val" if hash_unit(episode_id, seed) < val_fraction else "train"
