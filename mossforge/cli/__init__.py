"""The `mossforge` command line: one module per command group (listed in main.py), one app."""

from mossforge.cli.main import app

__all__ = ["app"]
