"""The seed bank: mossforge's offline text generator.

A curated, combinatorial library written for this project (`library.py` and the `data_*` modules)
and the logic that turns its combinations into candidates (`bank.py`). It is a real generator, not a
mock: every candidate it returns is a complete, benign-by-construction query with its harmful
contrast, and it is labelled `generator="seedbank"` in the provenance.

    from mossforge.generators.seedbank import SeedBank
    bank = SeedBank()
    slots = bank.slot_space()                       # every realisable combination, per type
    candidate = bank.generate(slots["negated_harm"][0], seed=0)
"""

from .bank import SEEDBANK_TEMPLATE_ID, SeedBank

__all__ = ["SEEDBANK_TEMPLATE_ID", "SeedBank"]
