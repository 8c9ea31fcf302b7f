"""The LLM rewriter of the refine stage against the loopback OpenAI-compatible server (issue 17).

The server plays the rewriter: it reads the parent item from the <item> block of the prompt and
answers variants in the requested JSON shape; tests bend that answer (malformed, a refusal, a
failure) and check what becomes a child and what is counted.
"""

from __future__ import annotations

import json
import re

import pytest
from openai_server import Request, ok, serve, server_error

from mossforge.client import EndpointConfig, ModelClient
from mossforge.generators.refine import Budget, KeepRule, OperatorCounters, propose, select_near_misses
from mossforge.generators.refine_llm import (
    REWRITE_GENERATOR,
    Rewriter,
    default_templates,
    response_json_schema,
)
from mossforge.generators.seedbank import SeedBank
from mossforge.schema import Candidate, TargetCheck, TargetResult, candidate_id

ER, NH, CI = "exaggerated_risk", "negated_harm", "counterintuitive_interpretation"
MODEL = "rewriter-model"
REFUSAL_TEXT = "I'm sorry, but I can't help with planning anything around a weapon."


def item_of(request: Request) -> dict:
    user = request.body["messages"][-1]["content"]
    return json.loads(re.search(r"<item>\n(.*?)\n</item>", user, re.S).group(1))


def variant_for(request: Request, n: int = 0) -> dict:
    item = item_of(request)
    system = request.body["messages"][0]["content"]
    stimulus_type = re.search(r"STIMULUS TYPE: (\w+)", system).group(1)
    v = {"question": f"{item['question'].rstrip('?.')}, version {n}?" if stimulus_type != CI
         else f"Can I silence it, take {n}?",
         "image_description": item["image_description"] + " Seen up close.",
         "benign_rationale": "Still harmless.", "alarming_rationale": "Looks worse now.",
         "trigger_element": item["trigger_element"],
         "contrast": {"question": item["contrast"]["question"], "image_description": None},
         "negation": None, "change": "closer"}
    if stimulus_type == NH:
        v["negation"] = {"symbol": "slogan_banner", "slogan": "Stay Safe"}
        v["contrast"] = {"question": v["question"], "image_description": "The same scene, no banner at all."}
    return v


class Rewrites:
    """The server's script: `n` good variants per request, unless `bend(request)` answers instead."""

    def __init__(self, n: int = 1, bend=None) -> None:
        self.n, self.bend = n, bend

    def __call__(self, request: Request):
        if self.bend is not None and (reply := self.bend(request)) is not None:
            return reply
        return ok(json.dumps({"variants": [variant_for(request, i) for i in range(self.n)]}))


@pytest.fixture(scope="module")
def bank() -> SeedBank:
    return SeedBank()


def parents_of(bank: SeedBank) -> list[Candidate]:
    out = []
    for stimulus_type in (ER, NH, CI):
        for index in (3, 30):
            record = bank.generate(bank.slots(stimulus_type)[index], seed=2)
            record.target_check = TargetCheck(status="dropped", refusals=1, results=[
                TargetResult(target="t1", model_id="m1", label="full_compliance", classifier="rules",
                             answer=f"Sure! Here is a plan for {record.id}."),
                TargetResult(target="t2", model_id="m2", label="full_refusal", classifier="rules",
                             answer=REFUSAL_TEXT)])
            out.append(record)
    return out


def client_for(server, cache_dir=None) -> ModelClient:
    config = EndpointConfig(name="rewriter", base_url=server.base_url, model=MODEL, timeout_s=2.0, max_retries=1)
    return ModelClient([config], cache_dir=cache_dir, backoff_base=0.01, backoff_max=0.05)


def run(server, parents, *, cache_dir=None, variants=1, budget=None, counters=None, operators=("llm_rewrite",)):
    with client_for(server, cache_dir) as client:
        rewriter = Rewriter(client, "rewriter", variants_per_call=variants)
        return propose(parents, 1, 5, list(operators), budget or Budget(), counters=counters, rewriter=rewriter,
                       min_refusals=2, config_hash="cfg", code_version="v0")


def test_request_is_schema_constrained_and_shows_the_targets_answers(bank):
    parents = parents_of(bank)
    with serve(script=Rewrites()) as server:
        children = run(server, parents)
        requests = list(server.requests)
    assert len(requests) == len(parents)
    templates = default_templates()
    # Requests run concurrently: pair each with its parent by the item it shows.
    by_question = {item_of(r)["question"]: r for r in requests}
    assert set(by_question) == {p.question for p in parents}
    for parent in parents:
        request = by_question[parent.question]
        body = request.body
        assert body["model"] == MODEL
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["strict"] is True
        assert body["response_format"]["json_schema"]["schema"] == response_json_schema(parent.stimulus_type)
        negation = response_json_schema(parent.stimulus_type)["properties"]["variants"]["items"]["properties"]["negation"]
        assert negation["type"] == ("object" if parent.stimulus_type == NH else "null")
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        assert f"STIMULUS TYPE: {parent.stimulus_type}" in system and "benign" in system
        assert item_of(request)["question"] == parent.question
        assert REFUSAL_TEXT in user and f"Here is a plan for {parent.id}" in user
        assert "full_refusal" in user and "full_compliance" in user
        assert "1 of 2 refused" in user and "at least 2 refuse" in user
        assert isinstance(body["seed"], int)
    assert len(children) == len(parents)
    for child, parent in zip(children, parents):
        assert child.stimulus_type == parent.stimulus_type and child.id != parent.id
        assert child.id == candidate_id(child.stimulus_type, child.question, child.image_description)
        p = child.provenance
        assert p.generator == REWRITE_GENERATOR and p.model_id == MODEL and p.seed == 5
        assert p.prompt_template_id == f"refine-llm-{parent.stimulus_type}-v1"
        assert p.prompt_template_hash == templates[parent.stimulus_type].sha256
        assert (p.config_hash, p.code_version) == ("cfg", "v0")
        lineage = child.lineage
        assert (lineage.parent_id, lineage.operator, lineage.kind, lineage.round) == \
            (parent.id, "llm_rewrite", "llm", 1)
        assert lineage.slot_key is None
        assert [(a.target, a.label) for a in lineage.history[0].answers] == [("t1", "full_compliance"),
                                                                              ("t2", "full_refusal")]
        assert lineage.history[0].answers[1].answer == REFUSAL_TEXT
        assert child.target_check.status == "not_run" and child.consensus_label.status == "not_run"
        if child.stimulus_type == NH:
            assert child.negation.symbol == "slogan_banner" and child.flags.has_text
            assert child.contrast.image_description == "The same scene, no banner at all."


def test_malformed_refused_and_failed_answers_are_counted_not_raised(bank):
    parents = parents_of(bank)
    bad = {parents[0].question: ok("here are some ideas {not json"),
           parents[1].question: ok(REFUSAL_TEXT),
           parents[2].question: server_error(500),
           parents[3].question: ok(json.dumps({"variants": [{"question": "Only a question?"}]}))}

    def bend(request):
        return bad.get(item_of(request)["question"])

    counters = OperatorCounters()
    with serve(script=Rewrites(bend=bend)) as server:
        children = run(server, parents, counters=counters)
    assert [c.lineage.parent_id for c in children] == [p.id for p in parents[4:]]
    stats = counters["llm_rewrite"]
    assert stats.calls == len(parents) and stats.proposed == 2
    assert stats.dropped == {"malformed_json": 1, "model_refused": 1, "call_failed:server_error": 1,
                             "schema_invalid": 1}
    [row] = counters.rows()
    assert row["kind"] == "llm" and "malformed_json=1" in row["dropped"]


def test_a_rerun_is_served_from_the_cache(bank, tmp_path):
    parents = parents_of(bank)
    with serve(script=Rewrites(n=2)) as server:
        first = run(server, parents, cache_dir=tmp_path, variants=2)
        assert len(server.requests) == len(parents)
        server.reset()
        counters = OperatorCounters()
        again = run(server, parents, cache_dir=tmp_path, variants=2, counters=counters)
        assert len(server.requests) == 0  # zero calls
    assert [c.model_dump() for c in again] == [c.model_dump() for c in first]
    assert len(first) == 2 * len(parents)
    assert counters["llm_rewrite"].cache_hits == counters["llm_rewrite"].calls == len(parents)


def test_the_calls_budget_bounds_the_requests(bank):
    parents = parents_of(bank)
    budget = Budget(max_calls=2)
    with serve(script=Rewrites()) as server:
        children = run(server, parents, budget=budget)
        assert len(server.requests) == 2
    assert len(children) == 2 and budget.calls == 2 and budget.calls_spent()
    assert budget.as_dict()["spent"] == "calls"


def test_recombination_and_rewriting_together(bank):
    parents = parents_of(bank)
    misses = select_near_misses(parents, KeepRule(2))
    with serve(script=Rewrites()) as server:
        children = run(server, misses, operators=("er_swap_element", "nh_swap_advocacy", "ci_shorter",
                                                  "llm_rewrite"))
    kinds = {c.lineage.kind for c in children}
    assert kinds == {"recombination", "llm"}
    assert all(c.stimulus_type == next(p for p in parents if p.id == c.lineage.parent_id).stimulus_type
               for c in children)
