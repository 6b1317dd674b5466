"""An S3 emulator for tests: moto's S3 server (a real S3 HTTP API, not a mock of the client),
started on a free loopback port in a background thread.

Clients reach it with any credentials; ``s3_emulator()`` yields where it listens and the
environment a client (this process's or a ``voxserve serve`` subprocess's) needs::

    with s3_emulator() as s3:
        s3.create_bucket("voxserve")
        env = {**os.environ, **s3.client_env()}
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer

from tests.support.live_server import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "emulator",
    "AWS_SECRET_ACCESS_KEY": "emulator-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Any credentials pass the emulator; set so that no client looks further (``~/.aws``, IMDS)."""


@dataclass(frozen=True)
class S3Emulator:
    endpoint_url: str
    region: str = "us-east-1"

    def client_env(self) -> dict[str, str]:
        """Environment for a client of the emulator: credentials and no instance metadata."""
        return {**CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}

    def create_bucket(self, name: str) -> None:
        """Create a bucket (a no-op when it exists)."""
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        finally:
            client.close()


@contextmanager
def s3_emulator() -> Iterator[S3Emulator]:
    """Start moto's S3 server; set the credentials of ``CREDENTIALS`` in this process (the
    store's client reads the standard AWS variables); stop it and restore them on exit."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    emulator = S3Emulator(endpoint_url=f"http://127.0.0.1:{port}")
    saved = {name: os.environ.get(name) for name in emulator.client_env()}
    os.environ.update(emulator.client_env())
    try:
        yield emulator
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
