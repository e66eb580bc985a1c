"""The ``s3://bucket/prefix`` store: one S3 object per variable, through s3fs's aiobotocore client.

Object key: ``<prefix>/<Owner.segments...>/<key>``; body: the raw bytes. The mime type, the
creation and update times (RFC 3339, microseconds) and a random per-write id travel as user
metadata (``x-amz-meta-mime-type``, ``-created-at``, ``-updated-at``, ``-write-id``). The version
token combines the ETag with the write id, so it changes on every write, even of identical bytes.

Requests per operation: ``get`` and ``open`` one GET; ``set`` one PUT (``If-None-Match: *`` for a
new variable, ``If-Match: <etag>`` over a version this store has seen; an existing variable it has
not seen costs a 412, a HEAD and a second PUT); ``delete`` one conditional DELETE (plus a HEAD for
a variable never seen); ``list`` one LIST per 1000 objects plus one HEAD per variable, concurrent.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import io
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Final, TypeVar

import aiohttp
import s3fs
from botocore.exceptions import BotoCoreError, ClientError
from fsspec.asyn import sync

from backends._common import owner_prefix, precondition_exists, precondition_stale, unique_now
from backends._s3_parts import (
    CONFLICT,
    MISSING,
    OPTIONS,
    Body,
    Seen,
    SeenCache,
    SyncBody,
    check_s3_options,
    content_type,
    describe,
    error_code,
    lost_condition,
    parse_url,
)
from direktiv_sdk._compat import override
from direktiv_sdk.errors import InvalidKeyError, StoreError
from direktiv_sdk.store import (
    CHUNK_SIZE,
    Owner,
    Variable,
    VariableData,
    VariableMeta,
    VariableReader,
    VariableRef,
    VariableStore,
    validate_key,
)

__all__ = ["OPTIONS", "S3Store"]

_ATTEMPTS: Final = 5
_CLIENT_CONFIG: Final[dict[str, object]] = {
    "connect_timeout": 5,
    "retries": {"max_attempts": 2, "mode": "standard"},
}
"""A dead endpoint fails in seconds, not minutes; ``config_kwargs`` may override it."""
_LIST_CONCURRENCY: Final = 16
_CACHE_SIZE: Final = 4096

_T = TypeVar("_T")


def _meta(ref: VariableRef, key: str, found: tuple[Seen, str, int]) -> VariableMeta:
    seen, mime, size = found
    return VariableMeta(ref, size, mime, seen.created_at, seen.updated_at, seen.token(key))


class S3Store(VariableStore):
    """Variables as objects in an S3 bucket (or any S3-compatible API), one object each.

    Compare-and-set is enforced by the server with ``If-Match`` on the ETag (an MD5 of the
    bytes), create-only with ``If-None-Match: *``. Thread-safe; close it when done.
    """

    max_object_size: ClassVar[int] = 5 << 30
    """S3's limit for a single PUT; a larger value is refused before anything is sent."""
    url_options: ClassVar[Mapping[str, type]] = {
        "anon": bool,
        "endpoint_url": str,
        "region": str,
    }
    """Options a URL query may set (credentials stay out of URLs: pass them as arguments)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        region: str | None = None,
        anon: bool = False,
        client_kwargs: dict[str, object] | None = None,
        config_kwargs: dict[str, object] | None = None,
    ) -> None:
        """Open a store in ``bucket`` under ``prefix``; unset settings come from the AWS env."""
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        parse_url(self.url)  # the same checks as from_url: a bad bucket or prefix fails here
        # Deep copies: botocore rewrites nested settings (retries) in place.
        client = copy.deepcopy(client_kwargs or {})
        if region is not None:
            client["region_name"] = region
        self.fs = s3fs.S3FileSystem(
            anon=anon,
            endpoint_url=endpoint_url,
            key=key,
            secret=secret,
            token=token,
            client_kwargs=client,
            config_kwargs={**_CLIENT_CONFIG, **copy.deepcopy(config_kwargs or {})},
            skip_instance_cache=True,
        )
        """The s3fs file system whose client (session, endpoint, credentials) this store uses."""
        self._seen = SeenCache(_CACHE_SIZE)
        self._bucket_exists = False
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, /, **options: object) -> S3Store:
        """Open ``s3://bucket[/prefix]``; ``options`` are those named in :data:`OPTIONS`."""
        bucket, prefix = parse_url(url)
        check_s3_options(url, options)
        return cls(bucket, prefix, **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ plumbing

    def _object_key(self, ref: VariableRef) -> str:
        return f"{self._owner_prefix(ref.owner)}/{ref.key}"

    def _owner_prefix(self, owner: Owner) -> str:
        return f"{self.prefix}/{owner_prefix(owner)}" if self.prefix else owner_prefix(owner)

    def _run(self, action: str, ref: object, fn: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``fn`` on s3fs's event loop; translate S3 and transport errors to StoreError."""
        if self._closed:
            raise StoreError(f"cannot {action} {ref}: the store {self.url!r} is closed")
        try:
            return sync(self.fs.loop, fn)  # type: ignore[no-any-return]
        except StoreError:
            raise
        except ClientError as exc:
            code = error_code(exc)
            if code == "NoSuchBucket" or (exc.operation_name == "HeadBucket" and code in MISSING):
                raise StoreError(
                    f"cannot {action} {ref}: bucket {self.bucket!r} does not exist; "
                    "create it or fix the store URL"
                ) from exc
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
            answer = f"HTTP {status}" if code in ("", status) else f"HTTP {status} {code}"
            message = exc.response.get("Error", {}).get("Message", "")
            raise StoreError(
                f"cannot {action} {ref} in {self.url!r}: S3 answered {answer} ({message})"
            ) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise StoreError(
                f"cannot {action} {ref} in {self.url!r}: {type(exc).__name__}: {exc}"
            ) from exc

    async def _client(self) -> Any:
        return await self.fs.set_session()

    async def _head(self, client: Any, key: str) -> tuple[Seen, str, int] | None:
        """Return what a HEAD says about ``key``, or ``None`` when it does not exist."""
        try:
            response = await client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in MISSING:
                raise
            # A HEAD 404 has no body, so it cannot tell a missing key from a missing bucket.
            if not self._bucket_exists:
                await client.head_bucket(Bucket=self.bucket)
                self._bucket_exists = True
            self._seen.drop(key)
            return None
        found = describe(response)
        self._seen.put(key, found[0])
        return found

    async def _put(
        self, client: Any, key: str, body: Body, *, mime_type: str, new: Seen, **condition: str
    ) -> Seen:
        response = await client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body.rewind(),
            ContentLength=body.size,
            Metadata=new.metadata(mime_type),
            **content_type(mime_type),
            **condition,
        )
        self._bucket_exists = True
        seen = Seen(response["ETag"].strip('"'), new.write_id, new.created_at, new.updated_at)
        self._seen.put(key, seen)
        return seen

    def _expected(self, ref: VariableRef, key: str, version: str) -> Seen:
        """Return the version ``version`` names; raise if it provably is not current."""
        wanted = Seen.parse(version, key)
        if wanted is None:
            # Not a token of this store: it matches no object, and the server still tells a
            # missing variable (404) from a different one (412), as the other stores do.
            return Seen.unknown()
        cached = self._seen.get(key)
        # If-Match compares ETags only, and rewriting identical bytes keeps the ETag: a newer
        # write id seen here proves the token stale without asking the server.
        if (
            cached is not None
            and cached.write_id != wanted.write_id
            and cached.updated_at > wanted.updated_at
        ):
            raise precondition_stale(ref, version)
        return wanted

    def _body(self, ref: VariableRef, data: VariableData) -> Body:
        if isinstance(data, bytes | bytearray | memoryview):
            body = Body(bytes(data))
        else:
            body = Body.spool(self._iter_chunks(data), self.max_object_size)
        if body.size > self.max_object_size:
            body.close()
            raise StoreError(
                f"cannot set {ref}: its value exceeds S3's single-PUT limit of "
                f"{self.max_object_size} bytes; store a smaller value"
            )
        return body

    # ------------------------------------------------------------------ hooks

    @override
    def _get(self, ref: VariableRef) -> Variable | None:
        key = self._object_key(ref)

        async def get() -> Variable | None:
            client = await self._client()
            try:
                response = await client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) not in MISSING:
                    raise
                self._seen.drop(key)
                return None
            async with response["Body"] as stream:
                data = await stream.read()
            found = describe(response)
            self._seen.put(key, found[0])
            return Variable(_meta(ref, key, found), data)

        return self._run("get", ref, get)

    @override
    def _open(self, ref: VariableRef) -> VariableReader | None:
        key = self._object_key(ref)

        async def get() -> Any:
            client = await self._client()
            try:
                return await client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) not in MISSING:
                    raise
                self._seen.drop(key)
                return None

        response = self._run("open", ref, get)
        if response is None:
            return None
        found = describe(response)
        self._seen.put(key, found[0])
        stream = response["Body"]
        raw = SyncBody(
            lambda n: self._run("read", ref, lambda: stream.read(n)),
            lambda: self._run("read", ref, stream.aclose),
        )
        return VariableReader(_meta(ref, key, found), io.BufferedReader(raw, CHUNK_SIZE))

    @override
    def _set(
        self,
        ref: VariableRef,
        data: VariableData,
        mime_type: str,
        if_absent: bool,
        if_version: str | None,
    ) -> VariableMeta:
        key = self._object_key(ref)
        wanted = None if if_version is None else self._expected(ref, key, if_version)
        body = self._body(ref, data)
        now = unique_now()
        write_id = secrets.token_hex(8)

        async def put() -> Seen:
            client = await self._client()

            async def attempt(created: datetime, **condition: str) -> Seen:
                new = Seen("", write_id, created, now)
                return await self._put(client, key, body, mime_type=mime_type, new=new, **condition)

            if if_absent:
                try:
                    return await attempt(now, IfNoneMatch="*")
                except ClientError as exc:
                    if error_code(exc) in CONFLICT:
                        raise precondition_exists(ref) from exc
                    raise
            if wanted is not None:
                assert if_version is not None
                try:
                    return await attempt(wanted.created_at, IfMatch=f'"{wanted.etag}"')
                except ClientError as exc:
                    if (lost := lost_condition(ref, if_version, exc)) is None:
                        raise
                    raise lost from exc
            # Last writer wins, but created_at must survive: write only over the version whose
            # creation time we carry, re-reading it (HEAD) when another writer got in between.
            current = self._seen.get(key)
            for _ in range(_ATTEMPTS):
                try:
                    if current is None:
                        return await attempt(now, IfNoneMatch="*")
                    return await attempt(current.created_at, IfMatch=f'"{current.etag}"')
                except ClientError as exc:
                    if error_code(exc) not in CONFLICT | MISSING:
                        raise
                found = await self._head(client, key)
                current = None if found is None else found[0]
            return await attempt(now if current is None else current.created_at)

        try:
            seen = self._run("set", ref, put)
        finally:
            body.close()
        return VariableMeta(ref, body.size, mime_type, seen.created_at, now, seen.token(key))

    @override
    def _delete(self, ref: VariableRef, if_version: str | None) -> bool:
        key = self._object_key(ref)
        wanted = None if if_version is None else self._expected(ref, key, if_version)

        async def delete() -> bool:
            client = await self._client()
            current = wanted or self._seen.get(key)
            for _ in range(_ATTEMPTS):
                if current is None:
                    found = await self._head(client, key)
                    if found is None:
                        return False
                    current = found[0]
                try:
                    await client.delete_object(
                        Bucket=self.bucket, Key=key, IfMatch=f'"{current.etag}"'
                    )
                except ClientError as exc:
                    if if_version is not None:
                        if (lost := lost_condition(ref, if_version, exc)) is None:
                            raise
                        raise lost from exc
                    if error_code(exc) in MISSING:
                        self._seen.drop(key)
                        return False
                    if error_code(exc) not in CONFLICT:
                        raise
                    current = None
                    continue
                self._seen.drop(key)
                return True
            await client.delete_object(Bucket=self.bucket, Key=key)
            self._seen.drop(key)
            return True

        return self._run("delete", ref, delete)

    @override
    def _owners(self) -> Iterable[Owner]:
        base = f"{self.prefix}/" if self.prefix else ""

        async def listing() -> set[Owner]:
            client = await self._client()
            found: set[Owner] = set()
            page_token: dict[str, str] = {}
            while True:
                page = await client.list_objects_v2(Bucket=self.bucket, Prefix=base, **page_token)
                for item in page.get("Contents", ()):
                    *segments, key = item["Key"][len(base) :].split("/")
                    try:
                        validate_key(key)
                        found.add(Owner.from_segments(tuple(segments)))
                    except ValueError:
                        continue  # not a variable: a folder marker, some other tool's object
                if not page.get("IsTruncated"):
                    break
                page_token = {"ContinuationToken": page["NextContinuationToken"]}
            return found

        return self._run("list owners in", self.url, listing)

    @override
    def _list(self, owner: Owner) -> builtins.list[VariableMeta]:
        prefix = self._owner_prefix(owner) + "/"

        async def listing() -> builtins.list[VariableMeta]:
            client = await self._client()
            names: builtins.list[str] = []
            page_token: dict[str, str] = {}
            while True:
                page = await client.list_objects_v2(
                    Bucket=self.bucket, Prefix=prefix, Delimiter="/", **page_token
                )
                for item in page.get("Contents", ()):
                    try:
                        names.append(validate_key(item["Key"][len(prefix) :]))
                    except InvalidKeyError:
                        continue  # not a variable: a folder marker, some other tool's object
                if not page.get("IsTruncated"):
                    break
                page_token = {"ContinuationToken": page["NextContinuationToken"]}
            self._bucket_exists = True
            limit = asyncio.Semaphore(_LIST_CONCURRENCY)

            async def head(name: str) -> VariableMeta | None:
                async with limit:
                    found = await self._head(client, prefix + name)
                # None: deleted between the listing and the HEAD.
                return None if found is None else _meta(owner.ref(name), prefix + name, found)

            metas = await asyncio.gather(*(head(name) for name in names))
            return [meta for meta in metas if meta is not None]

        return self._run("list", owner, listing)

    @override
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            creator = getattr(self.fs, "_s3creator", None)
            if self.fs._s3 is not None and creator is not None:
                # s3fs would close it at garbage collection; aiohttp warns if that is too late.
                sync(self.fs.loop, creator.__aexit__, None, None, None)
                self.fs._s3 = None
