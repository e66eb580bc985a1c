"""Event listeners: which events start a flow or wake a waiting instance (the reference's rules).

A :class:`Listener` is registered by an event-started flow (``start``, it stays) or by a waiting
state (``wait``, deleted once it fires). :meth:`Listener.offer` decides whether an event counts
and returns the events that fire the listener. Context filters match extension attributes (and
``source``) with go-glob patterns (``*`` is the only wildcard).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from direktiv_sdk.engine.cloudevent import CloudEvent

__all__ = [
    "EventFilter",
    "Listener",
    "ListenerIndex",
    "glob_match",
    "go_lifespan",
    "instance_order",
]

_STAR: Final = "*"


def glob_match(pattern: str, text: str) -> bool:
    """Return whether ``text`` matches ``pattern``, where ``*`` matches any run of characters."""
    if pattern == _STAR:
        return True
    parts = pattern.split(_STAR)
    if len(parts) == 1:
        return text == pattern
    head, *middle, tail = parts
    if not text.startswith(head):
        return False
    rest = text[len(head) :]
    for part in middle:
        at = rest.find(part)
        if at < 0:
            return False
        rest = rest[at + len(part) :]
    return pattern.endswith(_STAR) or rest.endswith(tail)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The context an event of ``type`` must have: attribute name -> pattern."""

    type: str
    context: tuple[tuple[str, str], ...] = ()

    def passes(self, texts: Mapping[str, str]) -> bool:
        """Return whether every pattern matches its attribute in ``texts`` (filter texts)."""
        for name, pattern in self.context:
            value = texts.get(name)
            if value is None or not glob_match(pattern, value):
                return False
        return True


def instance_order(filters: Sequence[EventFilter]) -> tuple[EventFilter, ...]:
    """Return a waiting state's filters in the reference's order (reversed after each append)."""
    ordered: list[EventFilter] = []
    for item in filters:
        ordered.append(item)
        ordered.reverse()
    return tuple(ordered)


class Listener:
    """One registered listener; ``target`` is what it starts or wakes."""

    __slots__ = ("collected", "deleted", "filters", "kind", "lifespan", "mode", "target", "types")

    def __init__(
        self,
        kind: str,
        mode: str,
        filters: Sequence[EventFilter],
        target: object,
        lifespan: float = 0.0,
    ) -> None:
        """Listen for the types of ``filters``; ``mode`` ``single`` or ``all``."""
        self.kind = kind
        self.mode = mode
        self.filters = tuple(filters)
        self.types = tuple(dict.fromkeys(f.type for f in filters))
        self.target = target
        self.lifespan = lifespan
        self.collected: list[tuple[float, CloudEvent]] = []
        self.deleted = False

    def _passes(self, event: CloudEvent, texts: Mapping[str, str] | None) -> bool:
        for item in self.filters:
            if item.type == event.type:
                return item.passes(event.filter_texts() if texts is None else texts)
        return True

    def offer(
        self, event: CloudEvent, now: float, texts: Mapping[str, str] | None = None
    ) -> list[CloudEvent] | None:
        """Return the events that fire this listener when ``event`` arrives, else ``None``.

        ``texts``: the event's :meth:`~CloudEvent.filter_texts`, when already computed.
        """
        if self.deleted or event.type not in self.types:
            return None
        if self.mode == "all" and self.lifespan > 0:
            self.collected = [(t, e) for t, e in self.collected if t + self.lifespan > now]
        if not self._passes(event, texts):
            return None
        if self.mode != "all":
            if self.kind == "wait":
                self.deleted = True
            return [event]
        if any(e.type == event.type for _, e in self.collected):
            return None
        self.collected.append((now, event))
        if len(self.collected) < len(self.types):
            return None
        fired = [e for _, e in self.collected]
        self.collected = []
        if self.kind == "wait":
            self.deleted = True
        return fired


class ListenerIndex:
    """Listeners by event type (not thread-safe: the namespace holds its lock)."""

    def __init__(self) -> None:
        """Start empty."""
        self._by_type: dict[str, list[Listener]] = {}

    def add(self, listener: Listener) -> None:
        """Register ``listener`` under each of its types."""
        for kind in listener.types:
            self._by_type.setdefault(kind, []).append(listener)

    def remove(self, listener: Listener) -> None:
        """Forget ``listener`` (it fires no more)."""
        listener.deleted = True
        for kind in listener.types:
            found = self._by_type.get(kind)
            if found is not None and listener in found:
                found.remove(listener)
                if not found:
                    del self._by_type[kind]

    def deliver(
        self, event: CloudEvent, now: float, accept: Callable[[Listener], bool] | None = None
    ) -> list[tuple[Listener, list[CloudEvent]]]:
        """Offer ``event`` to every listener of its type; return those that fired, in order.

        ``accept`` may veto a listener before it is offered the event (e.g. an expired wait).
        """
        fired = []
        texts = event.filter_texts()
        for listener in tuple(self._by_type.get(event.type, ())):
            if accept is not None and not accept(listener):
                continue
            events = listener.offer(event, now, texts)
            if events is not None:
                fired.append((listener, events))
                if listener.deleted:
                    self.remove(listener)
        return fired

    def starts(self, event_type: str) -> int:
        """Return how many start listeners listen for ``event_type``."""
        return sum(1 for found in self._by_type.get(event_type, ()) if found.kind == "start")

    def listeners(self) -> Iterable[Listener]:
        """Return every registered listener once."""
        seen: dict[int, Listener] = {}
        for found in self._by_type.values():
            for listener in found:
                seen.setdefault(id(listener), listener)
        return tuple(seen.values())


def go_lifespan(text: str) -> float | None:
    """Return seconds of ``lifespan`` converted the reference's way, ``None`` if Go refuses it."""
    if not text.startswith("P"):
        return None
    converted = "".join(
        part.replace("H", "h").replace("M", "m").replace("S", "s") for part in text[1:].split("T")
    )
    total = 0.0
    number = ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    if not converted:
        return None
    for char in converted:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            return None
    return None if number else total
