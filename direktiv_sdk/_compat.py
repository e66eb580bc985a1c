"""``typing.override`` for Python 3.11 without importing ``typing_extensions`` at run time.

``typing_extensions`` is a large module (a few ms of every CLI start); the decorator only
matters to the type checker, so at run time it is ``typing.override`` (3.12+) or the identity.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TypeVar

__all__ = ["override"]

_F = TypeVar("_F")

if TYPE_CHECKING:
    from typing_extensions import override
elif sys.version_info >= (3, 12):
    from typing import override
else:

    def override(method: _F) -> _F:
        """Mark ``method`` as overriding a base-class method (checked by mypy only)."""
        return method
