"""CloudEvents as flows see them: parsed and validated with the ``cloudevents`` SDK.

A :class:`CloudEvent` is immutable: its attributes (context attributes and extensions, as
Go-JSON values) and its data. :func:`parse_event` reads one structured-mode JSON event,
:func:`parse_http_event` a structured or binary-mode HTTP message; both raise
:class:`~direktiv_sdk.errors.CloudEventError` naming the missing or bad attribute.
:meth:`CloudEvent.as_data` is the event as instance data holds it (the reference's sdk-go JSON).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

from direktiv_sdk.errors import CloudEventError
from direktiv_sdk.expr import gojson

if TYPE_CHECKING:
    from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError

    from direktiv_sdk.expr.gojson import JSON, JSONObject

__all__ = ["CloudEvent", "is_json_type", "parse_event", "parse_events", "parse_http_event"]

REQUIRED: Final = ("specversion", "id", "source", "type")
_OPTIONAL: Final = ("datacontenttype", "dataschema", "subject", "time")
_JSON_TYPE: Final = re.compile(r"(?i)^(application|text)/([a-z0-9.+-]+\+)?json(;.*)?$")
MAX_EVENT_BYTES: Final = 8 * 1024 * 1024
"""The largest event accepted (bytes of its JSON)."""


def is_json_type(content_type: str) -> bool:
    """Return whether data of ``content_type`` is JSON (empty means JSON, as in sdk-go)."""
    return not content_type or bool(_JSON_TYPE.match(content_type))


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One validated CloudEvent v1.0."""

    attributes: Mapping[str, JSON]
    """Context attributes and extensions (no ``data``), e.g. ``{"type": "greeting", ...}``."""
    data: JSON | bytes = None
    """The payload: a JSON value, or ``bytes`` for binary data (``data_base64``)."""
    has_data: bool = False
    hops: int = field(default=0, compare=False)
    """How many generateEvent states led to this event (0: sent from outside)."""

    @property
    def type(self) -> str:
        """The ``type`` attribute."""
        return str(self.attributes["type"])

    @property
    def id(self) -> str:
        """The ``id`` attribute."""
        return str(self.attributes["id"])

    @property
    def source(self) -> str:
        """The ``source`` attribute."""
        return str(self.attributes["source"])

    def filter_texts(self) -> dict[str, str]:
        """Return the Go ``%v`` text of each extension and of ``source``, for context filters.

        The reference matches extensions and ``source`` only: other standard attributes
        (``id``, ``subject``, ``type``...) are never found by a filter.
        """
        return {
            name: gojson.format_v(value)
            for name, value in self.attributes.items()
            if name == "source" or (name not in REQUIRED and name not in _OPTIONAL)
        }

    def as_data(self) -> JSONObject:
        """Return the event as instance data holds it (attributes, then data or data_base64)."""
        out: JSONObject = dict(self.attributes)
        if self.has_data:
            if isinstance(self.data, bytes):
                out["data_base64"] = base64.b64encode(self.data).decode("ascii")
            else:
                out["data"] = self.data
        return out

    def to_json(self) -> str:
        """Return the event in structured-mode JSON (compact Go-JSON)."""
        return gojson.dumps(self.as_data())


def _fail(attribute: str, message: str) -> CloudEventError:
    return CloudEventError(attribute, message)


def parse_event(raw: bytes | str | Mapping[str, JSON], *, hops: int = 0) -> CloudEvent:
    """Return the event of one structured-mode JSON object (bytes, text or a parsed mapping)."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_EVENT_BYTES:
            raise _fail("event", f"the event is larger than {MAX_EVENT_BYTES} bytes")
        try:
            value = gojson.loads(raw)
        except ValueError as exc:
            raise _fail("event", f"not JSON: {exc}") from None
    else:
        value = dict(raw)
    if not isinstance(value, dict):
        raise _fail("event", f"a CloudEvent is a JSON object, not {gojson.dumps(value)[:40]}")
    attributes = dict(value)
    has_data = "data" in attributes or "data_base64" in attributes
    data: JSON | bytes = attributes.pop("data", None)
    if "data_base64" in attributes:
        encoded = attributes.pop("data_base64")
        if "data" in value:
            raise _fail("data_base64", "an event has either data or data_base64, not both")
        if not isinstance(encoded, str):
            raise _fail("data_base64", "data_base64 must be a base64 string")
        try:
            data = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise _fail("data_base64", "data_base64 is not valid base64") from None
    return _validated(attributes, data, has_data, hops)


def parse_events(text: bytes | str) -> list[CloudEvent]:
    """Return the events of a file: one JSON object, a JSON array of them, or JSON lines.

    Every event is validated before any is returned, so a bad line delivers nothing.
    """
    body = text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text
    stripped = body.strip()
    if not stripped:
        raise _fail("event", "no event: the input is empty")
    try:
        whole = gojson.loads(stripped)
    except ValueError:
        whole = None
    else:
        if isinstance(whole, list):
            return [_at(index, item) for index, item in enumerate(whole)]
        return [parse_event(whole)] if isinstance(whole, dict) else [_at(0, whole)]
    events = []
    for number, line in enumerate(body.splitlines(), start=1):
        if line.strip():
            try:
                events.append(parse_event(line))
            except CloudEventError as exc:
                raise CloudEventError(exc.attribute, f"line {number}: {exc.detail}") from None
    return events


def _at(index: int, item: JSON) -> CloudEvent:
    if not isinstance(item, dict):
        raise _fail("event", f"event {index}: a CloudEvent is a JSON object")
    try:
        return parse_event(item)
    except CloudEventError as exc:
        raise CloudEventError(exc.attribute, f"event {index}: {exc.detail}") from None


def parse_http_event(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Return the event of an HTTP request: binary mode (``ce-*`` headers) or structured mode."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if not any(name.startswith("ce-") for name in lowered):
        return parse_event(body)
    for name in REQUIRED:
        if f"ce-{name}" not in lowered:
            raise _fail(name, f"missing required attribute {name!r} (header ce-{name})")
    # The SDK loads on the first event: a run without events never imports it (CLI start-up).
    from cloudevents.core.bindings.http import HTTPMessage, from_http  # noqa: PLC0415
    from cloudevents.core.exceptions import CloudEventValidationError  # noqa: PLC0415
    from cloudevents.core.formats.json import JSONFormat  # noqa: PLC0415

    try:
        sdk_event = from_http(HTTPMessage(headers=dict(lowered), body=body), JSONFormat())
    except CloudEventValidationError as exc:
        raise _from_sdk(exc) from None
    except (ValueError, OverflowError) as exc:
        raise _fail("time", f"bad time: {exc}") from None
    attributes: dict[str, JSON] = {}
    for name, value in sdk_event.get_attributes().items():
        if name == "time":
            if "ce-time" in lowered:  # the SDK invents a time when there is none
                attributes[name] = lowered["ce-time"]
            continue
        attributes[name] = value
    content_type = str(attributes.get("datacontenttype") or "")
    payload = sdk_event.get_data()
    if not body:
        return _validated(attributes, None, False, 0)
    if is_json_type(content_type):
        try:
            data = gojson.loads(body)
        except ValueError:
            detail = f"the body is not JSON but the content type is {content_type!r}"
            raise _fail("data", detail) from None
        return _validated(attributes, data, True, 0)
    if isinstance(payload, str):
        return _validated(attributes, payload, True, 0)
    return _validated(attributes, body, True, 0)


def _validated(
    attributes: dict[str, JSON], data: JSON | bytes, has_data: bool, hops: int
) -> CloudEvent:
    """Check the attributes with the SDK's v1.0 rules (plus required id and specversion)."""
    for name in REQUIRED:
        if name not in attributes:
            raise _fail(name, f"missing required attribute {name!r}")
    sdk_attributes: dict[str, object] = {}
    for name, value in attributes.items():
        if name == "time":
            if not isinstance(value, str):
                raise _fail("time", "time must be an RFC 3339 timestamp string")
            try:
                sdk_attributes[name] = datetime.fromisoformat(value)
            except (ValueError, OverflowError) as exc:
                raise _fail("time", f"time is not an RFC 3339 timestamp: {exc}") from None
            continue
        if name not in REQUIRED and name not in _OPTIONAL and not _scalar(value):
            raise _fail(name, f"extension attribute {name!r} must be a string, number or bool")
        sdk_attributes[name] = value
    # The SDK loads on the first event: a run without events never imports it (CLI start-up).
    from cloudevents.core.exceptions import CloudEventValidationError  # noqa: PLC0415
    from cloudevents.core.v1.event import CloudEvent as SdkEvent  # noqa: PLC0415

    try:
        SdkEvent(sdk_attributes, None)
    except CloudEventValidationError as exc:
        raise _from_sdk(exc) from None
    return CloudEvent(attributes, data, has_data, hops)


def _scalar(value: JSON) -> bool:
    return isinstance(value, str | bool | int | float)


def _from_sdk(exc: CloudEventValidationError) -> CloudEventError:
    """Return our error for the SDK's first complaint (the attribute and its messages)."""
    errors: dict[str, list[BaseCloudEventException]] = exc.errors
    name, problems = next(iter(errors.items()))
    return _fail(name, "; ".join(str(p) for p in problems))
