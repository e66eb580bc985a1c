"""Pieces of the S3 store that need no connection: URL and options, versions, metadata, bodies."""

from __future__ import annotations

import hashlib
import io
import re
import string
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Final, cast
from urllib.parse import quote, unquote, urlsplit

from botocore.exceptions import ClientError

from backends._common import check_options, precondition_missing, precondition_stale
from direktiv_sdk._compat import override
from direktiv_sdk.errors import InvalidStoreURLError, PreconditionFailedError
from direktiv_sdk.store import VariableRef, format_timestamp

OPTIONS: Final = (
    "anon",
    "client_kwargs",
    "config_kwargs",
    "endpoint_url",
    "key",
    "region",
    "secret",
    "token",
)
"""The keyword options ``S3Store.from_url`` accepts."""

MISSING: Final = frozenset({"NoSuchKey", "404", "NotFound"})
"""Error codes S3 answers when an object does not exist (HEAD has no body, so only ``404``)."""

CONFLICT: Final = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
"""Error codes of a lost ``If-Match``/``If-None-Match`` (409: a concurrent conditional write)."""

NO_ETAG: Final = "no-such-etag"
"""An ``If-Match`` value no object has: ETags are hex digests."""

_BUCKET_RE: Final = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_MIME_SAFE: Final = "".join(c for c in string.punctuation if c != "%")
_TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
_EPOCH: Final = datetime.fromtimestamp(0, UTC)
_ONE_MICRO: Final = timedelta(microseconds=1)
_SPOOL_IN_MEMORY: Final = 16 << 20


def parse_url(url: str) -> tuple[str, str]:
    """Return the bucket and the prefix (no leading or trailing ``/``) of an ``s3://`` URL."""
    if _CONTROL_RE.search(url):
        # urlsplit silently drops tabs and newlines, which would open another prefix.
        raise InvalidStoreURLError(url, "remove the control characters from it")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidStoreURLError(url, f"it is not a valid URL ({exc})") from exc
    if parts.scheme.lower() != "s3":
        raise InvalidStoreURLError(url, "an S3 store URL looks like s3://bucket/prefix")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidStoreURLError(url, "remove the query or fragment; pass settings as options")
    if "@" in parts.netloc:
        raise InvalidStoreURLError(
            url,
            "do not put credentials in the URL; pass key= and secret= or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    bucket = parts.netloc
    if not bucket:
        raise InvalidStoreURLError(url, "the bucket name is missing, as in s3://my-bucket/prefix")
    if ":" in bucket:
        raise InvalidStoreURLError(url, "a port belongs in the endpoint: pass endpoint_url=")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise InvalidStoreURLError(
            url,
            f"bucket {bucket!r} is not a valid S3 bucket name: use 3-63 lower-case letters, "
            "digits, '.' or '-', starting and ending with a letter or digit",
        )
    prefix = parts.path.strip("/")
    if prefix and any(
        segment in ("", ".", "..") or "\\" in segment for segment in prefix.split("/")
    ):
        raise InvalidStoreURLError(
            url,
            f"prefix {prefix!r} must be clean: no empty, '.' or '..' segments and no backslashes",
        )
    return bucket, prefix


def check_s3_options(url: str, options: dict[str, object]) -> None:
    """Raise :class:`InvalidStoreURLError` for an unknown option or one of the wrong type."""
    check_options(url, options, OPTIONS)
    for name, value in options.items():
        expected: type = bool if name == "anon" else dict if name.endswith("_kwargs") else str
        if value is not None and not isinstance(value, expected):
            raise InvalidStoreURLError(
                url, f"option {name!r} must be a {expected.__name__}, not {type(value).__name__}"
            )


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _ONE_MICRO


def _key_tag(key: str) -> str:
    # ETags repeat across objects with the same bytes: the tag keeps one variable's token from
    # passing as another's.
    return hashlib.blake2b(key.encode(), digest_size=4).hexdigest()


@dataclass(frozen=True, slots=True)
class Seen:
    """One observed version of an object: what a later conditional request needs."""

    etag: str
    write_id: str
    created_at: datetime
    updated_at: datetime

    def token(self, key: str) -> str:
        """Return the version token: ETag, write id, created and updated µs, a tag of ``key``."""
        created, updated = _micros(self.created_at), _micros(self.updated_at)
        return f"{self.etag}:{self.write_id}:{created:x}:{updated:x}:{_key_tag(key)}"

    @classmethod
    def parse(cls, token: str, key: str) -> Seen | None:
        """Return the version ``token`` names, or ``None`` if it is no token of object ``key``."""
        parts = token.split(":")
        if len(parts) != 5 or not parts[0] or parts[4] != _key_tag(key):
            return None
        if any(c in parts[0] for c in '"\r\n'):
            return None
        try:
            created, updated = (_EPOCH + int(p, 16) * _ONE_MICRO for p in parts[2:4])
        except (ValueError, OverflowError):
            return None
        return cls(parts[0], parts[1], created, updated)

    @classmethod
    def unknown(cls) -> Seen:
        """Return a version that matches no object (for tokens of other stores)."""
        return cls(NO_ETAG, "", _EPOCH, _EPOCH)

    def metadata(self, mime_type: str) -> dict[str, str]:
        """Return the user metadata (``x-amz-meta-*``) stored with this version."""
        return {
            "mime-type": quote(mime_type, safe=_MIME_SAFE),
            "created-at": format_timestamp(self.created_at),
            "updated-at": format_timestamp(self.updated_at),
            "write-id": self.write_id,
        }


def content_type(mime_type: str) -> dict[str, str]:
    """Return the ``ContentType`` argument for a mime type that is a plain header value."""
    if mime_type and quote(mime_type, safe=_MIME_SAFE + " ") == mime_type:
        return {"ContentType": mime_type}
    return {}


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", _TS_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def describe(response: dict[str, Any]) -> tuple[Seen, str, int]:
    """Return the version, mime type and size that a GET or HEAD response reports."""
    meta: dict[str, str] = response.get("Metadata") or {}
    updated = _parse_time(meta.get("updated-at")) or response["LastModified"].astimezone(UTC)
    created = _parse_time(meta.get("created-at")) or updated
    # An object written by another tool has no mime-type metadata: use its Content-Type.
    mime = unquote(meta["mime-type"]) if "mime-type" in meta else response.get("ContentType", "")
    seen = Seen(response["ETag"].strip('"'), meta.get("write-id", ""), created, updated)
    return seen, mime, int(response["ContentLength"])


def error_code(exc: ClientError) -> str:
    """Return the S3 error code of a botocore ``ClientError``."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def lost_condition(
    ref: VariableRef, version: str, exc: ClientError
) -> PreconditionFailedError | None:
    """Return the error for an ``If-Match`` request that lost, ``None`` for other failures."""
    if error_code(exc) in MISSING:
        return precondition_missing(ref)
    if error_code(exc) in CONFLICT:
        return precondition_stale(ref, version)
    return None


class SeenCache:
    """A bounded, thread-safe LRU of the newest version seen per object key."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, Seen] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Seen | None:
        """Return the newest version seen of ``key``, if remembered."""
        with self._lock:
            seen = self._items.get(key)
            if seen is not None:
                self._items.move_to_end(key)
            return seen

    def put(self, key: str, seen: Seen) -> None:
        """Remember ``seen`` unless a newer version of ``key`` is already known."""
        with self._lock:
            old = self._items.get(key)
            # A slow reader must not replace what a faster writer recorded after it.
            if old is None or seen.updated_at >= old.updated_at:
                self._items[key] = seen
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        """Forget ``key`` (deleted or found missing)."""
        with self._lock:
            self._items.pop(key, None)


class Body:
    """A value ready to PUT, and to PUT again on retry: bytes, or a spooled copy of a stream."""

    def __init__(self, data: bytes) -> None:
        """Wrap bytes already in memory; they are sent as they are."""
        self._data = data
        self._file: IO[bytes] | None = None
        self.size = len(data)

    @classmethod
    def spool(cls, chunks: Iterable[bytes | bytearray | memoryview], limit: int) -> Body:
        """Copy a stream to memory up to 16 MiB, then to a temp file; stop once past ``limit``."""
        body = cls(b"")
        # Closed by Body.close(); a with-block cannot span the requests that read it.
        spooled = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        body._file = cast(IO[bytes], spooled)
        try:
            for chunk in chunks:
                body.size += len(chunk)
                if body.size > limit:
                    break
                spooled.write(chunk)
        except BaseException:
            spooled.close()
            raise
        return body

    def rewind(self) -> bytes | IO[bytes]:
        """Return the payload, positioned at its start if it is a file."""
        if self._file is None:
            return self._data
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        """Drop the spooled copy, if any."""
        if self._file is not None:
            self._file.close()


class SyncBody(io.RawIOBase):
    """A blocking reader over an aiobotocore streaming body, via two sync callables."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None]) -> None:
        super().__init__()
        self._read = read
        self._close = close

    @override
    def readable(self) -> bool:
        return True

    @override
    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(len(view))
        view[: len(data)] = data
        return len(data)

    @override
    def close(self) -> None:
        if not self.closed:
            try:
                self._close()
            finally:
                super().close()
