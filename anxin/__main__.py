"""``python -m anxin``: the same as the ``anxin`` command."""

from anxin.cli import main

raise SystemExit(main())
