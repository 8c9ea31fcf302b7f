"""The `mossforge` command line: one module per command group, one app."""

from mossforge.cli.main import app

__all__ = ["app"]
