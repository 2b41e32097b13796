"""RFC 9162 Merkle tree hashing and proofs (§2.1), in a few ``hashlib`` functions.

The tree is never rebuilt from its leaves to answer a proof. Every proof
(inclusion, §2.1.3; consistency, §2.1.4) is a list of subtree hashes
``MTH(D[a:b])``, and every such range is either a *perfect* subtree (a power of
two of leaves, aligned on its size) or the right edge of the tree, which splits
into O(log n) perfect subtrees. A store that keeps the hash of every perfect
subtree (``(level, index)`` covers leaves ``index·2^level`` to
``(index+1)·2^level``, about two per leaf, written once when the subtree
completes and never changed) answers any proof with one look-up of at most
O(log² n) keys, whatever the tree's size. :func:`proof_keys` names those keys;
:func:`inclusion_proof` and :func:`consistency_proof` then compute the proof
from them; :func:`verify_inclusion` and :func:`verify_consistency` follow the
RFC's verification algorithms step by step.

The leaf is what the linear hash chain (``infra.hash_chain``) binds today: an
event's position, entity, version, topic and the SHA-256 of its stored state,
so an audit export row is a leaf an auditor can rebuild.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from uuid import UUID

NodeKey = tuple[int, int]
"""``(level, index)`` of a perfect subtree: leaves ``index << level`` to ``(index + 1) << level``."""
Range = tuple[int, int]
"""Leaves ``[start, end)`` whose subtree hash ``MTH(D[start:end])`` a proof needs."""

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof cannot be made for these sizes (a position beyond the tree, say)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def entity_hex(entity_id: UUID | str) -> str:
    return entity_id.hex if isinstance(entity_id, UUID) else str(entity_id).replace("-", "")


def event_leaf(position: int, entity_id: UUID | str, version: int, topic: str, state_sha256: bytes) -> bytes:
    """The leaf data of one stored event: the header the hash chain links, then the state's digest
    (``"position␟entity␟version␟topic␟" ‖ SHA-256(state)``, entity as 32 hex digits)."""
    return f"{position}\x1f{entity_hex(entity_id)}\x1f{version}\x1f{topic}\x1f".encode() + state_sha256


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_pieces(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees that make up ``MTH(D[start:end])``, largest (leftmost) first.

    ``start`` is aligned on a power of two at least ``end - start`` for every range a
    proof or a root needs, so the pieces are the binary digits of the range's size."""
    keys: list[NodeKey] = []
    size = end - start
    while size:
        level = size.bit_length() - 1
        keys.append((level, start >> level))
        start += 1 << level
        size -= 1 << level
    return keys


def range_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """``MTH(D[start:end])`` from its perfect pieces, folded from the right as RFC 9162 splits it."""
    if start == end:
        return EMPTY_ROOT
    pieces = perfect_pieces(start, end)
    result = nodes[pieces[-1]]
    for key in reversed(pieces[:-1]):
        result = node_hash(nodes[key], result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees of ``PATH(index, D[size])``, leaf first (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[Range] = []
    low, high, m = 0, size, index
    while high - low > 1:
        k = _largest_power_below(high - low)
        if m < k:
            ranges.append((low + k, high))
            high = low + k
        else:
            ranges.append((low, low + k))
            low, m = low + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtrees of ``PROOF(first, D[second])`` (RFC 9162 §2.1.4.1)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from {first} to {second} leaves")
    if first in (0, second):
        return []
    ranges: list[Range] = []
    low, high, m, whole = 0, second, first, True
    while m != high - low:
        k = _largest_power_below(high - low)
        if m <= k:
            ranges.append((low + k, high))
            high = low + k
        else:
            ranges.append((low, low + k))
            low, m, whole = low + k, m - k, False
    if not whole:
        ranges.append((low, high))
    ranges.reverse()
    return ranges


def proof_keys(ranges: Iterable[Range]) -> set[NodeKey]:
    return {key for start, end in ranges for key in perfect_pieces(start, end)}


def hashes_for(ranges: Sequence[Range], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    return [range_hash(start, end, nodes) for start, end in ranges]


NodeReader = Callable[[set[NodeKey]], Mapping[NodeKey, bytes]]
"""Reads the stored hashes of these perfect subtrees (one query in a database)."""


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    ranges = inclusion_ranges(index, size)
    return hashes_for(ranges, read(proof_keys(ranges)))


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    ranges = consistency_ranges(first, second)
    return hashes_for(ranges, read(proof_keys(ranges)))


def root_keys(size: int) -> set[NodeKey]:
    return set(perfect_pieces(0, size))


def root(size: int, read: NodeReader) -> bytes:
    return range_hash(0, size, read(root_keys(size)))


def append_leaves(size: int, frontier: Mapping[NodeKey, bytes], leaves: Sequence[bytes]) -> dict[NodeKey, bytes]:
    """The perfect subtrees completed by appending ``leaves`` (leaf hashes) to a tree of
    ``size`` leaves whose right edge is ``frontier`` (:func:`root_keys` of ``size``):
    each leaf, and each parent it completes."""
    known = dict(frontier)
    made: dict[NodeKey, bytes] = {}
    for offset, value in enumerate(leaves):
        level, index, current = 0, size + offset, value
        made[(0, index)] = known[(0, index)] = current
        while index & 1:
            current = node_hash(known[(level, index - 1)], current)
            level, index = level + 1, index >> 1
            made[(level, index)] = known[(level, index)] = current
    return made


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``leaf`` (a leaf hash) sit at ``index`` of the tree with ``root_hash``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``second`` leaves an extension of the one of ``first``?"""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root
