"""Which Citus shard a user's rows live in, worked out without asking the database.

Citus places a row of a table distributed by a text column by PostgreSQL's own `hashtext` of the
value (Bob Jenkins' lookup3, `hash_bytes` in PostgreSQL's src/common/hashfn.c) and splits the
32-bit hash space evenly among the shards. On a Citus database the engine's partitions are those
shards (`partition_of_shard`), so a worker that owns a partition owns every row of one shard
group, and a batch of one partition's users is a query routed to one shard. Pure arithmetic: the
same answer in every worker, machine and release, checked against the server in the tests.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_INT32_MIN = -(1 << 31)


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = ((a - c) & _MASK) ^ _rot(c, 4)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 6)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 8)
    b = (b + a) & _MASK
    a = ((a - c) & _MASK) ^ _rot(c, 16)
    c = (c + b) & _MASK
    b = ((b - a) & _MASK) ^ _rot(a, 19)
    a = (a + c) & _MASK
    c = ((c - b) & _MASK) ^ _rot(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c = (c ^ b) - _rot(b, 14) & _MASK
    a = (a ^ c) - _rot(c, 11) & _MASK
    b = (b ^ a) - _rot(a, 25) & _MASK
    c = (c ^ b) - _rot(b, 16) & _MASK
    a = (a ^ c) - _rot(c, 4) & _MASK
    b = (b ^ a) - _rot(a, 14) & _MASK
    c = (c ^ b) - _rot(b, 24) & _MASK
    return c


def hashtext(text: str) -> int:
    """PostgreSQL's `hashtext(text)` (a deterministic collation), as the signed 32-bit integer it returns."""
    key = text.encode("utf-8")
    length = len(key)
    a = b = c = (0x9E3779B9 + length + 3923095) & _MASK
    offset = 0
    while length - offset >= 12:
        a = (a + int.from_bytes(key[offset:offset + 4], "little")) & _MASK
        b = (b + int.from_bytes(key[offset + 4:offset + 8], "little")) & _MASK
        c = (c + int.from_bytes(key[offset + 8:offset + 12], "little")) & _MASK
        a, b, c = _mix(a, b, c)
        offset += 12
    tail = key[offset:]
    # the lowest byte of c is reserved for the length: its tail bytes start one byte up
    c = (c + (int.from_bytes(tail[8:11], "little") << 8)) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    value = _final(a, b, c)
    return value - (1 << 32) if value >= 1 << 31 else value


def shard_index(user_id: str, shards: int) -> int:
    """The shard (0 to `shards` - 1, in the order of their hash ranges) that holds `user_id`'s rows
    when a table is distributed by it over `shards` shards: Citus gives each shard an equal range."""
    increment = (1 << 32) // shards
    return min((hashtext(user_id) - _INT32_MIN) // increment, shards - 1)


def shard_keys(shards: int) -> list[str]:
    """A key whose rows would live in each shard, in shard order: what a call of a function
    Citus distributes by its first argument is sent with, to run on the node holding that shard
    (engine/stores/sql/shard_reads.py). The first of `shard-0`, `shard-1`, ... to fall in each."""
    keys: list[str | None] = [None] * shards
    missing, n = shards, 0
    while missing:
        key = f"shard-{n}"
        index = shard_index(key, shards)
        if keys[index] is None:
            keys[index] = key
            missing -= 1
        n += 1
    return [k for k in keys if k is not None]
