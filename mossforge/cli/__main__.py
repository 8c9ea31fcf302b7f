"""`python -m mossforge.cli` runs the command line (the tests start it this way)."""

from mossforge.cli import app

app()
