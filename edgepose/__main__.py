"""Allow ``python -m edgepose``."""

from edgepose.cli import main

raise SystemExit(main())
