"""Prefect flows, tasks, the CLI and publishing: the only part of mossforge that knows Prefect."""

import os

# Read when Prefect is first imported. mossforge runs offline by default: Prefect's usage
# telemetry would try to reach the internet, and its session insert races the temporary
# server's start-up on SQLite ("database is locked"). A user can still turn it on.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
