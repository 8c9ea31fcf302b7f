"""Filters that judge candidates (dedup, refusal, consensus). Plain Python, no Prefect."""
