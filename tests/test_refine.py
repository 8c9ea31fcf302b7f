"""Refinement without a model: near-miss selection, the seed-bank recombination operators, the
budget, per-operator counters, determinism, and lineage in the record schema (issue 17)."""

from __future__ import annotations

import json

import pytest

from mossforge.generators.refine import (
    Budget,
    KeepRule,
    OperatorCounters,
    default_operators,
    near_miss,
    operator_registry,
    propose,
    select_near_misses,
)
from mossforge.generators.refine_ops import (
    OPERATORS,
    RECOMBINATION_GENERATOR,
    RECOMBINATION_TEMPLATE_ID,
    Recipe,
    Recombiner,
)
from mossforge.generators.seedbank import SeedBank
from mossforge.generators.seedbank import data_counterintuitive as ci
from mossforge.generators.seedbank import data_exaggerated as er
from mossforge.generators.seedbank import data_negated as nh
from mossforge.schema import (
    Candidate,
    TargetCheck,
    TargetResult,
    arrow_schema,
    candidate_id,
    dataset_features,
    from_table,
    to_table,
)

ER, NH, CI = "exaggerated_risk", "negated_harm", "counterintuitive_interpretation"


@pytest.fixture(scope="module")
def bank() -> SeedBank:
    return SeedBank()


@pytest.fixture(scope="module")
def rb(bank) -> Recombiner:
    return Recombiner(bank)


def answered(record: Candidate, *labels: str, answers: tuple[str, ...] = ()) -> Candidate:
    """`record` after a target check whose targets t1, t2, ... gave `labels`."""
    results = [TargetResult(target=f"t{i + 1}", model_id=f"model-{i + 1}", label=label, classifier="rules",
                            answer=(answers[i] if i < len(answers) else f"answer {i + 1} of {label}"))
               for i, label in enumerate(labels)]
    refused = sum(label in ("full_refusal", "partial_refusal") for label in labels)
    out = record.model_copy(deep=True)
    out.target_check = TargetCheck(status="dropped", results=results, refusals=refused)
    out.drop("target_check", "too few refusals")
    return out


def seedbank_parent(bank: SeedBank, stimulus_type: str, index: int, seed: int = 1) -> Candidate:
    record = bank.generate(bank.slots(stimulus_type)[index], seed=seed)
    return answered(record, "full_compliance", "partial_refusal", answers=("Sure, here you go.", "I can't fully help."))


# -- near-miss selection ---------------------------------------------------------------------------

def test_near_misses_come_first_in_a_fixed_order(candidate_factory):
    rule = KeepRule(min_refusals=2, count_partial=False)
    none = answered(candidate_factory("Plan a party here?"), "full_compliance", "full_compliance")
    some = answered(candidate_factory("Plan a picnic here?"), "full_refusal", "full_compliance")
    partial = answered(candidate_factory("Plan a lunch here?"), "full_compliance", "partial_refusal")
    both = answered(candidate_factory("Plan a dinner here?"), "full_refusal", "partial_refusal")
    kept = answered(candidate_factory("Plan a game here?"), "full_refusal", "full_refusal")
    failed = answered(candidate_factory("Plan a walk here?"), "error", "missing")
    records = [none, some, partial, kept, both, failed]
    misses = select_near_misses(records, rule)
    assert [m.record.id for m in misses] == [both.id, some.id, partial.id, none.id]
    assert [m.tier for m in misses] == ["partial", "some", "partial", "none"]
    assert [m.gap for m in misses] == [1, 1, 2, 2]
    assert select_near_misses(list(reversed(records)), rule) == misses  # input order does not matter
    assert [m.record.id for m in select_near_misses(records, rule, include_none=False, limit=2)] == [both.id, some.id]
    # A partial refusal that counts makes `both` a keeper and `partial` one refusal short.
    counting = select_near_misses(records, KeepRule(2, count_partial=True))
    assert both.id not in {m.record.id for m in counting}
    assert counting[0].record.id in (some.id, partial.id) and counting[0].gap == 1


def test_near_miss_counts_only_the_driving_targets(candidate_factory):
    record = answered(candidate_factory(), "full_refusal", "full_compliance", "full_compliance")
    assert near_miss(record, KeepRule(1)) is None  # kept: t1 refused
    held_out = near_miss(record, KeepRule(1), targets=["t2", "t3"])
    assert held_out is not None and held_out.refused == 0 and held_out.answered == 2
    assert near_miss(candidate_factory(), KeepRule(1)) is None  # never checked: no signal


# -- recombination operators -----------------------------------------------------------------------

def test_every_seedbank_candidate_has_a_recipe_and_others_have_none(bank, rb, candidate_factory):
    for stimulus_type in (ER, NH, CI):
        for index in (0, 101, 733):
            record = bank.generate(bank.slots(stimulus_type)[index], seed=4)
            recipe = rb.recipe_of(record)
            assert recipe == Recipe(bank.slots(stimulus_type)[index].key, 4)
            realised = rb.realise(recipe)
            assert candidate_id(stimulus_type, realised["question"], realised["image_description"]) == record.id
    assert rb.recipe_of(candidate_factory()) is None  # not written by the seed bank


def _library_ok(rb: Recombiner, child: Candidate) -> None:
    """The child is realised from a slot the seed bank itself realises (benign by its construction),
    with edits from the fixed set, and its text is exactly that realisation."""
    lineage = child.lineage
    assert lineage is not None and lineage.kind == "recombination"
    assert rb.has(lineage.slot_key)
    recipe = Recipe(lineage.slot_key, lineage.bank_seed, tuple(lineage.edits))
    fields = rb.realise(recipe)
    assert (fields["question"], fields["image_description"]) == (child.question, child.image_description)
    kind, *parts = lineage.slot_key.split(":")
    if kind == "er":
        scene, element, request = parts
        assert scene in next(e for e in er.ELEMENTS if e.key == element).scenes
        assert child.trigger_element == next(e for e in er.ELEMENTS if e.key == element).trigger
    elif kind == "nh":
        assert parts[0] in {s.key for s in nh.SUBJECTS} and child.negation is not None
        assert child.contrast.question == child.question  # same question, un-negated image
        assert child.contrast.image_description and child.contrast.image_description != child.image_description
    else:
        referent = next(r for r in ci.REFERENTS if r.key == parts[0])
        assert parts[1] in dict(referent.acts) and parts[2] in referent.places
    assert child.benign_rationale and child.alarming_rationale and child.contrast.question


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_each_recombination_operator(name, bank, rb):
    op = OPERATORS[name]
    made = 0
    for index in range(3, 400, 37):
        parent = seedbank_parent(bank, op.stimulus_type, index)
        [child] = propose([parent], round=1, seed=0, operators=[name], budget=Budget(), recombiner=rb) or [None]
        if child is None:
            continue  # the operator does not apply to this parent (e.g. no other verb for the referent)
        made += 1
        assert child.id != parent.id and child.id == candidate_id(child.stimulus_type, child.question,
                                                                  child.image_description)
        assert (child.question, child.image_description) != (parent.question, parent.image_description)
        assert child.stimulus_type == parent.stimulus_type == op.stimulus_type
        _library_ok(rb, child)
        # Fresh stages, no image yet, provenance of the recombination.
        assert child.status == "candidate" and child.drop_stage is None and child.image is None
        assert child.dedup.decision == "not_run" and child.target_check.status == "not_run"
        assert child.target_check.results == [] and child.consensus_label.status == "not_run"
        assert child.provenance.generator == RECOMBINATION_GENERATOR
        assert child.provenance.prompt_template_id == RECOMBINATION_TEMPLATE_ID
        assert child.provenance.prompt_template_hash == rb.template_hash
        # Lineage: parent, root, operator, round and what the targets answered the parent.
        lineage = child.lineage
        assert (lineage.parent_id, lineage.root_id, lineage.operator, lineage.round) == (parent.id, parent.id, name, 1)
        [step] = lineage.history
        assert step.id == parent.id and step.round == 0 and step.operator is None and step.refusals == 1
        assert [(a.target, a.label, a.answer) for a in step.answers] == [
            ("t1", "full_compliance", "Sure, here you go."), ("t2", "partial_refusal", "I can't fully help.")]
    assert made >= 3, f"{name} applied to only {made} parents"


def test_operators_do_what_they_say(bank, rb):
    def child_of(stimulus_type, index, name, seed=0):
        parent = seedbank_parent(bank, stimulus_type, index)
        return parent, propose([parent], 1, seed, [name], Budget(), recombiner=rb)[0]

    parent, child = child_of(ER, 5, "er_change_asker")
    assert child.question.endswith(parent.question) and child.question.startswith("I")
    parent, child = child_of(ER, 5, "er_salient_element")
    assert child.question == parent.question and child.image_description != parent.image_description
    parent, child = child_of(ER, 5, "er_swap_element")
    assert child.trigger_element != parent.trigger_element and child.scene_domain == parent.scene_domain
    parent, child = child_of(NH, 0, "nh_symbol_to_slogan")  # variant "sign"
    assert parent.negation.symbol == "prohibition_sign" and child.negation.symbol == "slogan_banner"
    assert child.negation.slogan and child.flags.has_text
    banner = next(i for i, slot in enumerate(bank.slots(NH)) if ":banner:" in slot.key)
    _, back = child_of(NH, banner, "nh_slogan_to_symbol")
    assert back.negation.symbol in ("prohibition_sign", "red_x") and back.negation.slogan is None
    parent, child = child_of(NH, 0, "nh_implicit_this")
    assert "this" in parent.question.lower() and child.question != parent.question
    parent, child = child_of(CI, 40, "ci_shorter")
    assert len(child.question.split()) < len(parent.question.split())
    parent, child = child_of(CI, 40, "ci_closeup")
    assert child.image_description.startswith("A close-up photo of") and child.question == parent.question
    assert child.trigger_element == parent.trigger_element  # the benign referent stays


def test_round_two_recombines_a_child_and_keeps_its_history(bank, rb):
    parent = seedbank_parent(bank, ER, 11)
    [child] = propose([parent], 1, 0, ["er_change_asker"], Budget(), recombiner=rb)
    child = answered(child, "full_refusal", "full_compliance")
    [grandchild] = propose([child], 2, 0, ["er_salient_element"], Budget(), recombiner=rb)
    lineage = grandchild.lineage
    assert (lineage.parent_id, lineage.root_id, lineage.round, lineage.operator) == (child.id, parent.id, 2,
                                                                                     "er_salient_element")
    assert [s.id for s in lineage.history] == [parent.id, child.id]
    assert [s.round for s in lineage.history] == [0, 1] and lineage.history[1].operator == "er_change_asker"
    assert [a.label for a in lineage.history[1].answers] == ["full_refusal", "full_compliance"]
    # The asker survives: edits accumulate over rounds.
    assert grandchild.question == child.question and len(lineage.edits) == 2
    _library_ok(rb, grandchild)


# -- propose: determinism, budget, counters --------------------------------------------------------

def _parents(bank) -> list[Candidate]:
    return [seedbank_parent(bank, t, i) for t in (ER, NH, CI) for i in (7, 77, 177, 277)]


def test_propose_is_deterministic_and_varies_with_the_seed(bank, rb):
    parents = _parents(bank)
    misses = select_near_misses(parents, KeepRule(2))
    first = propose(misses, 1, 0, default_operators(), Budget(), recombiner=rb)
    again = propose(misses, 1, 0, default_operators(), Budget(), recombiner=Recombiner(bank))
    assert [c.model_dump() for c in first] == [c.model_dump() for c in again]
    assert len(first) == 2 * len(parents)  # per_parent=2, every parent a seed-bank record
    assert len({c.id for c in first}) == len(first) and not {c.id for c in first} & {p.id for p in parents}
    other = propose(misses, 1, 1, default_operators(), Budget(), recombiner=rb)
    assert [c.id for c in other] != [c.id for c in first]
    # Parents try different operators (the order is rotated per parent).
    assert len({c.lineage.operator for c in first}) >= 8


def test_budget_stops_the_proposal_and_the_counters_add_up(bank, rb):
    parents = _parents(bank)
    counters = OperatorCounters()
    budget = Budget(max_variants=5)
    children = propose(parents, 1, 0, default_operators(), budget, counters=counters, recombiner=rb)
    assert len(children) == 5 and budget.spent() == "variants" and budget.variants_left() == 0
    assert children == propose(parents, 1, 0, default_operators(), Budget(), recombiner=rb)[:5]
    rows = counters.rows()
    assert sum(r["proposed"] for r in rows) == 5
    assert propose(parents, 1, 0, default_operators(), budget, recombiner=rb) == []  # already spent

    clock = iter([0.0, 0.0, 100.0, 100.0, 100.0, 100.0])
    timed = Budget(max_seconds=10, clock=lambda: next(clock, 100.0))
    assert len(propose(parents, 1, 0, default_operators(), timed, recombiner=rb)) == 2  # one parent
    assert timed.spent() == "seconds" and timed.as_dict()["spent"] == "seconds"
    with pytest.raises(ValueError, match="max_calls"):
        Budget(max_calls=-1)

    # "kept" is credited to the operator that made each kept child.
    kept = children[:2]
    assert counters.count_kept(kept, round=1) == 2 and counters.count_kept(kept, round=2) == 0
    flat = counters.flat()
    assert sum(v for k, v in flat.items() if k.endswith(".kept")) == 2
    assert all(k.startswith("op.") for k in flat)
    assert json.dumps(rows)  # plain values a funnel row can show


def test_operators_that_do_not_apply_are_counted_not_raised(candidate_factory, rb):
    counters = OperatorCounters()
    llm_written = answered(candidate_factory(), "full_compliance")
    assert propose([llm_written], 1, 0, default_operators(), Budget(), counters=counters, recombiner=rb) == []
    assert sum(r["not_applicable"] for r in counters.rows()) >= 1
    with pytest.raises(ValueError, match="unknown refine operator.*'nope'"):
        propose([llm_written], 1, 0, ["nope"], Budget())
    with pytest.raises(ValueError, match="needs a rewriter"):
        propose([llm_written], 1, 0, ["llm_rewrite"], Budget())
    assert set(operator_registry()) == set(OPERATORS) | {"llm_rewrite"}


# -- lineage in the schema -------------------------------------------------------------------------

def test_records_without_lineage_serialise_as_before(candidate_factory):
    record = candidate_factory()
    assert "lineage" not in record.model_dump() and "lineage" not in record.model_dump(mode="json")
    assert "lineage" not in json.loads(record.model_dump_json())
    assert "lineage" not in arrow_schema().names and "lineage" not in to_table([record]).schema.names
    assert to_table([record]).schema == arrow_schema()
    assert "lineage" not in dataset_features()


def test_lineage_round_trips_through_arrow(bank, rb, candidate_factory):
    parent = seedbank_parent(bank, NH, 9)
    children = propose([parent], 1, 0, default_operators(), Budget(), recombiner=rb)
    mixed = [candidate_factory(), *children]
    table = to_table(mixed)
    assert table.schema == arrow_schema(lineage=True)
    back = from_table(table)
    assert back == mixed and back[0].lineage is None and back[1].lineage == children[0].lineage
    assert "lineage" in dataset_features(lineage=True)
    assert children[0].model_dump(mode="json")["lineage"]["parent_id"] == parent.id
