"""The transparency log over HTTP (compliance and admin roles): the latest signed
checkpoint, its verifier key, inclusion and consistency proofs. A witness run by an
auditor needs only these and the log's verifier key (``gam audit witness --url``)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import HTTPException, Path, Query
from fastapi.responses import PlainTextResponse

from infra.checkpoints import CheckpointError
from infra.merkle_store import StoredCheckpoint
from services.api.auth import Compliance, compliance_router
from services.api.dependencies import RuntimeDep
from services.bootstrap import Runtime
from services.transparency import CheckpointFollower, ProofUnavailable, TransparencyLog

log = logging.getLogger(__name__)

router = compliance_router(
    {
        404: "No checkpoint covers this yet, or this log signs no checkpoints",
        422: "Invalid parameters (field paths in ``errors``)",
    }
)
NOTE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {}}, "description": "A C2SP signed note"}}


def _log(runtime: Runtime) -> TransparencyLog:
    try:
        return runtime.transparency
    except CheckpointError as error:
        raise HTTPException(404, f"this log signs no checkpoints: {error}") from None


@router.get("/checkpoints/latest", response_class=PlainTextResponse, responses=NOTE)
def latest_checkpoint(runtime: RuntimeDep, _: Compliance) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint: origin, tree size, root hash, Ed25519 signature)."""
    latest = _log(runtime).latest()
    if latest is None:
        raise HTTPException(404, "no checkpoint has been signed yet")
    return PlainTextResponse(latest.note)


@router.get("/checkpoints/verifier-key", response_class=PlainTextResponse, responses=NOTE)
def verifier_key(runtime: RuntimeDep, _: Compliance) -> PlainTextResponse:
    """The note verifier key of the log (``name+keyid+base64(0x01‖key)``); pin it out of band."""
    return PlainTextResponse(f"{_log(runtime).verifier}\n")


@router.get("/audit/proof/{position}")
def inclusion_proof(
    runtime: RuntimeDep,
    position: Annotated[int, Path(ge=1, description="The event's log position")],
    _: Compliance,
    tree_size: Annotated[int | None, Query(ge=1, description="Default: the latest checkpoint's size")] = None,
) -> dict[str, Any]:
    """The RFC 9162 inclusion proof of one event against a signed checkpoint, with the leaf's inputs."""
    try:
        return _log(runtime).inclusion(position, tree_size).as_json()
    except ProofUnavailable as error:
        raise HTTPException(404, str(error)) from None


@router.get("/audit/consistency")
def consistency_proof(
    runtime: RuntimeDep,
    first: Annotated[int, Query(ge=0, description="The older tree size")],
    _: Compliance,
    second: Annotated[int | None, Query(ge=1, description="Default: the latest checkpoint's size")] = None,
) -> dict[str, Any]:
    """The RFC 9162 consistency proof from the tree of ``first`` events to that of ``second``."""
    try:
        return _log(runtime).consistency(first, second).as_json()
    except ProofUnavailable as error:
        raise HTTPException(404, str(error)) from None


def export_checkpoint(runtime: Runtime) -> tuple[TransparencyLog | None, StoredCheckpoint | None]:
    """The log and its latest checkpoint for an audit export to be cut at (None, None without them)."""
    try:
        transparency = runtime.transparency
    except CheckpointError:
        return None, None
    latest = transparency.latest()
    return (transparency, latest) if latest else (None, None)


class _NoCheckpointer:
    def start(self) -> None:
        """Nothing to run: no signing key."""

    def stop(self) -> None:
        """Nothing runs."""


def checkpointer(runtime: Runtime) -> CheckpointFollower | _NoCheckpointer:
    """The thread that keeps the tree and signs checkpoints in ``gam serve`` (none without a key)."""
    try:
        return CheckpointFollower(runtime.transparency)
    except CheckpointError as error:
        log.warning("no checkpoints are signed: %s", error)
        return _NoCheckpointer()
