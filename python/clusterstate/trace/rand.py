"""Seeded randomness and the ids drawn from it.

Every stream of random choices gets its own generator, derived from the seed and a label, so
that a knob changing one part of a trace (say, the workload) does not reshuffle another (node
ids, hardware). ``random.Random`` seeded with a ``str`` hashes it with SHA-512, which does not
depend on ``PYTHONHASHSEED``: the same labels give the same streams in every process.
"""

from __future__ import annotations

import random
import uuid

from clusterstate.models import NodeId

__all__ = ["b58encode", "derive_rng", "peer_id", "uuid_str"]

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# A libp2p PeerId of an Ed25519 key is the identity multihash of the protobuf-encoded public key:
# 0x00 (identity) 0x24 (36 bytes) | 0x08 0x01 (KeyType = Ed25519) 0x12 0x20 (32-byte key). In
# base58 that prefix always reads "12D3KooW", and the whole id is 52 characters long.
_ED25519_PEER_ID_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])


def derive_rng(seed: int, *labels: object) -> random.Random:
    """An independent generator for one stream of choices, e.g. ``derive_rng(seed, "node", 3)``."""
    return random.Random("/".join(["clusterstate.trace", str(seed), *map(str, labels)]))


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as libp2p prints peer ids."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_B58_ALPHABET[digit])
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(digits))


def peer_id(rng: random.Random) -> NodeId:
    """A node id shaped like exo's: the PeerId of a (seeded, random) Ed25519 public key."""
    return NodeId(b58encode(_ED25519_PEER_ID_PREFIX + rng.randbytes(32)))


def uuid_str(rng: random.Random) -> str:
    """A version-4-shaped UUID string made from seeded bits (never ``uuid.uuid4()``)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
