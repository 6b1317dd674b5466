"""S3BlobStore: what only S3 has (the URL's prefix, multipart uploads left by a killed writer,
a bucket that cannot be reached), against an S3 emulator (moto's server). The contract is in
test_blobs.py."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from aiobotocore.session import get_session
from typer.testing import CliRunner

from tests.support.live_server import free_port
from tests.support.s3_emulator import CREDENTIALS, S3Emulator
from voxserve.bootstrap import open_services
from voxserve.cli.main import app as cli
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import BlobSettings, Settings
from voxserve.storage.blobs_s3 import S3BlobStore, S3Location, open_s3_blobs
from voxserve.storage.protocol import BlobStoreUnavailable

S3 = get_session()


@pytest.fixture
def prefix() -> str:
    return f"s3test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def store(s3_server: S3Emulator, prefix: str) -> AsyncIterator[S3BlobStore]:
    url = f"s3://voxserve/{prefix}/"
    async with open_s3_blobs(url, endpoint_url=s3_server.endpoint_url, session=S3) as opened:
        yield opened


def raw_client(s3: S3Emulator) -> object:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def test_location_parses_bucket_and_prefix() -> None:
    assert S3Location.parse("s3://b") == S3Location("b", "")
    assert S3Location.parse("s3://b/some/prefix/") == S3Location("b", "some/prefix")
    with pytest.raises(ValueError, match="names no bucket"):
        S3Location.parse("s3:///x")
    with pytest.raises(ValueError, match="not an s3:// URL"):
        S3Location.parse("https://b/x")


def test_settings_refuse_a_url_that_is_not_s3() -> None:
    with pytest.raises(ValueError, match="not an s3://bucket/prefix URL"):
        BlobSettings(url="/var/blobs")


async def test_keys_live_under_the_prefix(
    store: S3BlobStore, s3_server: S3Emulator, prefix: str
) -> None:
    await store.put("voices/o/v/main.wav", b"RIFF")

    listed = raw_client(s3_server).list_objects_v2(Bucket="voxserve", Prefix=prefix)  # type: ignore[attr-defined]

    assert [item["Key"] for item in listed["Contents"]] == [f"{prefix}/voices/o/v/main.wav"]
    assert [info.key async for info in store.list()] == ["voices/o/v/main.wav"]


async def test_stale_multipart_uploads_are_aborted(
    store: S3BlobStore, s3_server: S3Emulator, prefix: str
) -> None:
    client = raw_client(s3_server)
    # What a writer killed in the middle of a large upload leaves: parts, never completed.
    started = client.create_multipart_upload(Bucket="voxserve", Key=f"{prefix}/files/f")  # type: ignore[attr-defined]
    client.upload_part(  # type: ignore[attr-defined]
        Bucket="voxserve", Key=f"{prefix}/files/f", UploadId=started["UploadId"],
        PartNumber=1, Body=b"x" * 5_300_000,
    )  # fmt: skip
    now = datetime.now(UTC)

    assert [info async for info in store.list()] == []  # an upload is not an object
    # (The emulator reports every upload as started in 2010, so "too young to abort" cannot be
    # shown here; the cutoff comparison is the same as the local store's.)
    assert await store.remove_stale_temporaries(now + timedelta(minutes=1)) == 1
    assert await store.remove_stale_temporaries(now + timedelta(minutes=1)) == 0
    uploads = client.list_multipart_uploads(Bucket="voxserve", Prefix=prefix)  # type: ignore[attr-defined]
    assert uploads.get("Uploads", []) == []


async def test_missing_bucket_is_a_clear_startup_error(s3_server: S3Emulator) -> None:
    opened = open_s3_blobs("s3://no-such-bucket/x", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(BlobStoreUnavailable, match=r"s3://no-such-bucket .* answered 404"):
        async with opened:
            pass


async def test_unreachable_endpoint_is_a_clear_startup_error(s3_server: S3Emulator) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    opened = open_s3_blobs("s3://voxserve", endpoint_url=endpoint, session=S3)
    with pytest.raises(BlobStoreUnavailable, match="cannot be reached"):
        async with opened:
            pass


async def test_a_server_with_an_unreachable_bucket_does_not_start(
    s3_server: S3Emulator, tmp_path: Path
) -> None:
    blobs = BlobSettings(url="s3://missing-bucket/x", endpoint_url=s3_server.endpoint_url)
    settings = Settings(data_dir=tmp_path, blobs=blobs)
    with pytest.raises(BlobStoreUnavailable, match="s3://missing-bucket"):
        async with open_services(settings, engines=[FakeTTSEngine()]):
            pass


def test_serve_with_an_unreachable_bucket_exits_with_one_line(
    s3_server: S3Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serve configures logging onto the runner's stream, closed afterwards: keep the root
    # logger's handlers and level of this process as they were.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    env = {
        "VOXSERVE_DATA_DIR": str(tmp_path),
        "VOXSERVE_BLOBS__URL": "s3://missing-bucket/x",
        "VOXSERVE_BLOBS__ENDPOINT_URL": s3_server.endpoint_url,
    }
    result = CliRunner().invoke(cli, ["serve", "--port", "0"], env=env)
    assert result.exit_code == 2
    assert "error: blob store s3://missing-bucket at http://127.0.0.1" in result.output
    assert "Traceback" not in result.output
