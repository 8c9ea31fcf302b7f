"""Prefect flows, tasks, the CLI and publishing: the only part of mossforge that knows Prefect."""
