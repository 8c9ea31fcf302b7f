"""Candidate and image generators. Plain Python: nothing here imports Prefect or `flows`."""
