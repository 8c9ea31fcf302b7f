"""What happens to a finished build: publishing versions, the card and report, the Hub, importers,
evaluation and human review. Plain Python: nothing here imports Prefect or mossforge.flows."""
