"""The `mossforge` command line, put together: every command group on one app.

| module     | commands                                                         |
|------------|------------------------------------------------------------------|
| base.py    | the app, its one error handler, consoles, `--outputs`            |
| build.py   | run, serve                                                       |
| release.py | versions, diff, publish                                          |
| eval.py    | eval, import mossbench/csv, export mossbench/csv                 |
| review.py  | review export/import                                             |
| tools.py   | dedup, classify-refusals, negate                                 |
| local.py   | local-model install/start/stop/status                            |
| server.py  | server start/stop/status                                         |
| display.py | what `run` shows while it works                                  |

A new command is a function in the module of its group plus one line here.
"""

from __future__ import annotations

from mossforge.cli import build, release, review, tools
from mossforge.cli.base import app
from mossforge.cli.eval import eval_command, export_app, import_app
from mossforge.cli.local import local_app
from mossforge.cli.server import server_app

app.command()(build.run)
app.command()(build.serve)
app.command()(tools.dedup)
app.command("classify-refusals")(tools.classify_refusals)
app.command()(release.versions)
app.command()(release.diff)
app.command()(release.publish)
app.add_typer(server_app, name="server")
app.add_typer(review.review_app, name="review")
app.command()(tools.negate)
app.command("eval")(eval_command)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(local_app, name="local-model")

__all__ = ["app"]
