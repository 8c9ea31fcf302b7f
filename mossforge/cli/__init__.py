"""The `mossforge` command line: one module per command group (listed in main.py), one app.

`main` is the installed `mossforge` command: a `run` goes to the warm runner when one serves this
environment (cli/warm_runs.py), everything else runs in this process. `app` is loaded on first use,
so that a handed-off run imports nothing else.
"""

import os
import sys


def main() -> None:
    from mossforge.cli import warm_runs

    env = dict(os.environ)
    code = warm_runs.hand_off(sys.argv, env)
    if code is not None:
        sys.exit(code)
    warm_runs.env_at_entry = env
    from mossforge.cli.main import app

    app()


def __getattr__(name: str):
    if name == "app":
        from mossforge.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
