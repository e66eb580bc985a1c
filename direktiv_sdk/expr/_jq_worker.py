"""The jq worker process: evaluate programs sent by :mod:`direktiv_sdk.expr._jq_pool`.

Run as a script (it imports nothing of ours):
``python -I _jq_worker.py MEMORY_LIMIT MAX_DEPTH CPU_SECONDS``. Requests and replies are
length-prefixed ``marshal`` tuples on stdin and stdout. The address-space limit turns a runaway
program into a ``MemoryError`` or libjq's abort, the CPU limit into SIGXCPU; either ends only
this process.
"""

import marshal
import os
import resource
import signal
import struct
import sys
from collections.abc import Iterable
from typing import Any, BinaryIO

import jq

_HEADER = struct.Struct("<Q")


def _limit_cpu(seconds: int) -> None:
    """Let the next evaluation use ``seconds`` more CPU seconds, then SIGXCPU ends us.

    So a runaway program never outlives its caller, even if the caller dies without killing
    us (only the soft limit moves: a lowered hard limit could never be raised again).
    """
    used = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used.ru_utime + used.ru_stime) + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _read(stream: BinaryIO, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            os._exit(0)  # the parent went away
        data += chunk
    return bytes(data)


def _depth(value: object, limit: int) -> bool:
    """Return whether ``value`` nests at most ``limit`` levels (iteratively)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _evaluate(
    programs: dict[str, Any], program: str, text: str, max_depth: int
) -> tuple[str, object, bool]:
    compiled = programs.get(program)
    if compiled is None:
        compiled = programs[program] = jq.compile(program)
    results = iter(compiled.input_text(text))
    nothing = object()
    first = next(results, nothing)
    if first is nothing:
        return ("none", None, False)
    # Pull a second result, as the in-process path does: `null, error("x")` is an error.
    more = next(results, nothing) is not nothing
    if not more and not _depth(first, max_depth):
        return ("depth", "", False)
    return ("ok", first, more)


def main() -> None:
    memory, max_depth, cpu_seconds = (int(arg) for arg in sys.argv[1:4])
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C reaches both
    stdin = os.fdopen(0, "rb", buffering=0)
    stdout = os.fdopen(1, "wb", buffering=0)
    programs: dict[str, Any] = {}
    while True:
        (size,) = _HEADER.unpack(_read(stdin, _HEADER.size))
        program, text = marshal.loads(_read(stdin, size))
        _limit_cpu(cpu_seconds)
        try:
            reply = _evaluate(programs, program, text, max_depth)
        except ValueError as exc:
            reply = ("error", str(exc), False)
        except MemoryError:
            reply = ("memory", "", False)
        except RecursionError:
            reply = ("depth", "", False)
        try:
            data = marshal.dumps(reply)  # type: ignore[arg-type] # jq results are plain data
        except ValueError:
            data = marshal.dumps(("depth", "", False))
        stdout.write(_HEADER.pack(len(data)) + data)


if __name__ == "__main__":
    main()
