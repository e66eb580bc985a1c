"""textstats: a small Direktiv function that reads, sets and writes variables.

A plain WSGI app (standard library only). For each request it:

* reads ``document.txt`` from the action's temp dir (the ``Direktiv-TempDir`` header), where
  the flow's ``files:`` entry put it;
* counts its lines and words, and answers ``{"lines": 2, "words": 7, "top": [["the", 3], ...]}``
  with the ``top`` most frequent words (input ``{"top": 3}``, the default);
* sets the instance variable ``wordcount`` through the sidecar (``POST /var``);
* writes the document to ``out/workflow/last-document`` (a workflow variable) and a folder
  ``out/namespace/report/`` (a namespace variable holding a tar.gz).

Bad input or a missing document is reported as a Direktiv error code, which a flow can catch.
Run it as Direktiv does, on port 8080: ``python examples/function/textstats.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, cast
from wsgiref.simple_server import make_server

SIDECAR_URL_ENV = "DIREKTIV_SIDECAR_URL"
"""Overrides the sidecar's address; Direktiv's sidecar is always ``http://localhost:8889``."""

WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
"""A word: letters and digits, with inner apostrophes (``don't``)."""

StartResponse = Callable[[str, list[tuple[str, str]]], object]


class FunctionError(Exception):
    """An error the flow sees as a catchable Direktiv error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sidecar_url() -> str:
    """Return the sidecar's base URL."""
    return os.environ.get(SIDECAR_URL_ENV, "http://localhost:8889").rstrip("/")


def set_variable(action_id: str, scope: str, key: str, data: bytes, mime_type: str) -> None:
    """Store a variable through the sidecar, as any Direktiv function can."""
    query = urllib.parse.urlencode({"aid": action_id, "scope": scope, "key": key})
    request = urllib.request.Request(
        f"{sidecar_url()}/var?{query}",
        data=data,
        method="POST",
        headers={"Content-Type": mime_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise FunctionError("textstats.sidecar", f"cannot set {key!r}: {exc}") from exc


def parse_top(body: bytes) -> int:
    """Return how many top words the input asks for (1-100, default 3)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise FunctionError("textstats.badInput", 'the input must be an object like {"top": 3}')
    top = data.get("top", 3)
    if isinstance(top, float) and top.is_integer():
        top = int(top)  # Direktiv's data is float64: 3 may arrive as 3.0
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 100:
        raise FunctionError(
            "textstats.badInput", f"top must be an integer from 1 to 100, not {top!r}"
        )
    return top


@dataclass(frozen=True)
class Stats:
    """What the function found out about a document."""

    lines: int
    words: int
    top: list[tuple[str, int]]
    """The most frequent words with their counts, most frequent first."""


def count(text: str, top: int) -> Stats:
    """Return the line and word counts of ``text`` and its ``top`` most frequent words."""
    words = [word.lower() for word in WORD.findall(text)]
    ranked = sorted(Counter(words).items(), key=lambda item: (-item[1], item[0]))
    return Stats(lines=len(text.splitlines()), words=len(words), top=ranked[:top])


def write_report(folder: Path, stats: Stats) -> None:
    """Write the report folder: ``summary.json`` and ``words/top.txt``."""
    (folder / "words").mkdir(parents=True)
    summary = {"lines": stats.lines, "words": stats.words}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "words" / "top.txt").write_text("".join(f"{w} {n}\n" for w, n in stats.top))


def handle(body: bytes, action_id: str, temp_dir: Path) -> Stats:
    """Do the function's work for one request."""
    top = parse_top(body)
    document = temp_dir / "document.txt"
    data = document.read_bytes() if document.is_file() else b""
    if not data:
        raise FunctionError("textstats.noDocument", "document.txt is missing or empty")
    stats = count(data.decode("utf-8", "replace"), top)
    set_variable(action_id, "instance", "wordcount", str(stats.words).encode(), "text/plain")
    (temp_dir / "out" / "workflow" / "last-document").write_bytes(data)
    write_report(temp_dir / "out" / "namespace" / "report", stats)
    return stats


def app(environ: dict[str, object], start_response: StartResponse) -> Iterable[bytes]:
    """Serve one Direktiv function request (WSGI)."""
    if environ.get("REQUEST_METHOD") == "DELETE":  # Direktiv cancels an action: nothing to stop
        start_response("200 OK", [])
        return [b""]
    length = int(str(environ.get("CONTENT_LENGTH") or 0))
    body = cast(IO[bytes], environ["wsgi.input"]).read(length)
    action_id = str(environ.get("HTTP_DIREKTIV_ACTIONID", ""))
    temp_dir = Path(str(environ.get("HTTP_DIREKTIV_TEMPDIR", "")))
    try:
        answer = json.dumps(asdict(handle(body, action_id, temp_dir))).encode()
    except FunctionError as error:
        start_response(
            "400 Bad Request",
            [("Direktiv-ErrorCode", error.code), ("Direktiv-ErrorMessage", error.message)],
        )
        return [b""]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [answer]


def main() -> None:
    """Serve the function on port 8080, as Direktiv runs it (``--port 0``: any free port)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    arguments = parser.parse_args()
    with make_server(arguments.host, arguments.port, app) as server:
        print(f"textstats listening on http://{arguments.host}:{server.server_port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
