"""RFC 9162 proofs and C2SP signed checkpoints, without a store: proofs computed
from stored perfect subtrees agree with the RFC's recursive definitions, verify,
and fail on any flipped bit; notes match the Go reference implementation's vector."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite

from infra import merkle
from infra.checkpoints import (
    CheckpointError,
    DirectoryPublisher,
    NoteSigner,
    NoteVerifier,
    load_signer,
    open_checkpoint,
    sign_checkpoint,
)
from infra.merkle_store import MemoryTreeStore
from infra.settings import Settings

# golang.org/x/mod/sumdb/note's documented example: key, text and its (deterministic) signature.
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIGNATURE = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, literally."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def tree(n: int, chunks: list[int]) -> tuple[list[bytes], MemoryTreeStore]:
    """``n`` leaves appended to a store in chunks of the given sizes (the rest at once)."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    store, done = MemoryTreeStore(), 0
    for size in [*chunks, n]:
        step = leaves[done : done + size]
        store.append([(done + i + 1, h) for i, h in enumerate(step)])
        done += len(step)
    return leaves, store


def flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    return value[: bit // 8] + bytes([value[bit // 8] ^ (1 << bit % 8)]) + value[bit // 8 + 1 :]


@composite
def sizes(draw: DrawFn) -> tuple[int, int, list[int]]:
    n = draw(st.integers(1, 130))
    m = draw(st.integers(1, n))
    return m, n, draw(st.lists(st.integers(1, 40), max_size=6))


@given(sizes(), st.data())
def test_inclusion_proofs_verify_and_any_flipped_bit_fails(
    case: tuple[int, int, list[int]], data: st.DataObject
) -> None:
    m, n, chunks = case
    leaves, store = tree(n, chunks)
    root = mth(leaves[:m])
    assert merkle.root(m, store.nodes) == root
    index = data.draw(st.integers(0, m - 1))
    proof = merkle.inclusion_proof(index, m, store.nodes)
    assert merkle.verify_inclusion(index, m, leaves[index], proof, root)
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_inclusion(index, m, flip(leaves[index], bit), proof, root)
    assert not merkle.verify_inclusion(index, m, leaves[index], proof, flip(root, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        broken = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not merkle.verify_inclusion(index, m, leaves[index], broken, root)
        assert not merkle.verify_inclusion(index, m, leaves[index], proof[:-1], root)
    if m > 1:
        other = data.draw(st.integers(0, m - 1).filter(lambda i: i != index))
        assert not merkle.verify_inclusion(other, m, leaves[index], proof, root)


@given(sizes(), st.data())
def test_consistency_proofs_verify_and_any_flipped_bit_fails(
    case: tuple[int, int, list[int]], data: st.DataObject
) -> None:
    m, n, chunks = case
    leaves, store = tree(n, chunks)
    old, new = mth(leaves[:m]), mth(leaves)
    proof = merkle.consistency_proof(m, n, store.nodes)
    assert merkle.verify_consistency(m, n, old, new, proof)
    bit = data.draw(st.integers(0, 255))
    assert not merkle.verify_consistency(m, n, flip(old, bit), new, proof)
    assert not merkle.verify_consistency(m, n, old, flip(new, bit), proof)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        broken = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        assert not merkle.verify_consistency(m, n, old, new, broken)
    if m < n:  # a log that rewrote any leaf before m cannot prove it extends the old tree
        edited = list(leaves)
        at = data.draw(st.integers(0, m - 1))
        edited[at] = flip(edited[at], bit)
        forged = MemoryTreeStore()
        forged.append([(i + 1, h) for i, h in enumerate(edited)])
        assert not merkle.verify_consistency(m, n, old, mth(edited), merkle.consistency_proof(m, n, forged.nodes))


def test_proofs_at_the_edges() -> None:
    leaves, store = tree(8, [3])
    assert merkle.verify_consistency(8, 8, mth(leaves), mth(leaves), [])
    assert not merkle.verify_consistency(8, 8, mth(leaves), mth(leaves[:7]), [])
    assert merkle.verify_consistency(0, 8, merkle.EMPTY_ROOT, mth(leaves), [])
    assert not merkle.verify_consistency(9, 8, mth(leaves), mth(leaves), [])
    assert not merkle.verify_inclusion(8, 8, leaves[0], [], mth(leaves))
    assert merkle.verify_inclusion(0, 1, leaves[0], [], leaves[0])
    with pytest.raises(merkle.ProofError):
        merkle.inclusion_proof(8, 8, store.nodes)
    with pytest.raises(merkle.ProofError):
        merkle.consistency_proof(9, 8, store.nodes)


def test_an_event_leaf_is_what_the_hash_chain_links() -> None:
    digest = bytes(range(32))
    leaf = merkle.event_leaf(7, "0f3e2b7c-5d1a-4c9e-8b6f-2a1d3c4e5f60", 3, "domain.deal:Deal.Won", digest)
    assert leaf == b"7\x1f0f3e2b7c5d1a4c9e8b6f2a1d3c4e5f60\x1f3\x1fdomain.deal:Deal.Won\x1f" + digest


def test_notes_match_the_go_reference_vector_byte_for_byte() -> None:
    signer = NoteSigner.parse(GO_SIGNER, "ignored")
    assert str(signer.verifier) == GO_VERIFIER
    assert signer.encode() == GO_SIGNER
    assert signer.sign(GO_TEXT) == f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIGNATURE}\n"
    verifier = NoteVerifier.parse(GO_VERIFIER)
    assert verifier.key_id.hex() == "c74f20a3"
    with pytest.raises(CheckpointError, match="ID does not match"):
        NoteVerifier.parse(GO_VERIFIER.replace("c74f20a3", "c74f20a4"))


def test_a_checkpoint_opens_only_with_its_key_and_unaltered() -> None:
    signer = NoteSigner.parse(GO_SIGNER, "ignored")
    root = merkle.leaf_hash(b"x")
    checkpoint = sign_checkpoint(signer, 20852163, root)
    assert checkpoint.note.startswith(
        f"PeterNeumann\n20852163\n{base64.b64encode(root).decode()}\n\n\u2014 PeterNeumann "
    )
    opened = open_checkpoint(checkpoint.note, signer.verifier)
    assert (opened.origin, opened.size, opened.root) == ("PeterNeumann", 20852163, root)
    cosigned = checkpoint.note + "\u2014 witness.example/w1 AAAAAAAA\n"  # other keys' signatures are ignored
    assert open_checkpoint(cosigned, signer.verifier).size == 20852163
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(checkpoint.note.replace("20852163", "20852164"), signer.verifier)
    stranger = NoteSigner("PeterNeumann", Ed25519PrivateKey.generate())  # same name, another key
    with pytest.raises(CheckpointError, match="no signature"):
        open_checkpoint(checkpoint.note, stranger.verifier)


def test_a_pem_key_file_signs_under_the_configured_origin(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "log.pem").write_bytes(pem)
    settings = Settings(store="postgres", signing_key_file=tmp_path / "log.pem", checkpoint_origin="example.com/log")
    signer = load_signer(settings)
    assert signer.verifier.name == "example.com/log"
    assert NoteVerifier.parse(str(signer.verifier)) == signer.verifier
    with pytest.raises(CheckpointError, match="GAM_SIGNING_KEY_FILE"):
        load_signer(Settings(store="postgres"))
    with pytest.raises(CheckpointError, match="no signing key"):
        load_signer(Settings(store="sqlite", sqlite_path=tmp_path / "gam.db"), create=False)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("PRIVATE+KEY+name+00000000+!!!", "malformed signer key"),
        ("PRIVATE+KEY+name+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(), "not an Ed25519 key"),
        ("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----", "neither a note signer key nor a PEM"),
    ],
)
def test_a_bad_signer_key_is_refused_by_name(key: str, problem: str) -> None:
    with pytest.raises(CheckpointError, match=problem):
        NoteSigner.parse(key, "origin")


@pytest.mark.parametrize(
    ("verifier", "problem"),
    [
        ("no-plus-signs", "not a note verifier key"),
        ("name+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(), "not an Ed25519 key"),
        ("bad name+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(), "without spaces"),
    ],
)
def test_a_bad_verifier_key_is_refused_by_name(verifier: str, problem: str) -> None:
    with pytest.raises(CheckpointError, match=problem):
        NoteVerifier.parse(verifier)


def test_malformed_checkpoints_are_refused_by_name() -> None:
    signer = NoteSigner.parse(GO_SIGNER, "ignored")
    good = sign_checkpoint(signer, 5, bytes(32)).note
    for note, problem in [
        ("PeterNeumann\n5\n", "no blank line"),
        (good.replace("\n5\n", "\n5\t\n"), "control characters"),
        (good[: good.rindex(" ") + 1] + "!!!\n", "malformed signature line"),
        (signer.sign("PeterNeumann\n05\nAAAA\n"), "malformed"),
        (signer.sign("just one line\n"), "not a checkpoint"),
    ]:
        with pytest.raises(CheckpointError, match=problem):
            open_checkpoint(note, signer.verifier)
    with pytest.raises(CheckpointError, match="ends with a newline"):
        signer.sign("no newline")


def test_the_publish_directory_never_rewrites_a_checkpoint(tmp_path: Path) -> None:
    signer = NoteSigner.parse(GO_SIGNER, "ignored")
    directory = DirectoryPublisher(tmp_path / "published")
    first = sign_checkpoint(signer, 5, bytes(32))
    directory.publish(first)
    directory.publish(first)  # the same note again (a crash between publishing and recording): fine
    with pytest.raises(CheckpointError, match="already holds a different checkpoint"):
        directory.publish(sign_checkpoint(signer, 5, b"\x01" * 32))
    assert DirectoryPublisher(tmp_path / "published").latest() == first.note
    assert DirectoryPublisher(tmp_path / "empty").latest() is None
