"""The fsspec view of a ``memory://`` store, imported only when someone asks for ``store.fs``."""

from __future__ import annotations

from collections.abc import Callable

from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

__all__ = ["MemoryFile", "MirrorFileSystem"]


class MirrorFileSystem(MemoryFileSystem):  # type: ignore[misc] # fsspec has no type hints
    """A private MemoryFileSystem whose files are brought up to date whenever it is read."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._files: dict[str, MemoryFile] = {}
        self._sync: Callable[[], None] | None = None
        super().__init__(*args, **kwargs)

    @property
    def store(self) -> dict[str, MemoryFile]:
        """Return the path -> file dict, after applying the writes not mirrored yet."""
        sync = self._sync
        if sync is not None:
            sync()
        return self._files

    @store.setter
    def store(self, files: dict[str, MemoryFile]) -> None:
        self._files = files

    def __setstate__(self, state: dict[str, object]) -> None:
        # Unpickling assigns every attribute, so ``store`` goes through its setter.
        for name, value in state.items():
            setattr(self, name, value)
