"""`--shard I/N`: split groups across collector replicas by rendezvous hashing of group ids.

Adding or removing a replica moves only the groups that hashed to it, and every replica decides alone.
"""

from __future__ import annotations

import hashlib


class ShardError(ValueError):
    """A `--shard` value that is not `I/N` with 0 <= I < N."""


def parse_shard(text: str) -> tuple[int, int]:
    """Parse "I/N" (0-based index, count)."""
    index, slash, count = text.partition("/")
    if not slash or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise ShardError(f"--shard wants I/N with 0 <= I < N, got {text!r}")
    return int(index), int(count)


def shard_of(group_id: str, count: int) -> int:
    """The shard that owns `group_id`: the one with the highest hash of (shard, group)."""
    return max(range(count), key=lambda shard: hashlib.sha256(f"{shard}:{group_id}".encode()).digest())
