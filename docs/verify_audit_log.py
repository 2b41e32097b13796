#!/usr/bin/env python3
"""Verify gam's audit log on your own: a signed checkpoint, an inclusion proof, a
consistency proof. Needs Python 3.11+ and ``cryptography``; no gam code.

    verify_audit_log.py checkpoint  --key KEY CHECKPOINT
    verify_audit_log.py inclusion   --key KEY PROOF.json        (from `gam audit prove`)
    verify_audit_log.py consistency --key KEY --old CHECKPOINT PROOF.json   (from `gam audit consistency`)
    verify_audit_log.py export      --key KEY --checkpoint CHECKPOINT EXPORT.jsonl|.csv  (`gam audit export`)

KEY is the log's note verifier key, ``name+keyid+base64(0x01 || ed25519 key)``,
as ``gam audit checkpoint --public-key`` prints it; get it from the log's operator
out of band and pin it. Exit 0 and one line starting ``OK`` when everything
verifies; exit 1 and one line naming what failed otherwise.

Formats: C2SP signed-note and tlog-checkpoint (the checkpoint), RFC 9162 §2.1
(leaf hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right), and
the inclusion and consistency verification algorithms). A leaf is an event's
``"position<US>entity<US>version<US>topic<US>"`` (US is U+001F, the entity id as
32 hex digits) followed by the 32 bytes of SHA-256 of its stored state.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Failed(Exception):
    pass


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def parse_key(text: str) -> tuple[str, bytes, bytes]:
    """(name, key ID, Ed25519 public key) from a note verifier key."""
    try:
        name, key_id, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise Failed("the key is not a note verifier key (name+keyid+base64)") from None
    if raw[:1] != b"\x01" or len(raw) != 33:
        raise Failed("the key is not an Ed25519 note key")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if expected.hex() != key_id.lower():
        raise Failed("the key's ID does not match its name and key")
    return name, expected, raw[1:]


def open_checkpoint(note: str, key: tuple[str, bytes, bytes]) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of a checkpoint whose signature by ``key`` verifies."""
    name, key_id, public = key
    text, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise Failed("not a signed note")
    text += "\n"
    good = False
    for line in signatures.splitlines():
        prefix = f"\u2014 {name} "
        if not line.startswith(prefix):
            continue
        raw = base64.b64decode(line[len(prefix) :])
        if raw[:4] != key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise Failed(f"the checkpoint's signature by {name} does not verify") from None
        good = True
    if not good:
        raise Failed(f"the checkpoint is not signed by {name}")
    lines = text.split("\n")
    if len(lines) < 4:
        raise Failed("the note is not a checkpoint")
    root = base64.b64decode(lines[2], validate=True)
    return lines[0], int(lines[1]), root


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2 (equal sizes: equal roots and an empty proof)."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = ([first_root] if first & (first - 1) == 0 else []) + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def event_leaf(leaf: dict[str, object]) -> bytes:
    entity = str(leaf["entity_id"]).replace("-", "")
    header = f"{leaf['position']}\x1f{entity}\x1f{leaf['version']}\x1f{leaf['topic']}\x1f"
    return header.encode() + bytes.fromhex(str(leaf["state_sha256"]))


def verify_export(args: argparse.Namespace, text: str, key: tuple[str, bytes, bytes]) -> int:
    """Every row that carries an inclusion proof is in the checkpoint's tree, as exported."""
    if args.checkpoint is None:
        raise Failed("export needs --checkpoint CHECKPOINT")
    _, size, root = open_checkpoint(args.checkpoint.read_text(encoding="utf-8"), key)
    if args.file.suffix == ".csv":
        rows = [
            {**r, "inclusion_proof": json.loads(r["inclusion_proof"]) if r["inclusion_proof"] else None}
            for r in csv.DictReader(text.splitlines())
        ]
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    proven = 0
    for row in rows:
        if not row.get("inclusion_proof"):
            continue
        if int(row["tree_size"]) != size:
            raise Failed(f"row {row['position']} was proven against another checkpoint ({row['tree_size']} events)")
        path = [base64.b64decode(p, validate=True) for p in row["inclusion_proof"]]
        if not verify_inclusion(int(row["leaf_index"]), size, leaf_hash(event_leaf(row)), path, root):
            raise Failed(f"row {row['position']} is NOT in the checkpoint of {size} events")
        proven += 1
    print(f"OK: {proven} of {len(rows)} rows are in the checkpoint of {size} events")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["checkpoint", "inclusion", "consistency", "export"])
    parser.add_argument("file", type=Path, help="the checkpoint, or the proof as JSON")
    parser.add_argument("--key", required=True, help="the log's note verifier key")
    parser.add_argument("--old", type=Path, help="the older checkpoint (consistency)")
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint an export was cut at (export)")
    args = parser.parse_args(argv)
    try:
        key = parse_key(args.key)
        text = args.file.read_text(encoding="utf-8")
        if args.what == "checkpoint":
            origin, size, _ = open_checkpoint(text, key)
            print(f"OK: checkpoint of {origin} at {size} events, signed by {key[0]}")
            return 0
        if args.what == "export":
            return verify_export(args, text, key)
        proof = json.loads(text)
        origin, size, root = open_checkpoint(proof["checkpoint"], key)
        path = [base64.b64decode(p, validate=True) for p in proof["proof"]]
        if args.what == "inclusion":
            leaf = proof["leaf"]
            if size != proof["tree_size"] or leaf["position"] != proof["position"]:
                raise Failed("the proof is not for this checkpoint or event")
            if not verify_inclusion(proof["leaf_index"], size, leaf_hash(event_leaf(leaf)), path, root):
                raise Failed(f"event {leaf['position']} is NOT included in the checkpoint of {size} events")
            print(f"OK: event {leaf['position']} is leaf {proof['leaf_index']} of the {size} events signed")
            return 0
        if args.old is None:
            raise Failed("consistency needs --old CHECKPOINT")
        old_origin, old_size, old_root = open_checkpoint(args.old.read_text(encoding="utf-8"), key)
        if old_origin != origin or (proof["first"], proof["second"]) != (old_size, size):
            raise Failed("the proof is not between these two checkpoints")
        if not verify_consistency(old_size, size, old_root, root, path):
            raise Failed(f"the log of {size} events does NOT extend the checkpoint of {old_size} events")
        print(f"OK: the log of {size} events extends the checkpoint of {old_size} events")
        return 0
    except (Failed, ValueError, KeyError, TypeError, OSError) as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
