"""Fresh stores for tests: per test, per Hypothesis example, per pytest-xdist worker and run.

A :class:`StoreFactory` makes any number of fresh, empty stores for one test from the test's
URL; ``direktiv_store`` is its first. ``file://PATH`` stores live in
``PATH/_pytest/<run>-<worker>/<test>`` and ``s3://`` ones under ``prefix/<run>-<worker>/<test>``,
so workers (``--dist each`` runs every test on each) and runs never share one. The configured
URL is checked once at session start: a bad or unreachable store is one usage error.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from direktiv_sdk.errors import DirektivError
from direktiv_sdk.store import Owner
from direktiv_sdk.store.registry import open_store

if TYPE_CHECKING:
    from direktiv_sdk.store import VariableStore

__all__ = ["StoreFactory", "check_configured_store", "run_segment"]

_RUN_KEY: Final = pytest.StashKey[str]()
_KEEP_RUNS: Final = 3
"""``file://PATH`` keeps the folders of this many recent runs per worker name."""
_PRUNE_AFTER_SECONDS: Final = 600.0
"""A run folder younger than this is never pruned: it may belong to a run in progress."""


def run_segment(config: pytest.Config) -> str:
    """Return ``<run>-<worker>``: the same run id for all xdist workers of one run."""
    # From this config's own xdist input, never the environment: a pytest run started inside
    # a worker (pytester) inherits the worker's variables but is a run of its own.
    workerinput = getattr(config, "workerinput", None)
    worker_info = workerinput if isinstance(workerinput, dict) else {}
    run = config.stash.get(_RUN_KEY, "")
    if not run:
        shared = worker_info.get("testrunuid")
        run = (
            str(shared)[:12]
            if shared
            else f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        )
        config.stash[_RUN_KEY] = run
    worker = str(worker_info.get("workerid") or "main")
    return f"{run}-{worker}"


class StoreFactory:
    """Make fresh, empty stores for one test; all are closed after it (``direktiv_store_factory``).

    Call it for each Hypothesis example (``store = direktiv_store_factory()``), so no example
    sees what another one stored.
    """

    def __init__(
        self,
        url: str,
        options: dict[str, object],
        nodeid: str,
        *,
        make_url: Callable[..., str],
        tmp_path: Callable[[], Path],
        base: Path,
        run: str,
    ) -> None:
        self.url = url
        self.options = options
        self._nodeid = nodeid
        self._make_url = make_url
        self._tmp_path = tmp_path
        self._base = base
        self._run = run
        self.stores: list[VariableStore] = []

    def __call__(self) -> VariableStore:
        """Return a new, empty store (the n-th of this test)."""
        number = len(self.stores) + 1
        nodeid = self._nodeid if number == 1 else f"{self._nodeid}[store {number}]"
        plain_file = self.url.lower().partition("?")[0] == "file://"
        tmp_path = None
        if plain_file:
            tmp_path = self._tmp_path() if number == 1 else self._tmp_path() / f"store-{number}"
        fresh = self._make_url(self.url, nodeid, tmp_path=tmp_path, base=self._base, run=self._run)
        if fresh.lower().startswith("file://") and not plain_file:
            # A test rerun in the same run gets the same folder: empty it; keep it afterwards.
            shutil.rmtree(fresh[len("file://") :].partition("?")[0], ignore_errors=True)
        store = open_store(fresh, **self.options)
        self.stores.append(store)
        return store

    def close(self) -> None:
        """Close every store this factory made."""
        stores, self.stores = self.stores, []
        for store in stores:
            store.close()


def prune_runs(folder: Path) -> None:
    """Remove old ``<run>-<worker>`` folders below ``folder``, keeping the newest runs."""
    try:
        folders = [(p, p.stat().st_mtime) for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return
    newest: dict[str, float] = {}
    for path, mtime in folders:
        run = path.name.rpartition("-")[0]
        newest[run] = max(newest.get(run, 0.0), mtime)
    keep = set(sorted(newest, key=newest.__getitem__, reverse=True)[:_KEEP_RUNS])
    now = time.time()
    for path, _ in folders:
        run = path.name.rpartition("-")[0]
        if run not in keep and now - newest[run] > _PRUNE_AFTER_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def check_configured_store(
    config: pytest.Config, url: str, source: str, make_url: Callable[..., str]
) -> None:
    """Open the configured store once; a bad URL or an unreachable store is a usage error.

    Raises:
        pytest.UsageError: The URL cannot make fresh stores, or the store does not answer.
    """
    scratch = Path(tempfile.mkdtemp(prefix="direktiv-check-"))
    try:
        run = run_segment(config)
        fresh = make_url(
            url,
            "direktiv-session-check",
            tmp_path=scratch,
            base=config.invocation_params.dir,
            run=run,
        )
        store = open_store(fresh)
        try:
            store.get(Owner.for_namespace("default").ref("direktivSessionCheck"))
        finally:
            store.close()
    except (DirektivError, ValueError, OSError) as exc:
        raise pytest.UsageError(
            f"the direktiv store {url!r} ({source}) cannot be used: {exc}"
        ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if fresh.lower().startswith("file://") and url.lower().partition("?")[0] != "file://":
        check_folder = Path(fresh[len("file://") :].partition("?")[0])
        shutil.rmtree(check_folder, ignore_errors=True)
        prune_runs(check_folder.parent.parent)
