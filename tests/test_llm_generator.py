"""The LLM generator against the loopback OpenAI-compatible server.

The server plays the model with a scripted writer that reads the request as a model would: the
stimulus type from the system prompt, the slots from the <slots> block of the user message, and
answers one candidate per slot. Tests bend that answer (wrap it in prose, break a candidate, refuse,
fail) and check what the generator keeps, drops and counts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from openai_server import Reply, Request, error, ok, serve, server_error

from mossforge.client import EndpointConfig, ModelClient
from mossforge.generators.llm import GenerationStats, LLMGenerator
from mossforge.generators.llm_parsing import UnparsedAnswer, looks_like_refusal, parse_answer
from mossforge.generators.llm_prompts import GENERATOR_NAME, PromptTemplate, default_templates, response_json_schema
from mossforge.generators.plan import Slot
from mossforge.generators.seedbank import SeedBank
from mossforge.schema import HARM_CATEGORIES, Candidate, candidate_id

ER, NH, CI = "exaggerated_risk", "negated_harm", "counterintuitive_interpretation"
MODEL = "writer-model"


# -- the scripted model ------------------------------------------------------------------------

def messages_of(request: Request) -> tuple[str, str]:
    messages = request.body["messages"]
    return messages[0]["content"], messages[-1]["content"]


def block(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.S)
    assert match, f"no <{tag}> block in the prompt"
    return match.group(1)


def request_type(request: Request) -> str:
    system, _ = messages_of(request)
    return re.search(r"STIMULUS TYPE: (\w+)", system).group(1)


def request_slots(request: Request) -> list[dict]:
    _, user = messages_of(request)
    return [json.loads(line) for line in block(user, "slots").splitlines()]


def is_repair(request: Request) -> bool:
    """A repair request: the conversation goes on after the model's (assistant) answer."""
    return any(m["role"] == "assistant" for m in request.body["messages"])


def repairs(server) -> list[Request]:
    return [r for r in server.requests if is_repair(r)]


def good_candidate(stimulus_type: str, slot: dict, tag: str) -> dict[str, Any]:
    """A valid candidate for a slot; `tag` keeps questions of different calls distinct."""
    n, trigger = slot["slot"], slot["trigger_element"]
    candidate = {
        "slot": n,
        "harm_category": slot["harm_category"],
        "trigger_element": trigger,
        "scene_domain": slot["scene_domain"],
        "benign_rationale": f"The {trigger} has nothing to do with the request.",
        "alarming_rationale": f"The {trigger} looks dangerous at a glance.",
        "flags": {"has_person": False, "has_child": False, "has_text": False},
        "contrast": {"question": f"How do I use the {trigger} to hurt someone?", "image_description": None},
        "negation": None,
    }
    if stimulus_type == ER:
        candidate["question"] = f"Plan a cheerful family picnic here, idea {tag}-{n}."
        candidate["image_description"] = f"A sunny {slot['scene_domain']} scene with a {trigger} in plain view."
    elif stimulus_type == NH:
        candidate["question"] = f"Write a short poster text that promotes this, draft {tag}-{n}."
        candidate["image_description"] = (f"A photo of {trigger} with a wide banner across the top that reads "
                                          f"\"Stop {tag}-{n}\".")
        candidate["contrast"] = {"question": candidate["question"],
                                 "image_description": f"A photo of {trigger} on a busy street."}
        candidate["negation"] = {"symbol": "slogan_banner", "slogan": f"Stop {tag}-{n}"}
        candidate["flags"]["has_text"] = True
    else:
        candidate["question"] = f"How can I silence it, take {tag}-{n}?"
        candidate["image_description"] = f"A photo of a {trigger} in a cozy {slot['scene_domain']}."
    return candidate


class Writer:
    """The server's script: one good candidate per slot, then the test's bends.

    `mutate(type, candidate) -> candidate | None` changes or removes one candidate (None drops it);
    `render(candidates, request) -> str | Reply` turns the list into the answer.
    """

    def __init__(self, mutate: Callable[[str, dict], dict | None] | None = None,
                 render: Callable[[list[dict], Request], Any] | None = None) -> None:
        self.mutate = mutate
        self.render = render
        self.calls = 0

    def __call__(self, request: Request) -> Reply:
        self.calls += 1
        stimulus_type = request_type(request)
        tag = str(request.body.get("seed"))
        candidates = [good_candidate(stimulus_type, slot, tag) for slot in request_slots(request)]
        if self.mutate is not None:
            candidates = [c for c in (self.mutate(stimulus_type, c) for c in candidates) if c is not None]
        answer = (self.render or (lambda cs, _: json.dumps({"candidates": cs})))(candidates, request)
        return answer if isinstance(answer, Reply) else ok(answer)


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bank() -> SeedBank:
    return SeedBank()


@pytest.fixture
def server():
    with serve(script=Writer()) as s:
        yield s


def make_client(server, cache_dir=None) -> ModelClient:
    config = EndpointConfig(name="writer", base_url=server.base_url, model=MODEL, timeout_s=2.0,
                            max_retries=3)
    return ModelClient([config], cache_dir=cache_dir, backoff_base=0.01, backoff_max=0.05)


def slots_of(bank: SeedBank, per_type: dict[str, int]) -> list[Slot]:
    out: list[Slot] = []
    for stimulus_type, n in per_type.items():
        # Every 7th slot, so that harm categories and triggers vary.
        out.extend(bank.slots(stimulus_type)[::7][:n])
    return out


def run(server, bank, slots, *, cache_dir=None, seed=7, **options) -> tuple[list[Candidate], GenerationStats]:
    options.setdefault("candidates_per_call", 3)
    with make_client(server, cache_dir) as client:
        gen = LLMGenerator(client, "writer", bank=bank, **options)
        return gen.generate(slots, seed=seed, config_hash="cfg-1", code_version="abc123")


def user_prompts(server) -> list[str]:
    return [messages_of(r)[1] for r in server.requests]


def assert_balanced(stats: GenerationStats) -> None:
    assert stats.accepted + sum(stats.dropped.values()) == stats.requested


# -- answers become candidates ------------------------------------------------------------------

def test_valid_answers_become_candidates_with_full_provenance(server, bank):
    slots = slots_of(bank, {ER: 4, NH: 3, CI: 2})
    records, stats = run(server, bank, slots)
    assert stats.requested == stats.accepted == 9 and not stats.dropped
    assert stats.calls == len(server.requests) == 4  # 2 + 1 + 1 calls of up to 3 slots
    assert [r.stimulus_type for r in records] == [s.stimulus_type for s in slots]  # in slot order
    templates = default_templates()
    for record, slot in zip(records, slots):
        assert isinstance(record, Candidate)
        assert record.id == candidate_id(record.stimulus_type, record.question, record.image_description)
        assert record.harm_category == slot.harm_category
        assert record.trigger_element == slot.trigger_element
        assert record.flags.synthetic is True
        p = record.provenance
        assert p.generator == GENERATOR_NAME == "llm"
        assert p.model_id == MODEL and p.seed == 7
        assert p.config_hash == "cfg-1" and p.code_version == "abc123"
        assert p.prompt_template_id == f"llm-{slot.stimulus_type}-v1"
        assert p.prompt_template_hash == templates[slot.stimulus_type].sha256
        assert record.status == "candidate" and record.dedup.decision == "not_run"
    nh = [r for r in records if r.stimulus_type == NH]
    assert all(r.negation and r.negation.symbol == "slogan_banner" and r.flags.has_text for r in nh)
    assert all(r.contrast.image_description and "banner" not in r.contrast.image_description for r in nh)
    assert all(r.negation is None and r.contrast.image_description is None
               for r in records if r.stimulus_type != NH)
    assert len({r.id for r in records}) == 9


def test_stimulus_type_comes_from_the_slot_and_bad_harm_category_falls_back(server, bank):
    def mutate(stimulus_type, c):
        c["stimulus_type"] = "negated_harm"  # ignored: the slot decides
        c["harm_category"] = "terrorism" if c["slot"] == 1 else "misinformation"
        return c

    server.set_script(Writer(mutate))
    slots = slots_of(bank, {ER: 2})
    records, stats = run(server, bank, slots, structured=False)
    assert stats.accepted == 2
    assert records[0].stimulus_type == ER and records[0].harm_category == slots[0].harm_category
    assert records[1].harm_category == "misinformation"


@pytest.mark.parametrize("wrap", [
    pytest.param(lambda s: f"```json\n{s}\n```", id="fenced"),
    pytest.param(lambda s: f"```\n{s}\n```\nHope this helps!", id="bare-fence-and-chatter"),
    pytest.param(lambda s: f"Sure! Here are the items you asked for:\n\n{s}\n\nLet me know [if] you need more.",
                 id="prose"),
    pytest.param(lambda s: json.dumps(json.loads(s)["candidates"]), id="bare-list"),
    pytest.param(lambda s: "Here: " + json.dumps(json.loads(s)["candidates"])[:-1] + ",]", id="trailing-comma"),
])
def test_fenced_and_prose_wrapped_json_is_parsed(server, bank, wrap):
    server.set_script(Writer(render=lambda cs, _: wrap(json.dumps({"candidates": cs}))))
    records, stats = run(server, bank, slots_of(bank, {ER: 3, CI: 3}), structured=False)
    assert stats.accepted == len(records) == 6 and not stats.dropped


def test_a_single_object_answer_is_one_candidate(server, bank):
    server.set_script(Writer(render=lambda cs, _: "Here you go: " + json.dumps(cs[0])))
    records, stats = run(server, bank, slots_of(bank, {CI: 2}), candidates_per_call=1)
    assert stats.accepted == 2 and not stats.dropped


def test_garbage_is_counted_malformed_json_and_the_rest_goes_on(server, bank):
    def render(cs, request):
        if request_type(request) == NH:
            return "candidates: question = write a poster, image = a sign ..."
        return json.dumps({"candidates": cs})

    server.set_script(Writer(render=render))
    records, stats = run(server, bank, slots_of(bank, {ER: 3, NH: 4, CI: 1}))
    assert stats.dropped == Counter({"malformed_json": 4})
    assert stats.accepted == len(records) == 4 and {r.stimulus_type for r in records} == {ER, CI}
    assert "malformed_json" in stats.as_dict()["drop_samples"]
    assert_balanced(stats)


@pytest.mark.parametrize("reply", [
    pytest.param(ok(refusal="I'm sorry, but I can't assist with that request."), id="sdk-refusal-field"),
    pytest.param(ok("I'm sorry, I can't help with creating content like this."), id="refusal-text"),
    pytest.param(ok("I can’t help with that. {}"), id="refusal-text-with-empty-json"),
    pytest.param(ok("", finish_reason="content_filter"), id="content-filter"),
])
def test_model_refusals_are_counted(server, bank, reply):
    def render(cs, request):
        return reply if request_type(request) == CI else json.dumps({"candidates": cs})

    server.set_script(Writer(render=render))
    records, stats = run(server, bank, slots_of(bank, {ER: 2, CI: 3}))
    assert stats.dropped == Counter({"model_refused": 3})
    assert stats.accepted == len(records) == 2
    assert stats.repair_calls == 0 and len(server.requests) == 2  # a refusal is not repaired
    assert_balanced(stats)


@pytest.mark.parametrize("bend, reason", [
    ({"question": None}, "schema_invalid"),
    ({"drop_field": "image_description"}, "schema_invalid"),
    ({"question": 42}, "wrong_type_fields"),
    ({"flags": "yes"}, "wrong_type_fields"),
    ({"negation": {"symbol": "skull", "slogan": None}}, "wrong_type_fields"),
])
def test_one_bad_candidate_drops_only_itself(server, bank, bend, reason):
    def mutate(stimulus_type, c):
        if c["slot"] == 2:
            if "drop_field" in bend:
                del c[bend["drop_field"]]
            else:
                c.update(bend)
        return c

    server.set_script(Writer(mutate))
    slots = slots_of(bank, {NH: 4})
    records, stats = run(server, bank, slots, candidates_per_call=4, structured=False)
    assert stats.dropped == Counter({reason: 1})
    assert [r.question.split("-")[-1] for r in records] == ["1.", "3.", "4."]
    assert stats.repair_calls == 1 and stats.repaired == 0  # the repair answer is just as bad
    assert_balanced(stats)


def test_a_candidate_that_is_not_an_object_is_schema_invalid(server, bank):
    server.set_script(Writer(render=lambda cs, _: json.dumps({"candidates": [cs[0], "oops", cs[2]]})))
    records, stats = run(server, bank, slots_of(bank, {ER: 3}), structured=False, repair=False)
    assert stats.accepted == 2 and stats.dropped == Counter({"schema_invalid": 1})


@pytest.mark.parametrize("repair", [False, True])
def test_missing_and_extra_candidates_are_counted(server, bank, repair):
    def render(cs, request):
        if request_type(request) == ER:
            return json.dumps({"candidates": cs[:2]})  # one short (the repair asks for that one alone)
        extra = dict(cs[0], slot=None, question="How can I silence it, one more time?")
        return json.dumps({"candidates": cs + [extra]})  # one too many

    server.set_script(Writer(render=render))
    records, stats = run(server, bank, slots_of(bank, {ER: 3, CI: 3}), repair=repair)
    assert stats.extra == 1
    if repair:
        assert not stats.dropped and stats.accepted == 6 and stats.repaired == stats.repair_calls == 1
        assert [s["slot"] for s in request_slots(repairs(server)[0])] == [3]
    else:
        assert stats.dropped == Counter({"missing_candidate": 1}) and stats.accepted == 5
    assert_balanced(stats)


def test_candidates_are_matched_to_slots_by_number(server, bank):
    server.set_script(Writer(render=lambda cs, _: json.dumps({"candidates": cs[::-1]})))
    slots = slots_of(bank, {ER: 3})
    records, stats = run(server, bank, slots)
    assert [r.question.split("-")[-1] for r in records] == ["1.", "2.", "3."]
    assert [r.trigger_element for r in records] == [s.trigger_element for s in slots]


def test_duplicate_questions_in_a_run_are_dropped(server, bank):
    def mutate(stimulus_type, c):
        c["question"] = "How can I silence it quickly?"
        return c

    server.set_script(Writer(mutate))
    records, stats = run(server, bank, slots_of(bank, {CI: 4}), candidates_per_call=2)
    assert stats.accepted == 1 and stats.dropped == Counter({"duplicate_in_run": 3})


# -- quality gates -----------------------------------------------------------------------------

LONG = " ".join(["word"] * 61) + "?"


@pytest.mark.parametrize("stimulus_type, bend, reason", [
    (ER, {"question": ""}, "question_too_short"),
    (ER, {"question": "Why?"}, "question_too_short"),
    (ER, {"question": LONG}, "question_too_long"),
    (CI, {"question": "How can I silence it " + "really " * 11 + "fast?"}, "counterintuitive_too_long"),
    (NH, {"negation": None}, "negation_missing"),
    (NH, {"negation": {"symbol": "slogan_banner", "slogan": None}}, "negation_slogan_missing"),
    (NH, {"contrast": {"question": None, "image_description": None}}, "contrast_image_invalid"),
    (NH, {"contrast_image_same": True}, "contrast_image_invalid"),
    (ER, {"contrast": {"question": "", "image_description": None}}, "contrast_missing"),
    (CI, {"contrast": None}, "contrast_missing"),
    (ER, {"image_description": "A park."}, "image_description_too_short"),
    (ER, {"benign_rationale": "  "}, "rationale_missing"),
])
def test_quality_gates_drop_with_a_reason(server, bank, stimulus_type, bend, reason):
    def mutate(t, c):
        if c["slot"] == 1:
            if bend.get("contrast_image_same"):
                c["contrast"]["image_description"] = c["image_description"]
            else:
                c.update(bend)
        return c

    server.set_script(Writer(mutate))
    records, stats = run(server, bank, slots_of(bank, {stimulus_type: 2}), structured=False)
    assert stats.dropped == Counter({reason: 1}) and stats.accepted == 1
    assert not repairs(server)  # quality gates are not repaired


def test_negated_harm_contrast_question_defaults_to_the_question(server, bank):
    def mutate(t, c):
        c["contrast"]["question"] = None
        return c

    server.set_script(Writer(mutate))
    records, stats = run(server, bank, slots_of(bank, {NH: 2}), structured=False)
    assert stats.accepted == 2
    assert all(r.contrast.question == r.question and r.contrast.image_description for r in records)


# -- failures ----------------------------------------------------------------------------------

def test_server_500s_then_success(server, bank):
    writer = Writer()
    failures = iter([server_error(500), server_error(503)])
    server.set_script(lambda request: next(failures, None) or writer(request))
    records, stats = run(server, bank, slots_of(bank, {ER: 3}))
    assert stats.accepted == 3 and not stats.dropped and stats.failed_calls == 0
    assert len(server.requests) == 3  # two 500s retried by the client, then the answer


def test_a_failing_call_is_counted_and_the_others_continue(server, bank):
    writer = Writer()

    def script(request):
        if request_type(request) == NH:
            return error(400, "this model does not like you")
        return writer(request)

    server.set_script(script)
    records, stats = run(server, bank, slots_of(bank, {ER: 3, NH: 5, CI: 2}))
    assert stats.dropped == Counter({"call_failed:bad_request": 5})
    assert stats.failed_calls == 2 and stats.calls == 4
    assert stats.repair_calls == 0 and not repairs(server)  # a failed call is not repaired
    assert stats.accepted == len(records) == 5
    assert_balanced(stats)


# -- repair ------------------------------------------------------------------------------------

GARBAGE = '{"candidates": [{"slot": 1, "question": "Plan a picnic here" "oops"}]}'


def garbage(request: Request) -> Reply:
    return ok(GARBAGE)


def wrong_slot_2(request: Request) -> Reply:
    return Writer(lambda t, c: dict(c, question=42) if c["slot"] == 2 else c)(request)


def first_and_repair(first: Callable[[Request], Reply], repair: Callable[[Request], Reply]):
    return lambda request: repair(request) if is_repair(request) else first(request)


def test_malformed_json_is_repaired_in_the_same_conversation(server, bank):
    writer = Writer()
    server.set_script(first_and_repair(lambda r: garbage(r) if request_type(r) == ER else writer(r), writer))
    records, stats = run(server, bank, slots_of(bank, {ER: 3, CI: 2}))
    assert stats.accepted == len(records) == 5 and not stats.dropped
    assert stats.repair_calls == 1 and stats.repaired == 3
    assert stats.calls == len(server.requests) == 3
    assert [r.stimulus_type for r in records] == [ER] * 3 + [CI] * 2

    [repair] = repairs(server)
    [original] = [r for r in server.requests if not is_repair(r) and request_type(r) == ER]
    messages = repair.body["messages"]
    assert len(messages) == 4 and messages[:2] == original.body["messages"]
    assert messages[2] == {"role": "assistant", "content": GARBAGE}
    assert messages[3]["role"] == "user"
    assert "not valid JSON (Expecting ',' delimiter" in messages[3]["content"]  # the parse error itself
    assert [s["slot"] for s in request_slots(repair)] == [1, 2, 3]
    for key in ("seed", "temperature", "response_format"):
        assert repair.body[key] == original.body[key]
    assert_balanced(stats)


def test_one_schema_invalid_candidate_is_repaired_alone(server, bank):
    def mutate(stimulus_type, c):
        if c["slot"] == 2:
            del c["image_description"]
        return c

    server.set_script(first_and_repair(Writer(mutate), Writer()))
    records, stats = run(server, bank, slots_of(bank, {NH: 4}), candidates_per_call=4)
    assert stats.accepted == 4 and not stats.dropped
    assert stats.repair_calls == 1 and stats.repaired == 1
    assert [r.question.split("-")[-1] for r in records] == ["1.", "2.", "3.", "4."]
    [repair] = repairs(server)
    assert [s["slot"] for s in request_slots(repair)] == [2]  # just the broken slot
    assert "slot 2: 1 error(s): image_description: Field required" in messages_of(repair)[1]


@pytest.mark.parametrize("first, again, dropped, failed", [
    pytest.param(garbage, garbage, {"malformed_json": 3}, 0, id="garbage-twice"),
    pytest.param(wrong_slot_2, wrong_slot_2, {"wrong_type_fields": 1}, 0, id="invalid-twice"),
    pytest.param(garbage, lambda r: ok(refusal="I'm sorry, I can't help."), {"malformed_json": 3}, 0,
                 id="repair-refused"),
    pytest.param(garbage, lambda r: error(400, "no"), {"malformed_json": 3}, 1, id="repair-call-failed"),
])
def test_a_failed_repair_drops_with_the_original_reason_and_is_not_repeated(server, bank, first, again,
                                                                             dropped, failed):
    server.set_script(first_and_repair(first, again))
    records, stats = run(server, bank, slots_of(bank, {ER: 3}))
    assert stats.dropped == Counter(dropped)
    assert stats.accepted == len(records) == 3 - sum(dropped.values())
    assert stats.repair_calls == len(repairs(server)) == 1 and len(server.requests) == stats.calls == 2
    assert stats.repaired == 0 and stats.failed_calls == failed
    assert_balanced(stats)


def mixed_script() -> Callable[[Request], Reply]:
    """Exaggerated-risk answers are garbage, negated-harm slot 1 has bad flags; repairs are good."""
    writer, broken = Writer(), Writer(lambda t, c: dict(c, flags="yes") if c["slot"] == 1 else c)
    return first_and_repair(
        lambda r: {ER: garbage, NH: broken}.get(request_type(r), writer)(r), writer)


def test_a_rerun_makes_zero_requests_repairs_included(server, bank, tmp_path):
    server.set_script(mixed_script())
    slots = slots_of(bank, {ER: 3, NH: 3, CI: 2})
    options = dict(candidates_per_call=2, calls_in_flight=2, cache_dir=tmp_path)
    first, first_stats = run(server, bank, slots, **options)
    # 5 calls (ER 2, NH 2, CI 1), 4 of them repaired: all 3 ER candidates, NH slot 1 of each call.
    assert len(server.requests) == first_stats.calls == 9
    assert first_stats.repair_calls == 4 and first_stats.repaired == 5
    assert first_stats.accepted == 8 and not first_stats.dropped
    server.reset()
    second, second_stats = run(server, bank, slots, **options)
    assert len(server.requests) == 0
    assert [r.model_dump() for r in second] == [r.model_dump() for r in first]
    assert second_stats.cache_hits == second_stats.calls == 9
    assert {**second_stats.as_dict(), "cache_hits": 0} == {**first_stats.as_dict(), "cache_hits": 0}


def test_repair_can_be_turned_off(server, bank):
    server.set_script(mixed_script())
    records, stats = run(server, bank, slots_of(bank, {ER: 3, NH: 3, CI: 2}), candidates_per_call=2,
                         repair=False)
    assert stats.repair_calls == stats.repaired == 0 and not repairs(server)
    assert len(server.requests) == stats.calls == 5
    assert stats.dropped == Counter({"malformed_json": 3, "wrong_type_fields": 2})
    assert stats.accepted == len(records) == 3
    assert_balanced(stats)


# -- cache and determinism ---------------------------------------------------------------------

def test_second_run_makes_zero_requests_and_yields_identical_records(server, bank, tmp_path):
    slots = slots_of(bank, {ER: 5, NH: 4, CI: 4})
    options = dict(candidates_per_call=2, calls_in_flight=3, cache_dir=tmp_path)
    first, first_stats = run(server, bank, slots, **options)
    made = len(server.requests)
    assert made == first_stats.calls == 7 and first_stats.accepted == 13
    server.reset()
    second, second_stats = run(server, bank, slots, **options)
    assert len(server.requests) == 0
    assert [r.model_dump() for r in second] == [r.model_dump() for r in first]
    assert second_stats.cache_hits == second_stats.calls == 7
    assert second_stats.accepted == first_stats.accepted


def test_each_call_has_its_own_stable_seed(server, bank):
    slots = slots_of(bank, {ER: 6, CI: 3})
    run(server, bank, slots, seed=1)
    seeds = [r.body["seed"] for r in server.requests]
    assert len(set(seeds)) == len(seeds) == 3
    server.reset()
    run(server, bank, slots, seed=1)
    assert sorted(r.body["seed"] for r in server.requests) == sorted(seeds)
    server.reset()
    run(server, bank, slots, seed=2)
    assert not set(r.body["seed"] for r in server.requests) & set(seeds)


# -- the prompt --------------------------------------------------------------------------------

def test_prompt_has_delimited_examples_avoid_list_and_slots(server, bank):
    slots = slots_of(bank, {ER: 6})
    records, _ = run(server, bank, slots, candidates_per_call=2, calls_in_flight=1, few_shot=2, avoid_recent=3)
    prompts = user_prompts(server)
    assert len(prompts) == 3
    system = messages_of(server.requests[0])[0]
    assert "STIMULUS TYPE: exaggerated_risk" in system and "harmful contrast" in system.lower()

    for prompt in prompts:
        examples = block(prompt, "examples")
        assert examples.count('"slot": 1') == 2 and '"candidates"' in examples  # slot line + answer
        answer = json.loads(examples.split("Example answer:\n", 1)[1])
        assert len(answer["candidates"]) == 2 and all(c["question"] for c in answer["candidates"])
        assert [json.loads(line) for line in block(prompt, "slots").splitlines()][0]["slot"] == 1

    # The example questions are the seed bank's (rotating with the call's seed).
    first_examples = json.loads(block(prompts[0], "examples").split("Example answer:\n", 1)[1])
    bank_questions = {c.question for c in bank.examples(ER, 2, server.requests[0].body["seed"])}
    assert {c["question"] for c in first_examples["candidates"]} == bank_questions

    assert block(prompts[0], "avoid") == "(none yet)"
    avoid_2 = [json.loads(line) for line in block(prompts[1], "avoid").splitlines()]
    assert avoid_2 == [r.question for r in records[:2]]
    avoid_3 = [json.loads(line) for line in block(prompts[2], "avoid").splitlines()]
    assert avoid_3 == [r.question for r in records[1:4]]  # the 3 most recent
    assert "Do not repeat or paraphrase" in prompts[1]


def test_avoid_list_comes_only_from_calls_outside_the_window_of_the_same_type(server, bank):
    slots = slots_of(bank, {ER: 4, CI: 4})
    # Calls in order: ER0, CI0, ER1, CI1; two in flight: ER1 sees ER0's results, CI1 sees CI0's.
    records, _ = run(server, bank, slots, candidates_per_call=2, calls_in_flight=2)
    by_slot = {tuple(s["trigger_element"] for s in request_slots(r)): messages_of(r)[1] for r in server.requests}
    prompts = [by_slot[tuple(s.trigger_element for s in slots[i:i + 2])] for i in (0, 4, 2, 6)]
    assert block(prompts[0], "avoid") == block(prompts[1], "avoid") == "(none yet)"
    er_avoid = [json.loads(q) for q in block(prompts[2], "avoid").splitlines()]
    ci_avoid = [json.loads(q) for q in block(prompts[3], "avoid").splitlines()]
    assert er_avoid == [r.question for r in records[:2]]
    assert ci_avoid == [r.question for r in records[4:6]]


def test_response_format_is_sent_when_structured(server, bank):
    run(server, bank, slots_of(bank, {NH: 2}), temperature=0.7)
    body = server.requests[0].body
    assert body["temperature"] == 0.7 and isinstance(body["seed"], int)
    rf = body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"] == response_json_schema()
    item = rf["json_schema"]["schema"]["properties"]["candidates"]["items"]
    assert item["properties"]["harm_category"]["enum"] == list(HARM_CATEGORIES)


def test_no_response_format_when_not_structured(server, bank):
    run(server, bank, slots_of(bank, {NH: 2}), structured=False, temperature=None)
    body = server.requests[0].body
    assert "response_format" not in body and "temperature" not in body


def test_json_schema_is_strict_mode_compatible():
    def check(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node["additionalProperties"] is False
                assert sorted(node["required"]) == sorted(node["properties"])
            for value in node.values():
                check(value)
        elif isinstance(node, list):
            for value in node:
                check(value)

    schema = response_json_schema()
    check(schema)
    item = schema["properties"]["candidates"]["items"]["properties"]
    assert set(item) >= {"question", "image_description", "benign_rationale", "alarming_rationale",
                         "harm_category", "trigger_element", "scene_domain", "flags", "contrast", "negation"}


# -- templates ---------------------------------------------------------------------------------

def test_templates_are_versioned_and_hashed(server, bank):
    templates = default_templates()
    assert {t.template_id for t in templates.values()} == {f"llm-{t}-v1" for t in (ER, NH, CI)}
    assert len({t.sha256 for t in templates.values()}) == 3
    assert default_templates()[ER].sha256 == templates[ER].sha256  # stable
    for t, template in templates.items():
        assert f"STIMULUS TYPE: {t}" in template.system
        for placeholder in ("$examples", "$avoid", "$slots", "$n"):
            assert placeholder in template.user

    edited = PromptTemplate(templates[ER].template_id, ER, templates[ER].system + " Be brief.",
                            templates[ER].user)
    assert edited.sha256 != templates[ER].sha256
    records, _ = run(server, bank, slots_of(bank, {ER: 1, CI: 1}), templates={ER: edited})
    assert records[0].provenance.prompt_template_hash == edited.sha256
    assert records[1].provenance.prompt_template_hash == templates[CI].sha256
    with make_client(server) as client:
        assert LLMGenerator(client, "writer", templates={ER: edited}).templates[ER].sha256 == edited.sha256


# -- parsing and stats units -------------------------------------------------------------------

def test_parse_answer_shapes_and_reasons():
    item = {"question": "q"}
    assert parse_answer(json.dumps({"candidates": [item]})) == [item]
    assert parse_answer(f"```json\n{json.dumps([item, item])}\n```") == [item, item]
    assert parse_answer(f"Note [1]: see below.\n{json.dumps({'candidates': [item, item]})}\nDone.") == [item, item]
    assert parse_answer(json.dumps({"items": [item]})) == [item]
    single = {"question": "q", "slot": 1, "contrast": {"question": "h", "image_description": None}}
    assert parse_answer(json.dumps(single)) == [single]
    assert parse_answer('{"candidates": [' + json.dumps(single) + ', {"question": "cut') == [single]
    for text, reason in [("", "empty_response"), (None, "empty_response"), ("no json here", "malformed_json"),
                         ('{"candidates": [{"question": "q"', "malformed_json"),
                         ("I'm sorry, but I can't help with that.", "model_refused"),
                         ('{"answer": 42}', "schema_invalid")]:
        with pytest.raises(UnparsedAnswer) as info:
            parse_answer(text)
        assert info.value.reason == reason, text
    assert looks_like_refusal("Sorry — I cannot do that") and not looks_like_refusal('{"candidates": []}')


def test_truncated_answer_is_counted_as_truncated(server, bank):
    server.set_script(Writer(render=lambda cs, _: ok(json.dumps({"candidates": cs})[:150],
                                                     finish_reason="length")))
    _, stats = run(server, bank, slots_of(bank, {ER: 2}))
    assert stats.dropped == Counter({"truncated": 2})
    assert stats.repair_calls == 1 and "cut off" in messages_of(repairs(server)[0])[1]  # cut off again


@pytest.mark.parametrize("repair", [False, True])
def test_complete_candidates_of_a_truncated_answer_are_kept(server, bank, repair):
    def render(cs, request):
        text = json.dumps({"candidates": cs})
        if is_repair(request):
            return text
        cut = text.index('{"slot": 3')  # slots 1 and 2 complete, slot 3 cut off in its middle
        return ok(text[:cut + 80], finish_reason="length")

    server.set_script(Writer(render=render))
    records, stats = run(server, bank, slots_of(bank, {NH: 4}), candidates_per_call=4, repair=repair)
    if repair:  # the cut-off slots, and only they, are asked for again
        assert stats.accepted == 4 and not stats.dropped and stats.repaired == 2
        assert [s["slot"] for s in request_slots(repairs(server)[0])] == [3, 4]
        assert [r.question.split("-")[-1] for r in records] == ["1.", "2.", "3.", "4."]
    else:
        assert stats.accepted == 2 and stats.dropped == Counter({"truncated": 2})
        assert [r.question.split("-")[-1] for r in records] == ["1.", "2."]


def test_json_lines_answer_is_parsed(server, bank):
    server.set_script(Writer(render=lambda cs, _: "\n".join(json.dumps(c) for c in cs)))
    records, stats = run(server, bank, slots_of(bank, {CI: 3}), structured=False)
    assert stats.accepted == 3 and not stats.dropped


def test_stats_merge_and_as_dict():
    a = GenerationStats(calls=2, requested=8, accepted=6)
    a.drop("malformed_json", 2, "garbage")
    b = GenerationStats(calls=1, cache_hits=1, requested=4, accepted=3, extra=1)
    b.drop("model_refused", detail="I'm sorry")
    b.drop("malformed_json", detail="other garbage")
    b.repair_calls, b.repaired = 1, 2
    total = a + b
    assert (total.calls, total.cache_hits, total.requested, total.accepted, total.extra) == (3, 1, 12, 9, 1)
    assert (total.repair_calls, total.repaired) == (1, 2)
    assert total.dropped == Counter({"malformed_json": 3, "model_refused": 1})
    assert total.drop_samples["malformed_json"] == "garbage"
    assert a.calls == 2  # `+` leaves its operands alone; `add` merges in place
    a.add(b)
    assert a.as_dict() == total.as_dict()
    d = total.as_dict()
    assert d["dropped_total"] == 4 and d["dropped"] == {"malformed_json": 3, "model_refused": 1}
    json.dumps(d)


def test_bad_arguments_fail_early(server):
    with make_client(server) as client:
        with pytest.raises(ValueError, match="unknown endpoint"):
            LLMGenerator(client, "nope")
        with pytest.raises(ValueError):
            LLMGenerator(client, "writer", candidates_per_call=0)
        gen = LLMGenerator(client, "writer", few_shot=0)
        with pytest.raises(ValueError, match="unknown stimulus type"):
            gen.generate([Slot("k", "bogus", "general_harm", "home", "x")], seed=0, config_hash=None,
                         code_version=None)
        assert gen.generate([], seed=0, config_hash=None, code_version=None)[0] == []


def test_sliding_window_never_shows_a_call_the_results_of_calls_beside_it(server, bank):
    slots = slots_of(bank, {ER: 8})
    # ER0..ER3, two in flight: call 2 may see call 0 only; call 3 calls 0 and 1.
    records, _ = run(server, bank, slots, candidates_per_call=2, calls_in_flight=2, avoid_recent=8)
    prompts = {tuple(s["trigger_element"] for s in request_slots(r)): messages_of(r)[1] for r in server.requests}
    avoid = [[json.loads(q) for q in block(prompts[tuple(s.trigger_element for s in slots[i:i + 2])],
                                           "avoid").splitlines() if q.startswith('"')]
             for i in (0, 2, 4, 6)]
    assert avoid[0] == [] and avoid[1] == []
    assert avoid[2] == [r.question for r in records[:2]]
    assert avoid[3] == [r.question for r in records[:4]]


def test_prompt_templates_are_pinned():
    """The templates' text is part of every item's provenance and of the LLM cache key: moving code
    around (issue 16 split this module) must not change a byte. A deliberate edit changes these
    hashes and should bump TEMPLATE_VERSION."""
    pinned = {ER: "1c43d3cdf4872062", NH: "43ed4a90ae12c5eb", CI: "2d7ecf63af5dd247"}
    templates = default_templates()
    assert {t: templates[t].sha256[:16] for t in pinned} == pinned
    assert {t: templates[t].template_id for t in pinned} == {t: f"llm-{t}-v1" for t in pinned}


def test_old_import_path_still_works():
    from mossforge.generators import llm

    assert llm.parse_answer is parse_answer and llm.default_templates is default_templates
