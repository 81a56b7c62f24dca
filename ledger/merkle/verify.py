"""Verifiers of RFC 9162 inclusion and consistency proofs: hashes in, a verdict out.

They need nothing but the proof, the sizes and the roots (no tiles), so a client or an
auditor verifies with this module alone. Anything that does not verify, bad arguments
included, raises ``VerificationError``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from ledger.merkle.tree import EMPTY_ROOT, node_hash
from schemas.errors import VerificationError
from schemas.limits import HASH_SIZE


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof by RFC 9162 §2.1.3.2; raise ``VerificationError`` if not."""
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof element {position}")
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for element in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(element, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the tree is deep")
    if not hmac.compare_digest(r, root):
        raise VerificationError(f"inclusion proof of leaf {index} does not lead to the root")


def _check_trivial_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Sizes 0 and old == new need an empty proof; their roots are fixed by definition."""
    if proof:
        raise VerificationError(f"consistency proof from {old} to {new} must be empty")
    if old == 0 and not hmac.compare_digest(old_root, EMPTY_ROOT):
        raise VerificationError("the root of the empty tree is SHA-256 of the empty string")
    if old == new and not hmac.compare_digest(old_root, new_root):
        raise VerificationError(f"two different roots for the same tree size {new}")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof by RFC 9162 §2.1.4.2; raise ``VerificationError`` if not."""
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof element {position}")
    if not 0 <= old <= new:
        raise VerificationError(f"old tree size {old} is not within 0..{new}")
    if old in (0, new):
        _check_trivial_consistency(old, new, old_root, new_root, proof)
        return
    if not proof:
        raise VerificationError(f"consistency proof from {old} to {new} is empty")
    path = [old_root, *proof] if old & (old - 1) == 0 else list(proof)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is shorter than the tree is deep")
    if not (hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)):
        raise VerificationError(f"consistency proof from {old} to {new} does not match the roots")
