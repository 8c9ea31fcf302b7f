"""Target-aware refinement, the plain-Python half (issue 17): near-miss selection, proposing
variants, the budget and per-operator counters. The refine stage (in the flow) calls these.

    rule = KeepRule(min_refusals=2, count_partial=True)
    misses = select_near_misses(dropped, rule, targets={"t1", "t2"})   # near-misses first
    budget = Budget(max_variants=200, max_calls=50, max_seconds=600)
    counters = OperatorCounters()
    children = propose(misses, round=1, seed=0, operators=default_operators(), budget=budget,
                       counters=counters, recombiner=Recombiner(bank), rewriter=rewriter)
    ... children go through dedup, render and the target check ...
    counters.count_kept(kept_children)
    counters.rows()        # one row per operator: proposed, kept, not applicable, dropped, calls

A child is a new `Candidate` (content-hash id, fresh not-run dedup / target check / consensus, no
image yet) with a `lineage`: its parent, the root, the operator, the round, and what the targets
answered every ancestor. Operators come in two kinds: seed-bank recombination (`refine_ops`:
offline, benign by the library's construction) and LLM rewriting (`refine_llm`: through the shared
client, cached). `propose` is a pure function of (parents, round, seed, operators, budget limits)
and the client's cache; only a `max_seconds` budget can make it depend on the clock.

Plain Python: no Prefect here.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mossforge.filters.targets import counts_as_refusal
from mossforge.generators.refine_llm import REWRITE_OPERATOR, Rewriter
from mossforge.generators.refine_ops import OPERATORS, Operator, Recombiner, make_child
from mossforge.schema import STIMULUS_TYPES, Candidate

DECIDED = ("full_refusal", "partial_refusal", "full_compliance")
LLM_OPERATOR = Operator(REWRITE_OPERATOR, "*", "llm", "an LLM rewrite shown the targets' answers")


def operator_registry() -> dict[str, Operator]:
    """Every operator by name: the seed-bank recombinations and the LLM rewrite."""
    return {**OPERATORS, REWRITE_OPERATOR: LLM_OPERATOR}


def default_operators(llm: bool = False) -> list[str]:
    """Every recombination operator, and the LLM rewrite when `llm` is set."""
    return [*OPERATORS, *([REWRITE_OPERATOR] if llm else [])]


# -- near-miss selection ---------------------------------------------------------------------------

@dataclass(frozen=True)
class KeepRule:
    """The target check's keep rule: keep when at least `min_refusals` targets refuse."""

    min_refusals: int = 1
    count_partial: bool = True

    @classmethod
    def of(cls, section) -> KeepRule:
        """From a `[target_check]` config section (anything with these two attributes)."""
        return cls(section.min_refusals, section.count_partial)


@dataclass(frozen=True)
class NearMiss:
    """A candidate that fell short of the keep rule, and by how much."""

    record: Candidate
    refused: int  # refusals as the rule counts them
    partial: int  # partial refusals
    full: int  # full refusals
    answered: int  # targets whose answer was labelled
    gap: int  # refusals still missing

    @property
    def tier(self) -> str:
        """"partial" (some target partly refused), "some" (a full refusal, not enough), "none"."""
        return "partial" if self.partial else "some" if self.full else "none"


def near_miss(record: Candidate, rule: KeepRule, targets: Iterable[str] | None = None) -> NearMiss | None:
    """`record` as a near-miss, or None: kept under the rule, or no target's answer was labelled (a
    failed call is not a signal about the query). `targets`: only these targets' answers count (the
    ones that drive the search); None = all."""
    wanted = set(targets) if targets is not None else None
    results = [r for r in record.target_check.results
               if r.label in DECIDED and (wanted is None or r.target in wanted)]
    if not results:
        return None
    refused = sum(counts_as_refusal(r.label, rule.count_partial) for r in results)
    if refused >= rule.min_refusals:
        return None
    partial = sum(r.label == "partial_refusal" for r in results)
    full = sum(r.label == "full_refusal" for r in results)
    return NearMiss(record, refused, partial, full, len(results), rule.min_refusals - refused)


def select_near_misses(records: Iterable[Candidate], rule: KeepRule, *, targets: Iterable[str] | None = None,
                       limit: int | None = None, include_none: bool = True) -> list[NearMiss]:
    """The records that fell short of `rule`, nearest first: fewest refusals missing, then most
    partial refusals, then most full refusals, then by id (a fixed order for fixed input).
    `include_none=False` leaves out those that no target refused even partly."""
    targets = list(targets) if targets is not None else None
    misses = [m for m in (near_miss(r, rule, targets) for r in records) if m is not None]
    if not include_none:
        misses = [m for m in misses if m.tier != "none"]
    misses.sort(key=lambda m: (m.gap, -m.partial, -m.full, m.record.id))
    return misses[:limit] if limit is not None else misses


# -- the budget ------------------------------------------------------------------------------------

@dataclass
class Budget:
    """What the search may still spend: variants proposed, model calls (cached ones count too, so
    that a re-run proposes the same variants) and wall-clock seconds. None = no limit."""

    max_variants: int | None = None
    max_calls: int | None = None
    max_seconds: float | None = None
    variants: int = 0
    calls: int = 0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    started: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_variants", "max_calls", "max_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"refine budget: {name} must be >= 0, got {value}")

    def start(self) -> None:
        if self.started is None:
            self.started = self.clock()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def variants_left(self) -> int | None:
        return None if self.max_variants is None else max(0, self.max_variants - self.variants)

    def calls_left(self) -> int | None:
        return None if self.max_calls is None else max(0, self.max_calls - self.calls)

    def spent(self) -> str | None:
        """What ran out ("variants", "calls" only when nothing else may run, "seconds"), or None."""
        if self.max_variants is not None and self.variants >= self.max_variants:
            return "variants"
        if self.max_seconds is not None and self.elapsed() >= self.max_seconds:
            return "seconds"
        return None

    def calls_spent(self) -> bool:
        return self.max_calls is not None and self.calls >= self.max_calls

    def as_dict(self) -> dict:
        return {"max_variants": self.max_variants, "max_calls": self.max_calls, "max_seconds": self.max_seconds,
                "variants": self.variants, "calls": self.calls, "seconds": round(self.elapsed(), 3),
                "spent": self.spent() or ("calls" if self.calls_spent() else None)}


# -- per-operator counters -------------------------------------------------------------------------

@dataclass
class OperatorStats:
    proposed: int = 0  # children proposed
    kept: int = 0  # of those, kept by the target check (see `OperatorCounters.count_kept`)
    not_applicable: int = 0  # parents it could not change (wrong kind of record, nothing to swap)
    duplicate: int = 0  # children identical to a parent or an earlier child
    calls: int = 0  # model calls (LLM operators), cached or not
    cache_hits: int = 0
    dropped: Counter = field(default_factory=Counter)  # unusable answers, by reason (LLM operators)


class OperatorCounters:
    """Counts per operator, across rounds; `rows()` for a funnel table, `flat()` for stage counters."""

    FIELDS = ("proposed", "kept", "not_applicable", "duplicate", "calls", "cache_hits")

    def __init__(self) -> None:
        self.by_operator: dict[str, OperatorStats] = {}

    def __getitem__(self, operator: str) -> OperatorStats:
        return self.by_operator.setdefault(operator, OperatorStats())

    def count_kept(self, records: Iterable[Candidate], round: int | None = None) -> int:
        """Credit each kept refined record (of `round`, or any) to the operator that made it."""
        n = 0
        for record in records:
            if record.lineage is not None and (round is None or record.lineage.round == round):
                self[record.lineage.operator].kept += 1
                n += 1
        return n

    def rows(self) -> list[dict]:
        """One row per operator, sorted by name: the fields above and `dropped` as "reason=n, ..."."""
        registry = operator_registry()
        out = []
        for name in sorted(self.by_operator):
            stats = self.by_operator[name]
            op = registry.get(name)
            out.append({"operator": name, "kind": op.kind if op else "?",
                        "stimulus_type": op.stimulus_type if op else "?",
                        **{f: getattr(stats, f) for f in self.FIELDS},
                        "dropped": ", ".join(f"{k}={v}" for k, v in sorted(stats.dropped.items()))})
        return out

    def flat(self, prefix: str = "op") -> dict[str, int]:
        """Named counters ("op.er_swap_element.proposed": 3, ...), zeros left out."""
        out: dict[str, int] = {}
        for name in sorted(self.by_operator):
            stats = self.by_operator[name]
            for f in self.FIELDS:
                if getattr(stats, f):
                    out[f"{prefix}.{name}.{f}"] = getattr(stats, f)
            for reason, n in sorted(stats.dropped.items()):
                out[f"{prefix}.{name}.dropped.{reason}"] = n
        return out


# -- proposing -------------------------------------------------------------------------------------

def _stable(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def _operators_for(stimulus_type: str, names: Sequence[str], registry: dict[str, Operator]) -> list[str]:
    return [n for n in names if registry[n].stimulus_type in ("*", stimulus_type)]


def propose(parents: Sequence[Candidate | NearMiss], round: int, seed: int, operators: Sequence[str],
            budget: Budget, *, counters: OperatorCounters | None = None,
            recombiner: Recombiner | None = None, rewriter: Rewriter | None = None,
            per_parent: int = 2, seen_ids: Iterable[str] = (), min_refusals: int | None = None,
            config_hash: str | None = None, code_version: str | None = None,
            stage: str = "refine") -> list[Candidate]:
    """Children of `parents` (best first, as `select_near_misses` orders them) for refine `round`.

    Each parent gets up to `per_parent` operators of its stimulus type, taken from `operators` in an
    order rotated by (seed, round, parent id), so parents and rounds try different operators. A
    recombination that gives a child already seen (a parent, an earlier child, `seen_ids`) tries
    the operator's next choice, up to three; the LLM rewrite asks for all its parents in one batch.
    Stops when the budget's variants or seconds are spent; LLM requests stop at its calls. The
    children come in parent order, each parent's in operator order; deterministic for a fixed seed.
    """
    if round < 1:
        raise ValueError(f"refine rounds count from 1, got {round}")
    if per_parent < 1:
        raise ValueError("per_parent must be at least 1")
    registry = operator_registry()
    unknown = [n for n in operators if n not in registry]
    if unknown:
        raise ValueError(f"unknown refine operator(s) {unknown}; known: {sorted(registry)}")
    if REWRITE_OPERATOR in operators and rewriter is None:
        raise ValueError(f"operator {REWRITE_OPERATOR!r} needs a rewriter (an endpoint for [refine] rewriting)")
    if recombiner is None and any(registry[n].kind == "recombination" for n in operators):
        recombiner = Recombiner()
    counters = counters if counters is not None else OperatorCounters()
    records = [p.record if isinstance(p, NearMiss) else p for p in parents]
    seen = set(seen_ids) | {r.id for r in records}
    budget.start()

    # 1. Plan: per parent, its operators in rotated order (recombinations realised at once).
    plan: list[list[tuple[str, Candidate | None]]] = []  # per parent: (operator, child or None=LLM)
    llm_parents: list[int] = []
    for index, parent in enumerate(records):
        if budget.spent():
            break
        names = _operators_for(parent.stimulus_type, operators, registry) if parent.stimulus_type in STIMULUS_TYPES \
            else []
        if not names:
            plan.append([])
            continue
        turn = _stable("refine", seed, round, parent.id) % len(names)
        names = names[turn:] + names[:turn]
        recipe = recombiner.recipe_of(parent) if recombiner is not None else None
        chosen: list[tuple[str, Candidate | None]] = []
        for name in names:
            if len(chosen) >= per_parent:
                break
            if name == REWRITE_OPERATOR:
                chosen.append((name, None))
                llm_parents.append(index)
                continue
            if recipe is None:
                counters[name].not_applicable += 1
                continue
            pick = _stable(name, seed, round, parent.id)
            child = None
            for attempt in range(3):
                new = recombiner.apply(registry[name], recipe, pick + attempt)
                if new is None:
                    break
                candidate = make_child(parent, recombiner.realise(new), operator=name, kind="recombination",
                                       round=round, provenance=recombiner.provenance(new, config_hash, code_version),
                                       recipe=new)
                if candidate.id in seen:
                    counters[name].duplicate += 1
                    continue
                child = candidate
                break
            if child is None:
                if new is None:
                    counters[name].not_applicable += 1
                continue
            seen.add(child.id)
            chosen.append((name, child))
        plan.append(chosen)

    # 2. The LLM rewrites, one batch, as many requests as the calls budget allows.
    llm_children: dict[int, list[Candidate]] = {}
    if llm_parents and rewriter is not None:
        left = budget.calls_left()
        asked = llm_parents if left is None else llm_parents[:left]
        if asked and budget.spent() is None:
            outcomes = rewriter.rewrite([records[i] for i in asked], round=round, seed=seed,
                                        min_refusals=min_refusals, config_hash=config_hash,
                                        code_version=code_version, stage=stage)
            stats = counters[REWRITE_OPERATOR]
            budget.calls += len(asked)
            stats.calls += len(asked)
            for index, outcome in zip(asked, outcomes):
                stats.cache_hits += outcome.cached
                stats.dropped.update(outcome.dropped)
                fresh = []
                for child in outcome.children:
                    if child.id in seen:
                        stats.duplicate += 1
                    else:
                        seen.add(child.id)
                        fresh.append(child)
                llm_children[index] = fresh

    # 3. Assemble in parent order, operator order, within the variants budget.
    out: list[Candidate] = []
    for index, chosen in enumerate(plan):
        for name, child in chosen:
            for c in ([child] if child is not None else llm_children.get(index, [])):
                if budget.spent() == "variants":
                    return out
                out.append(c)
                budget.variants += 1
                counters[name].proposed += 1
    return out


__all__ = ["Budget", "KeepRule", "NearMiss", "OperatorCounters", "OperatorStats", "default_operators",
           "near_miss", "operator_registry", "propose", "select_near_misses", "make_child"]
