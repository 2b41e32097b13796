"""The event log as a transparency log: a Merkle tree over the events, signed
checkpoints published outside the database, proofs, and a witness.

**A tracked follower, not the storing transaction.** The tree is appended by a
follower that reads the events after the tree's last leaf (like the views and
the relay, its position is the tree itself, kept in the same database), right
after they are committed. Three reasons:

* The tree is worth something only once a checkpoint over it is signed and
  published, and that can never be inside the storing transaction (signing and
  publishing to a directory or Kafka are not transactional with the database).
  Appending in the transaction would only move work into every command's
  critical section (PostgreSQL's recorder holds an exclusive lock on the events
  table there) without shortening the time to a published checkpoint by more
  than one poll.
* The linear hash chain is still written in the storing transaction, so an
  event is bound to its predecessors from its commit on; the follower's window
  before the next checkpoint is the same one any transparency log has between
  a write and its integration (0.6-6 s elsewhere; here every
  ``GAM_CHECKPOINT_EVERY_SECONDS``, 0.5 s by default).
* PostgreSQL's recorder commits positions in order (the table lock), so a
  follower never skips a late commit; the tree's append re-reads its end under
  a lock, so several followers (``gam serve``, ``gam audit checkpointer``, a CLI
  command) can run at once.

**What is trusted.** Nothing in the database: the tree's rows, the checkpoints
table and the events can all be rewritten by whoever owns it. What holds is the
signing key (keep ``GAM_SIGNING_KEY_FILE`` where the database's administrators
cannot read it) and the checkpoints published outside and held by witnesses.
Before signing, the log checks that the new tree extends both its last recorded
checkpoint and the newest one in the publish directory, and refuses to sign a
fork (a log must never sign two inconsistent checkpoints).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from eventsourcing.persistence import Notification

from infra import merkle
from infra.checkpoints import (
    Checkpoint,
    CheckpointError,
    DirectoryPublisher,
    KafkaPublisher,
    NoteSigner,
    NoteVerifier,
    checkpoint_dir,
    load_signer,
    open_checkpoint,
    sign_checkpoint,
)
from infra.merkle_store import StoredCheckpoint, TreeStore, tree_store_for
from infra.settings import Settings
from services.app import GamApplication
from services.http_get import http_get

log = logging.getLogger(__name__)

INTEGRATE_BATCH = 5_000
POLL_SECONDS = 0.05
RETRY_SECONDS = 1.0
READ_BATCH = 5_000


class LogInconsistent(RuntimeError):
    """The tree no longer extends a checkpoint already signed: it was rolled back or rewritten."""


class Publisher(Protocol):
    def publish(self, checkpoint: Checkpoint) -> None: ...


def leaf_of(notification: Notification) -> bytes:
    """The leaf hash of one stored event (``infra.merkle.event_leaf``)."""
    data = merkle.event_leaf(
        notification.id,
        notification.originator_id,
        notification.originator_version,
        notification.topic,
        hashlib.sha256(notification.state).digest(),
    )
    return merkle.leaf_hash(data)


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


@dataclass(frozen=True)
class InclusionProof:
    """One event's inclusion in the tree a checkpoint commits to: with the leaf's inputs,
    an auditor rebuilds the leaf hash and checks the path to the signed root."""

    position: int
    leaf_index: int
    tree_size: int
    entity_id: str
    version: int
    topic: str
    state_sha256: str
    proof: list[bytes]
    checkpoint: str

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf": {
                "position": self.position,
                "entity_id": self.entity_id,
                "version": self.version,
                "topic": self.topic,
                "state_sha256": self.state_sha256,
            },
            "proof": [b64(p) for p in self.proof],
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    proof: list[bytes]
    checkpoint: str

    def as_json(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "proof": [b64(p) for p in self.proof],
                "checkpoint": self.checkpoint}  # fmt: skip


class ProofUnavailable(LookupError):
    """No proof can be given: the position is not (yet) in a signed checkpoint, or the sizes are wrong."""


class TransparencyLog:
    """The Merkle tree over one application's events, its checkpoints and proofs."""

    def __init__(
        self,
        app: GamApplication,
        store: TreeStore,
        signer: NoteSigner,
        publishers: Sequence[Publisher] = (),
        *,
        every_events: int = 1000,
        every_seconds: float = 0.5,
        directory: DirectoryPublisher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app, self.store, self.signer = app, store, signer
        self.publishers = list(publishers)
        self.directory = directory
        self.every_events, self.every_seconds = every_events, every_seconds
        self.clock = clock
        self._last_signed_at = float("-inf")
        self._owed = True
        """The tree may hold events no checkpoint covers (unknown until the first step)."""
        self._tree_position = 0
        """The log position of the tree's last leaf, as last seen."""
        self._closing: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @classmethod
    def open(cls, app: GamApplication, settings: Settings, store: TreeStore | None = None) -> TransparencyLog:
        """The log as the settings configure it: the tree beside the events, the signing key,
        the publish directory, and the Kafka topic if ``GAM_CHECKPOINT_TOPIC`` is set."""
        store = store or tree_store_for(settings)
        publishers: list[Publisher] = []
        where = checkpoint_dir(settings)
        directory = DirectoryPublisher(where) if where is not None else None
        if directory is not None:
            publishers.append(directory)
        kafka: KafkaPublisher | None = None
        if settings.checkpoint_topic:
            from infra.kafka import create_producer

            kafka = KafkaPublisher(create_producer(settings, client_id="gam-checkpoints"), settings.checkpoint_topic)
            publishers.append(kafka)
        transparency = cls(
            app,
            store,
            load_signer(settings),
            publishers,
            every_events=settings.checkpoint_every_events,
            every_seconds=settings.checkpoint_every_seconds,
            directory=directory,
        )
        transparency._closing.append(store.close)
        if kafka is not None:
            transparency._closing.append(kafka.close)
        return transparency

    def close(self) -> None:
        while self._closing:
            self._closing.pop()()

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    # --- the follower -------------------------------------------------------------------

    def integrate(self, limit: int = INTEGRATE_BATCH) -> int:
        """Append the events stored after the tree's last leaf (up to ``limit``); returns how many."""
        _, last = self.store.end()
        self._tree_position = last
        notifications = self.app.recorder.select_notifications(start=last + 1, limit=limit)
        if not notifications:
            return 0
        appended = self.store.append([(n.id, leaf_of(n)) for n in notifications])
        self._tree_position = notifications[-1].id
        return appended

    def catch_up(self) -> int:
        total = 0
        while True:
            count = self.integrate()
            total += count
            if count < INTEGRATE_BATCH:  # a short batch was the end of the log: no query to learn it again
                return total

    def checkpoint_due(self, size: int, covered: int) -> bool:
        if size <= covered:
            return False
        return size - covered >= self.every_events or self.clock() - self._last_signed_at >= self.every_seconds

    def step(self, *, force: bool = False) -> Checkpoint | None:
        """Bring the tree up to date, then sign and publish a checkpoint if one is due (or ``force``d
        and the tree grew); returns the checkpoint signed, if any. A step that finds nothing new
        and owes no checkpoint costs one query (it runs every 50 ms beside the writers)."""
        with self._lock:
            grew = self.catch_up()
            if not (grew or force or self._owed):
                return None
            size, _ = self.store.end()
            latest = self.store.latest_checkpoint()
            covered = latest.size if latest else 0
            self._owed = size > covered
            if not (self.checkpoint_due(size, covered) or (force and size > covered)):
                return None
            checkpoint = self._sign(size, latest)
            self._owed = False
            return checkpoint

    def _sign(self, size: int, latest: StoredCheckpoint | None) -> Checkpoint:
        root = merkle.root(size, self.store.nodes)
        self._refuse_fork(size, root, latest)
        checkpoint = sign_checkpoint(self.signer, size, root)
        for publisher in self.publishers:  # outside first: a checkpoint recorded is one published
            publisher.publish(checkpoint)
        self.store.record_checkpoint(StoredCheckpoint(size, root, checkpoint.note, datetime.now(UTC)))
        self._last_signed_at = self.clock()
        return checkpoint

    def _refuse_fork(self, size: int, root: bytes, latest: StoredCheckpoint | None) -> None:
        """A log never signs a checkpoint inconsistent with one it signed before (C2SP tlog-checkpoint)."""
        earlier: list[tuple[str, int, bytes]] = []
        if latest is not None:
            earlier.append(("the last recorded checkpoint", latest.size, latest.root))
        published = self.directory.latest() if self.directory else None
        if published is not None:
            try:
                checkpoint = open_checkpoint(published, self.verifier)
            except CheckpointError as error:
                raise LogInconsistent(f"the newest published checkpoint does not verify: {error}") from None
            earlier.append(("the newest published checkpoint", checkpoint.size, checkpoint.root))
        checked: set[tuple[int, bytes]] = set()
        for what, old_size, old_root in earlier:
            if (old_size, old_root) in checked:
                continue  # the newest published is usually the last recorded: one proof for both
            checked.add((old_size, old_root))
            if old_size > size:
                raise LogInconsistent(f"the tree holds {size} events, fewer than the {old_size} of {what}")
            proof = merkle.consistency_proof(old_size, size, self.store.nodes)
            if not merkle.verify_consistency(old_size, size, old_root, root, proof):
                raise LogInconsistent(f"the tree of {size} events does not extend {what} ({old_size} events)")

    def run(self, *, seconds: float | None = None, stopping: threading.Event | None = None) -> int:
        """Follow the log, signing checkpoints as they fall due, until stopped; returns how many were signed."""
        stopping = stopping or threading.Event()
        deadline = None if seconds is None else time.monotonic() + seconds
        signed = 0
        while not stopping.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                if self._worth_a_step() and self.step() is not None:
                    signed += 1
            except LogInconsistent as error:
                log.error("not signing: %s", error)
                stopping.wait(RETRY_SECONDS)
            except Exception as error:  # the store or the broker is away: nothing is lost, the next step redoes it
                log.warning("checkpointing failed (%s); retrying", error)
                stopping.wait(RETRY_SECONDS)
            stopping.wait(POLL_SECONDS)
        return signed

    def _worth_a_step(self) -> bool:
        """Between checkpoints the tree is left alone: it is brought up to date when a checkpoint
        falls due (by time, or by the number of events waiting, which one query tells), so the
        follower costs the writers one query a poll and one append a checkpoint, not one a poll."""
        if self.clock() - self._last_signed_at >= self.every_seconds:
            return True
        waiting = (self.app.recorder.max_notification_id() or 0) - self._tree_position
        return waiting >= self.every_events

    # --- reading --------------------------------------------------------------------------

    def latest(self) -> StoredCheckpoint | None:
        return self.store.latest_checkpoint()

    def _against(self, tree_size: int | None) -> tuple[int, str]:
        """The size to prove against (the latest checkpoint's by default) and that checkpoint's note
        (empty for a size that is not the latest checkpoint's: the caller holds its own)."""
        latest = self.store.latest_checkpoint()
        if latest is None:
            raise ProofUnavailable("no checkpoint has been signed yet")
        if tree_size is None or tree_size == latest.size:
            return latest.size, latest.note
        end, _ = self.store.end()
        if not 0 < tree_size <= end:
            raise ProofUnavailable(f"the tree holds {end} events, not {tree_size}")
        return tree_size, ""

    def inclusion(self, position: int, tree_size: int | None = None) -> InclusionProof:
        """The inclusion proof of the event at ``position`` against the latest checkpoint
        (or the tree at ``tree_size``, a size an older checkpoint has)."""
        size, note = self._against(tree_size)
        index = self.store.leaf_indexes([position]).get(position)
        if index is None or index >= size:
            raise ProofUnavailable(f"position {position} is not covered by the checkpoint of {size} events")
        found = self.app.recorder.select_notifications(start=position, limit=1, stop=position)
        if not found:
            raise ProofUnavailable(f"no event is stored at position {position}")
        event = found[0]
        return InclusionProof(
            position=position,
            leaf_index=index,
            tree_size=size,
            entity_id=merkle.entity_hex(event.originator_id),
            version=event.originator_version,
            topic=event.topic,
            state_sha256=hashlib.sha256(event.state).hexdigest(),
            proof=merkle.inclusion_proof(index, size, self.store.nodes),
            checkpoint=note,
        )

    def inclusion_proofs(self, positions: Sequence[int], tree_size: int) -> dict[int, tuple[int, list[bytes] | None]]:
        """Leaf index of each position the tree holds, with its inclusion path in the tree of
        ``tree_size`` when that covers it; one read of the store for them all (an export's page)."""
        indexes = self.store.leaf_indexes(positions)
        ranges = {p: merkle.inclusion_ranges(i, tree_size) for p, i in indexes.items() if i < tree_size}
        nodes = self.store.nodes(merkle.proof_keys(r for path in ranges.values() for r in path))
        return {p: (i, merkle.hashes_for(ranges[p], nodes) if p in ranges else None) for p, i in indexes.items()}

    def consistency(self, first: int, second: int | None = None) -> ConsistencyProof:
        second_size, note = self._against(second)
        if not 0 <= first <= second_size:
            raise ProofUnavailable(f"no consistency proof from {first} to {second_size} events")
        return ConsistencyProof(
            first, second_size, merkle.consistency_proof(first, second_size, self.store.nodes), note
        )

    def events_problem(self, checkpoint: Checkpoint) -> str | None:
        """Do the stored events themselves still hash to this checkpoint's root? None if they do,
        else one line naming the first event deleted, inserted or rewritten."""
        size, index = checkpoint.size, 0
        frontier: dict[merkle.NodeKey, bytes] = {}
        for batch in self._event_batches():
            leaves = [(n.id, leaf_of(n)) for n in batch[: size - index]]
            stored = self.store.leaf_range(index, index + len(leaves))
            for offset, ((position, leaf), (kept_position, kept_leaf)) in enumerate(zip(leaves, stored, strict=False)):
                if kept_position < position:
                    return f"deleted event: position {kept_position} (leaf {index + offset}) is gone from the store"
                if kept_position > position:
                    return f"inserted event: position {position} is not in the signed tree"
                if kept_leaf != leaf:
                    return (
                        f"rewritten event: position {position} (leaf {index + offset}) "
                        "no longer hashes to the leaf the checkpoints signed"
                    )
            known = {**frontier, **merkle.append_leaves(index, frontier, [leaf for _, leaf in leaves])}
            index += len(leaves)
            frontier = {k: known[k] for k in merkle.root_keys(index)}
            if index >= size:
                break
        if index < size:
            return f"deleted events: the store holds {index} events, the signed checkpoint covers {size}"
        if merkle.range_hash(0, size, frontier) != checkpoint.root:
            return f"rewritten events: the stored events do not hash to the signed root of {size} events"
        return None

    def _event_batches(self) -> Iterator[Sequence[Notification]]:
        start = 1
        while batch := self.app.recorder.select_notifications(start=start, limit=READ_BATCH):
            yield batch
            start = batch[-1].id + 1


# --- the witness ----------------------------------------------------------------------------


class WitnessAlarm(Exception):
    """What a witness found wrong, in one line."""


class CheckpointSource(Protocol):
    def latest_note(self) -> str | None: ...

    def consistency_proof(self, first: int, second: int) -> list[bytes]: ...

    def events_problem(self, checkpoint: Checkpoint) -> str | None: ...


class StoreSource:
    """The latest checkpoint recorded in the store, proofs from its tree, and the events themselves."""

    def __init__(self, transparency: TransparencyLog) -> None:
        self.transparency = transparency

    def latest_note(self) -> str | None:
        latest = self.transparency.latest()
        return latest.note if latest else None

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return merkle.consistency_proof(first, second, self.transparency.store.nodes)

    def events_problem(self, checkpoint: Checkpoint) -> str | None:
        return self.transparency.events_problem(checkpoint)


class HttpSource:
    """The API's ``/compliance/checkpoints/latest`` and ``/compliance/audit/consistency``
    (a witness run by an auditor, without access to the database)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url, self.token, self.timeout = base_url.rstrip("/"), token, timeout

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        url = self.base_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        if not url.startswith(("http://", "https://")):
            raise WitnessAlarm(f"not an http(s) URL: {self.base_url}")
        try:
            return http_get(url, {"Authorization": f"Bearer {self.token}"} if self.token else {}, self.timeout)
        except OSError as error:
            raise WitnessAlarm(f"cannot reach the log at {self.base_url}: {error}") from None

    def latest_note(self) -> str | None:
        status, body = self._get("/compliance/checkpoints/latest")
        if status == 404:
            return None
        if status != 200:
            raise WitnessAlarm(f"the log answered {status} for its latest checkpoint")
        return body.decode()

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        status, body = self._get("/compliance/audit/consistency", {"first": first, "second": second})
        if status != 200:
            raise WitnessAlarm(f"the log gives no consistency proof from {first} to {second} events ({status})")
        return [base64.b64decode(p) for p in json.loads(body)["proof"]]

    def events_problem(self, checkpoint: Checkpoint) -> str | None:
        return None  # over HTTP a witness sees checkpoints and proofs, not the events


def witness(held: str | None, verifier: NoteVerifier, source: CheckpointSource) -> Checkpoint:
    """Check the log's latest checkpoint against the one held; returns the new one to hold.

    Raises :class:`WitnessAlarm` with one line when the signature is wrong, the log
    shrank (a rollback or deleted events), the new tree does not extend the held one
    (a fork: a rewritten event with a rebuilt tree), or, reading the store, when the
    events no longer hash to the signed tree (an event rewritten under an intact tree)."""
    old: Checkpoint | None = None
    if held is not None:
        try:
            old = open_checkpoint(held, verifier)
        except CheckpointError as error:
            raise WitnessAlarm(f"the checkpoint held does not verify: {error}") from None
    note = source.latest_note()
    if note is None:
        if old is not None:
            raise WitnessAlarm(f"rollback: the log has no checkpoint, but one of {old.size} events is held")
        raise WitnessAlarm("the log has signed no checkpoint yet")
    try:
        new = open_checkpoint(note, verifier)
    except CheckpointError as error:
        raise WitnessAlarm(f"bad checkpoint from the log: {error}") from None
    if old is not None:
        if new.size < old.size:
            raise WitnessAlarm(
                f"rollback: the log's latest checkpoint covers {new.size} events, fewer than the {old.size} held"
            )
        try:
            proof = source.consistency_proof(old.size, new.size)
        except (LookupError, ValueError) as error:
            raise WitnessAlarm(f"fork: the log cannot prove it extends the {old.size} events held ({error})") from None
        if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
            raise WitnessAlarm(
                f"fork: the log of {new.size} events does not extend the checkpoint held of {old.size} events"
            )
    problem = source.events_problem(new)
    if problem is not None:
        raise WitnessAlarm(problem)
    return new


class CheckpointFollower:
    """Keeps the tree up to date and signs checkpoints in a thread of a serving process."""

    def __init__(self, transparency: TransparencyLog) -> None:
        self.transparency = transparency
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gam-checkpoints", daemon=True)

    def _run(self) -> None:
        self.transparency.run(stopping=self.stopping)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
