"""The S3 store on a real S3 HTTP API (moto): the conformance suite plus what only S3 does."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import s3fs
from botocore.exceptions import ClientError

from backends.s3 import S3Store
from direktiv_sdk import (
    InvalidStoreURLError,
    Owner,
    PreconditionFailedError,
    StoreError,
    open_store,
)
from direktiv_sdk.store import VariableStore
from harness.testing.store_tests import VariableStoreTests

NS = Owner.for_namespace("ns")
WF = Owner.for_workflow("ns", "/flows/a b.yaml")


class TestS3Store(VariableStoreTests):
    @pytest.fixture
    def store(self, s3_store: S3Store) -> VariableStore:
        return s3_store


class Requests:
    """The HTTP requests a store's botocore client sends, seen through its ``before-send`` event.

    Each entry is the method plus the condition header it carried, like ``"PUT If-Match"``.
    """

    def __init__(self, store: S3Store) -> None:
        self.log: list[str] = []
        store.fs.s3.meta.events.register("before-send.s3", self._record)

    def _record(self, request: Any, **_: object) -> None:
        conditions = [h for h in ("If-Match", "If-None-Match") if h in request.headers]
        self.log.append(" ".join([request.method, *conditions]))

    def take(self) -> list[str]:
        """Return the requests sent since the last call."""
        taken, self.log = self.log, []
        return taken


def _other_store(store: S3Store, s3_options: dict[str, object]) -> S3Store:
    """Open a second store on the same data: another writer with its own client and memory."""
    return S3Store.from_url(store.url, **s3_options)


# --------------------------------------------------------------------------- requests


def test_each_operation_makes_the_fewest_requests(s3_store: S3Store) -> None:
    requests = Requests(s3_store)
    ref = NS.ref("v")
    assert s3_store.get(ref) is None
    assert requests.take() == ["GET"]
    first = s3_store.set(ref, b"1")
    assert requests.take() == ["PUT If-None-Match"]
    assert s3_store.get(ref) is not None
    assert requests.take() == ["GET"]
    second = s3_store.set(ref, b"2")
    assert requests.take() == ["PUT If-Match"]
    s3_store.set(ref, b"3", if_version=second.version)
    assert requests.take() == ["PUT If-Match"]
    with pytest.raises(PreconditionFailedError):
        s3_store.set(ref, b"4", if_version=first.version)
    assert requests.take() == [], "a token older than a version seen here fails locally"
    with pytest.raises(PreconditionFailedError):
        s3_store.set(ref, b"4", if_absent=True)
    assert requests.take() == ["PUT If-None-Match"]
    reader = s3_store.open(ref)
    assert reader is not None
    with reader:
        assert reader.read() == b"3"
    assert requests.take() == ["GET"]
    s3_store.set(NS.ref("w"), b"w")
    requests.take()
    assert [m.name for m in s3_store.list(NS)] == ["v", "w"]
    assert sorted(requests.take()) == ["GET", "HEAD", "HEAD"]  # one LIST, one HEAD each
    s3_store.update(ref, lambda d: (d or b"") + b"+")
    assert requests.take() == ["GET", "PUT If-Match"]
    assert s3_store.delete(ref) is True
    assert requests.take() == ["DELETE If-Match"]
    assert s3_store.delete(ref) is False
    assert requests.take() == ["HEAD"]


def test_overwrite_of_a_variable_never_seen_keeps_its_creation_time(
    s3_store: S3Store, s3_options: dict[str, object]
) -> None:
    ref = WF.ref("v")
    with _other_store(s3_store, s3_options) as other:
        created = other.set(ref, b"by another writer", mime_type="text/plain")
    requests = Requests(s3_store)
    meta = s3_store.set(ref, b"mine")
    assert requests.take() == ["PUT If-None-Match", "HEAD", "PUT If-Match"]
    assert meta.created_at == created.created_at
    assert meta.updated_at > created.updated_at
    got = s3_store.get(ref)
    assert got is not None
    assert (got.data, got.mime_type, got.meta) == (b"mine", "", meta)


def test_overwrite_after_another_writer_still_wins(
    s3_store: S3Store, s3_options: dict[str, object]
) -> None:
    ref = NS.ref("v")
    first = s3_store.set(ref, b"first")
    with _other_store(s3_store, s3_options) as other:
        other.set(ref, b"second")
    requests = Requests(s3_store)
    meta = s3_store.set(ref, b"third")
    assert requests.take() == ["PUT If-Match", "HEAD", "PUT If-Match"]
    assert meta.created_at == first.created_at
    assert s3_store.get(ref).data == b"third"  # type: ignore[union-attr]


def test_delete_of_a_variable_never_seen(s3_store: S3Store, s3_options: dict[str, object]) -> None:
    ref = NS.ref("v")
    with _other_store(s3_store, s3_options) as other:
        other.set(ref, b"x")
    requests = Requests(s3_store)
    assert s3_store.delete(ref) is True
    assert requests.take() == ["HEAD", "DELETE If-Match"]
    assert s3_store.get(ref) is None


# --------------------------------------------------------------------------- conditions


def test_create_only_race_between_two_writers(
    s3_store: S3Store, s3_options: dict[str, object]
) -> None:
    ref = NS.ref("lock")
    with _other_store(s3_store, s3_options) as other:
        won = other.set(ref, b"other", if_absent=True)
        with pytest.raises(PreconditionFailedError) as info:
            s3_store.set(ref, b"mine", if_absent=True)
    assert str(info.value) == f"precondition failed for {ref}: it already exists"
    assert isinstance(info.value.__cause__, ClientError)
    assert info.value.__cause__.response["Error"]["Code"] == "PreconditionFailed"
    got = s3_store.get(ref)
    assert got is not None
    assert (got.data, got.version) == (b"other", won.version)


def test_compare_and_set_is_checked_by_the_server(
    s3_store: S3Store, s3_options: dict[str, object]
) -> None:
    ref = NS.ref("v")
    seen = s3_store.set(ref, b"1")
    with _other_store(s3_store, s3_options) as other:
        newer = other.set(ref, b"2")
    requests = Requests(s3_store)
    with pytest.raises(PreconditionFailedError) as info:
        s3_store.set(ref, b"3", if_version=seen.version)
    assert requests.take() == ["PUT If-Match"]
    assert str(info.value) == (
        f"precondition failed for {ref}: its version is no longer {seen.version!r}"
    )
    with pytest.raises(PreconditionFailedError):
        s3_store.delete(ref, if_version=seen.version)
    assert requests.take() == ["DELETE If-Match"]
    assert s3_store.get(ref).version == newer.version  # type: ignore[union-attr]
    assert s3_store.delete(ref, if_version=newer.version) is True


def test_rewriting_identical_bytes_changes_the_version(s3_store: S3Store) -> None:
    ref = NS.ref("v")
    first = s3_store.set(ref, b"same")
    second = s3_store.set(ref, b"same")
    assert first.version != second.version
    assert first.version.split(":")[0] == second.version.split(":")[0], "the same ETag"
    with pytest.raises(PreconditionFailedError):
        s3_store.set(ref, b"new", if_version=first.version)
    assert s3_store.get(ref).data == b"same"  # type: ignore[union-attr]


def test_a_token_of_another_variable_never_matches(s3_store: S3Store) -> None:
    token = s3_store.set(NS.ref("a"), b"same bytes").version
    s3_store.set(NS.ref("b"), b"same bytes")
    with pytest.raises(PreconditionFailedError) as info:
        s3_store.set(NS.ref("b"), b"x", if_version=token)
    assert str(info.value) == (
        f"precondition failed for {NS.ref('b')}: its version is no longer {token!r}"
    )
    assert s3_store.get(NS.ref("b")).data == b"same bytes"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- layout


def test_objects_are_plain_bytes_with_metadata(s3_store: S3Store) -> None:
    meta = s3_store.set(WF.ref("v"), b"raw bytes", mime_type="text/plain; charset=utf-8")
    s3_store.set(NS.ref("odd"), b"x", mime_type="ünïcode type")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    key = f"{s3_store.url[5:]}/ns/workflow/%2Fflows%2Fa%20b.yaml/v"
    assert sorted(fs.find(s3_store.url)) == [f"{s3_store.url[5:]}/ns/namespace/odd", key]
    assert fs.cat_file(key) == b"raw bytes"
    assert fs.metadata(key) == {
        "mime-type": "text/plain;%20charset=utf-8",
        "created-at": meta.to_json()["createdAt"],
        "updated-at": meta.to_json()["updatedAt"],
        "write-id": meta.version.split(":")[1],
    }
    bucket, _, path = key.partition("/")
    head = fs.call_s3("head_object", Bucket=bucket, Key=path)
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert s3_store.get(NS.ref("odd")).mime_type == "ünïcode type"  # type: ignore[union-attr]


def test_objects_written_by_other_tools_are_read_and_kept_out_of_listings(
    s3_store: S3Store,
) -> None:
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    folder = f"{s3_store.url[5:]}/ns/namespace"
    fs.pipe_file(f"{folder}/foreign", b"from aws s3 cp", ContentType="text/csv")
    fs.pipe_file(f"{folder}/not a variable", b"x")
    fs.pipe_file(f"{folder}/deeper/v", b"x")
    got = s3_store.get(NS.ref("foreign"))
    assert got is not None
    assert (got.data, got.mime_type) == (b"from aws s3 cp", "text/csv")
    assert got.meta.created_at == got.meta.updated_at
    assert [m.name for m in s3_store.list(NS)] == ["foreign"]
    meta = s3_store.set(NS.ref("foreign"), b"ours now", if_version=got.version)
    assert meta.created_at == got.meta.created_at


def test_large_stream_spools_to_disk_and_reads_back_in_pieces(s3_store: S3Store) -> None:
    headers: list[dict[str, str]] = []

    def record(request: Any, **_: object) -> None:
        items = request.headers.items()
        headers.append({k: v.decode() if isinstance(v, bytes) else v for k, v in items})

    s3_store.fs.s3.meta.events.register("before-send.s3", record)
    data = bytes(range(256)) * (80 << 10)  # 20 MiB: past the 16 MiB kept in memory
    meta = s3_store.set(NS.ref("big"), io.BufferedReader(io.BytesIO(data)))
    assert meta.size == len(data)
    # botocore checksums bodies by default; a seekable spool gets a plain CRC32 header and a
    # Content-Length, never the aws-chunked trailer encoding that S3-compatible servers vary on.
    (put,) = headers
    assert put["Content-Length"] == str(len(data))
    assert "x-amz-checksum-crc32" in put
    assert "Content-Encoding" not in put
    reader = s3_store.open(NS.ref("big"))
    assert reader is not None
    with reader:
        pieces = []
        while piece := reader.read(3 << 20):
            pieces.append(piece)
    assert b"".join(pieces) == data


class _TinyS3Store(S3Store):
    max_object_size = 10


@pytest.mark.parametrize("data", [b"x" * 11, io.BytesIO(b"x" * 11)], ids=["bytes", "stream"])
def test_values_over_the_single_put_limit_are_refused(
    s3_store_url: str, s3_options: dict[str, object], data: bytes | io.BytesIO
) -> None:
    with _TinyS3Store.from_url(s3_store_url, **s3_options) as store:
        requests = Requests(store)
        with pytest.raises(StoreError) as info:
            store.set(NS.ref("v"), data)
        assert str(info.value) == (
            f"cannot set {NS.ref('v')}: its value exceeds S3's single-PUT limit of 10 bytes; "
            "store a smaller value"
        )
        assert requests.take() == []
        assert store.set(NS.ref("v"), b"x" * 10).size == 10


# --------------------------------------------------------------------------- opening


def test_endpoint_and_credentials_come_from_the_environment(s3_store_url: str) -> None:
    with open_store(s3_store_url) as store:
        assert isinstance(store, S3Store)
        store.set(NS.ref("v"), b"via AWS_ENDPOINT_URL")
        assert store.get(NS.ref("v")).data == b"via AWS_ENDPOINT_URL"  # type: ignore[union-attr]


def test_store_url_from_direktiv_store_url(
    s3_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIREKTIV_STORE_URL", s3_store_url + "/")
    with open_store() as store:
        assert store.url == s3_store_url
        store.set(NS.ref("v"), b"x")


def test_options_reach_the_client(s3_store_url: str, s3_endpoint: str) -> None:
    with open_store(
        s3_store_url,
        endpoint_url=s3_endpoint,
        key="another-key",
        secret="another-secret",
        region="eu-west-1",
        client_kwargs={"use_ssl": False},
        config_kwargs={"retries": {"max_attempts": 1}},
        anon=False,
        token=None,
    ) as store:
        assert isinstance(store, S3Store)
        client = store.fs.s3
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.endpoint_url == s3_endpoint
        assert client._request_signer._credentials.access_key == "another-key"
        store.set(NS.ref("v"), b"x")
        assert store.get(NS.ref("v")).data == b"x"  # type: ignore[union-attr]


def test_bucket_root_store(s3_bucket: str) -> None:
    with open_store(f"s3://{s3_bucket}") as store:
        assert store.url == f"s3://{s3_bucket}"
        store.set(NS.ref("v"), b"x")
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        assert fs.cat_file(f"{s3_bucket}/ns/namespace/v") == b"x"


def test_missing_bucket(s3_endpoint: str) -> None:
    message = "bucket 'no-such-bucket' does not exist; create it or fix the store URL"
    with open_store("s3://no-such-bucket/p") as store:
        calls: list[tuple[str, Callable[[], object]]] = [
            ("get", lambda: store.get(NS.ref("v"))),
            ("open", lambda: store.open(NS.ref("v"))),
            ("set", lambda: store.set(NS.ref("v"), b"x")),
            ("delete", lambda: store.delete(NS.ref("v"))),
            ("list", lambda: store.list(NS)),
        ]
        for action, call in calls:
            with pytest.raises(StoreError) as info:
                call()
            target = NS if action == "list" else NS.ref("v")
            assert str(info.value) == f"cannot {action} {target}: {message}"
            assert isinstance(info.value.__cause__, ClientError)


def test_closed_store_refuses_work(s3_store_url: str) -> None:
    store = open_store(s3_store_url)
    store.set(NS.ref("v"), b"x")
    store.close()
    store.close()
    with pytest.raises(StoreError) as info:
        store.get(NS.ref("v"))
    assert str(info.value) == (f"cannot get {NS.ref('v')}: the store {s3_store_url!r} is closed")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("s3://", "the bucket name is missing, as in s3://my-bucket/prefix"),
        ("s3:///prefix", "the bucket name is missing, as in s3://my-bucket/prefix"),
        (
            "s3://Upper_Case",
            "bucket 'Upper_Case' is not a valid S3 bucket name: use 3-63 lower-case letters, "
            "digits, '.' or '-', starting and ending with a letter or digit",
        ),
        (
            "s3://ab/p",
            "bucket 'ab' is not a valid S3 bucket name: use 3-63 lower-case letters, "
            "digits, '.' or '-', starting and ending with a letter or digit",
        ),
        (
            "s3://a..b",
            "bucket 'a..b' is not a valid S3 bucket name: use 3-63 lower-case letters, "
            "digits, '.' or '-', starting and ending with a letter or digit",
        ),
        ("s3://bucket:9000/p", "a port belongs in the endpoint: pass endpoint_url="),
        (
            "s3://key:secret@bucket/p",
            "do not put credentials in the URL; pass key= and secret= or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            "s3://bucket/p?colour=x",
            "unknown option 'colour'; known options: anon, endpoint_url, region",
        ),
        ("s3://bucket/p#x", "a store URL has no fragment: remove the '#' part"),
        ("s3://bucket/p?", "write the options as ?name=value&name=value"),
        (
            "s3://bucket/a//b",
            "prefix 'a//b' must be clean: no empty, '.' or '..' segments and no backslashes",
        ),
        (
            "s3://bucket/a/../b",
            "prefix 'a/../b' must be clean: no empty, '.' or '..' segments and no backslashes",
        ),
        (
            "s3://bucket/a\\b",
            "prefix 'a\\\\b' must be clean: no empty, '.' or '..' segments and no backslashes",
        ),
        ("s3://bucket/a\nb", "remove the control characters from it"),
        ("s3://buc\tket/p", "remove the control characters from it"),
        ("s3://[bucket/p", "it is not a valid URL (Invalid IPv6 URL)"),
    ],
)
def test_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store(url)
    assert str(info.value) == f"cannot open store {url!r}: {reason}"


def test_constructor_checks_bucket_and_prefix() -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        S3Store("bucket", "a/../b")
    assert str(info.value) == (
        "cannot open store 's3://bucket/a/../b': prefix 'a/../b' must be clean: no empty, "
        "'.' or '..' segments and no backslashes"
    )


def test_from_url_rejects_other_schemes() -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        S3Store.from_url("file://bucket/p")
    assert str(info.value) == (
        "cannot open store 'file://bucket/p': an S3 store URL looks like s3://bucket/prefix"
    )


_ACCEPTED = "anon, client_kwargs, config_kwargs, endpoint_url, key, region, secret, token"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"endpoint": "http://x"}, f"unknown option 'endpoint'; accepted options: {_ACCEPTED}"),
        ({"region_name": "x"}, f"unknown option 'region_name'; accepted options: {_ACCEPTED}"),
        ({"region": 1}, "option 'region' must be a str, not int"),
        ({"endpoint_url": b"http://x"}, "option 'endpoint_url' must be a str, not bytes"),
        ({"client_kwargs": "x"}, "option 'client_kwargs' must be a dict, not str"),
        ({"config_kwargs": [("a", 1)]}, "option 'config_kwargs' must be a dict, not list"),
        ({"anon": "yes"}, "option 'anon' must be a bool, not str"),
    ],
)
def test_bad_options(options: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidStoreURLError) as info:
        open_store("s3://bucket/p", **options)
    assert str(info.value) == f"cannot open store 's3://bucket/p': {reason}"


def test_missing_s3fs_gives_the_install_hint() -> None:
    # A fresh interpreter in which importing s3fs fails, as it does without the [s3] extra.
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from direktiv_sdk import open_store\n"
        "from direktiv_sdk.errors import BackendNotInstalledError\n"
        "try:\n"
        "    open_store('s3://bucket/p')\n"
        "except BackendNotInstalledError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.startswith(
        "the 's3' store backend is not installed: pip install 'direktiv-sdk[s3]' ("
    )
