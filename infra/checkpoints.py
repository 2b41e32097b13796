"""Signed checkpoints: the C2SP ``tlog-checkpoint`` text signed as a C2SP
``signed-note`` with Ed25519, the signing key, and where checkpoints are published.

A checkpoint note reads::

    <origin>
    <tree size>
    <base64 root hash>

    — <key name> base64(key ID ‖ Ed25519 signature of the three lines above)

The key ID is ``SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`` and the
verifier key ``<name>+<key ID as 8 hex digits>+base64(0x01 ‖ public key)``, the
forms Go's ``golang.org/x/mod/sumdb/note`` and the transparency-dev tools read, so
a checkpoint can be checked with their tools as well as with ``docs/verify_audit_log.py``.

The key file holds the signer key in that package's form too
(``PRIVATE+KEY+<name>+<key ID>+base64(0x01 ‖ 32-byte seed)``); a PEM Ed25519
private key is read as well. Publishing is what puts checkpoints beyond the
database's owner: an append-only directory (a file per checkpoint, never
overwritten; point it at storage the database's administrators cannot write)
and a Kafka topic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.settings import Settings

ED25519 = b"\x01"
SIGNER_PREFIX = "PRIVATE+KEY+"
EM_DASH = "\u2014"


class CheckpointError(ValueError):
    """A checkpoint or signer key that is malformed, or whose signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise CheckpointError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def __str__(self) -> str:
        encoded = base64.b64encode(ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """From ``name+keyid+base64(0x01 ‖ key)``."""
        try:
            name, hex_id, encoded = text.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise CheckpointError(f"not a note verifier key: {text.strip()!r}") from None
        if raw[:1] != ED25519 or len(raw) != 33:
            raise CheckpointError("the verifier key is not an Ed25519 key")
        verifier = cls(_check_name(name), raw[1:])
        if verifier.key_id.hex() != hex_id.lower():
            raise CheckpointError("the verifier key's ID does not match its name and key")
        return verifier


@dataclass(frozen=True)
class NoteSigner:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> NoteVerifier:
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return NoteVerifier(self.name, raw)

    def sign(self, text: str) -> str:
        """The signed note: ``text`` (ending in a newline), a blank line, one signature line."""
        if not text.endswith("\n"):
            raise CheckpointError("a note's text ends with a newline")
        signature = self.verifier.key_id + self.private_key.sign(text.encode())
        return f"{text}\n{EM_DASH} {self.name} {base64.b64encode(signature).decode()}\n"

    def encode(self) -> str:
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        encoded = base64.b64encode(ED25519 + seed).decode()
        return f"{SIGNER_PREFIX}{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str, name: str) -> NoteSigner:
        """A signer key (the note form, which names itself) or a PEM Ed25519 key (named ``name``)."""
        text = text.strip()
        if text.startswith(SIGNER_PREFIX):
            try:
                key_name, _, encoded = text[len(SIGNER_PREFIX) :].split("+", 2)
                raw = base64.b64decode(encoded, validate=True)
            except (ValueError, binascii.Error):
                raise CheckpointError("malformed signer key") from None
            if raw[:1] != ED25519 or len(raw) != 33:
                raise CheckpointError("the signer key is not an Ed25519 key")
            return cls(_check_name(key_name), Ed25519PrivateKey.from_private_bytes(raw[1:]))
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except ValueError:
            raise CheckpointError("the signing key file holds neither a note signer key nor a PEM key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError("the signing key is not an Ed25519 key")
        return cls(_check_name(name), key)


@dataclass(frozen=True)
class Checkpoint:
    """A verified (or just signed) checkpoint: what it commits to and its signed note."""

    origin: str
    size: int
    root: bytes
    note: str

    @property
    def text(self) -> str:
        return checkpoint_text(self.origin, self.size, self.root)


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(signer: NoteSigner, size: int, root: bytes) -> Checkpoint:
    note = signer.sign(checkpoint_text(signer.name, size, root))
    return Checkpoint(signer.name, size, root, note)


def open_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    """Parse a signed checkpoint note and verify it against ``verifier``; raises :class:`CheckpointError`."""
    if "\n\n" not in note:
        raise CheckpointError("not a signed note: no blank line before the signatures")
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise CheckpointError("a signed note holds no control characters")
    verified = False
    for line in signatures.splitlines():
        prefix = f"{EM_DASH} {verifier.name} "
        if not line.startswith(prefix):
            continue  # other keys' signatures (a witness's cosignature, say) are ignored
        try:
            raw = base64.b64decode(line[len(prefix) :], validate=True)
        except binascii.Error:
            raise CheckpointError("malformed signature line") from None
        if raw[:4] != verifier.key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(verifier.public_key).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise CheckpointError(f"the signature of {verifier.name} does not verify") from None
        verified = True
    if not verified:
        raise CheckpointError(f"the checkpoint carries no signature of {verifier.name}")
    lines = text.split("\n")
    try:
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        size = int(size_text)
        root = base64.b64decode(root_text, validate=True)
    except (IndexError, ValueError, binascii.Error):
        raise CheckpointError("the note is not a checkpoint (origin, tree size, root hash)") from None
    if size < 0 or str(size) != size_text or len(root) != 32:
        raise CheckpointError("the checkpoint's tree size or root hash is malformed")
    return Checkpoint(origin, size, root, note)


def signing_key_path(settings: Settings) -> Path | None:
    """``GAM_SIGNING_KEY_FILE``, or on the embedded default (SQLite) a file beside the database.

    PostgreSQL has no default: a server deployment decides where its key lives (away
    from the database's administrators, or the checkpoints prove nothing against them)."""
    if settings.signing_key_file is not None:
        return settings.signing_key_file
    if settings.store == "sqlite":
        return settings.sqlite_path.with_name(settings.sqlite_path.name + ".signing-key")
    return None


def load_signer(settings: Settings, *, create: bool = True) -> NoteSigner:
    """The log's signer; made on first use (0600) when the key file does not exist yet
    (in memory only, for the in-memory store)."""
    path = signing_key_path(settings)
    if path is None:
        if settings.store == "memory":
            return NoteSigner(_check_name(settings.checkpoint_origin), Ed25519PrivateKey.generate())
        raise CheckpointError("checkpoints are signed with the key in GAM_SIGNING_KEY_FILE, which is not set")
    if path.exists():
        return NoteSigner.parse(path.read_text(encoding="utf-8"), settings.checkpoint_origin)
    if not create:
        raise CheckpointError(f"no signing key at {path}")
    signer = NoteSigner(_check_name(settings.checkpoint_origin), Ed25519PrivateKey.generate())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return NoteSigner.parse(path.read_text(encoding="utf-8"), settings.checkpoint_origin)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(signer.encode() + "\n")
    return signer


def checkpoint_dir(settings: Settings) -> Path | None:
    """``GAM_CHECKPOINT_DIR``, or on the embedded default a directory beside the database."""
    if settings.checkpoint_dir is not None:
        return settings.checkpoint_dir
    if settings.store == "sqlite":
        return settings.sqlite_path.with_name(settings.sqlite_path.name + ".checkpoints")
    return None


class DirectoryPublisher:
    """One file per checkpoint, named by its tree size, created once and never rewritten.

    Ed25519 signatures are deterministic, so publishing a checkpoint again (after a
    crash between publishing and recording) writes the same bytes; a different note
    for a size already published is a fork, refused loudly."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._latest: tuple[int, str] | None = None
        """The newest checkpoint published, once known: the directory is listed once per process,
        not before every signature (it grows by a file per checkpoint)."""

    def path_for(self, size: int) -> Path:
        return self.directory / f"{size:020d}.checkpoint"

    def publish(self, checkpoint: Checkpoint) -> None:
        path = self.path_for(checkpoint.size)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            if path.read_text(encoding="utf-8") != checkpoint.note:
                raise CheckpointError(f"{path} already holds a different checkpoint of this size") from None
            return
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(checkpoint.note)
            file.flush()
            os.fsync(file.fileno())
        if self._latest is None or checkpoint.size > self._latest[0]:
            self._latest = (checkpoint.size, checkpoint.note)

    def latest(self) -> str | None:
        if self._latest is None:
            names = sorted(p.name for p in self.directory.glob("*.checkpoint"))
            if not names:
                return None
            self._latest = (int(names[-1].split(".")[0]), (self.directory / names[-1]).read_text(encoding="utf-8"))
        return self._latest[1]


class KafkaPublisher:
    """Each checkpoint as one record (key: the origin) on a topic of the relay's broker."""

    def __init__(self, producer: Any, topic: str, timeout: float = 30.0) -> None:
        self.producer, self.topic, self.timeout = producer, topic, timeout

    def publish(self, checkpoint: Checkpoint) -> None:
        future = self.producer.send(
            self.topic,
            key=checkpoint.origin.encode(),
            value=checkpoint.note.encode(),
            headers=[("tree_size", str(checkpoint.size).encode())],
        )
        future.get(timeout=self.timeout)

    def close(self) -> None:
        self.producer.close()
