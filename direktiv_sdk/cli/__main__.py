"""``python -m direktiv_sdk.cli``: the ``direktiv-sdk`` command."""

from __future__ import annotations

import sys

from direktiv_sdk.cli._main import main

sys.exit(main())
