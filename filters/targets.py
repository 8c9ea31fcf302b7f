"""Target check: ask each target model the query as a user would, label every answer, and keep the
candidates that at least k of n targets refuse.

Plain Python over the shared model client (cached, bounded, retried): the flow wraps it, the
`eval` command and the tests call it directly. API-side blocks are answers too: a content-filter
finish, the SDK's `refusal` field or a content-policy rejection of the request is a refusal
(classifier "api"); a call that failed for another reason is an `error`, which is neither a
refusal nor a compliance.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mossforge.client import ChatFailure, ChatResult, ModelClient
from mossforge.config import ModelRole, TargetCheckSection, TargetConfig
from mossforge.filters.refusal import classify
from mossforge.filters.refusal_judge import JudgeItem, classify_with_judge
from mossforge.messages import user_turn
from mossforge.schema import TargetCheck, TargetResult

STAGE = "target_check"
REFUSALS = {"full_refusal", "partial_refusal"}


@dataclass(frozen=True)
class Query:
    question: str
    image: bytes | str | None = None  # PNG bytes or a path
    description: str | None = None  # what the image shows: sent instead of it to text-only targets


def image_input(target: TargetConfig, query: Query) -> str:
    """How the target saw the image: "image" (attached), "text" (its description in the user turn)
    or "none" (not at all: no image, or `send_image = false` without `image_as_text`)."""
    if target.image_as_text:
        return "text" if query.description else "none"
    return "image" if (target.send_image and query.image is not None) else "none"


def target_messages(target: TargetConfig, query: Query) -> list[dict]:
    """The request a target gets: the question with the image attached, or, for a text-only target
    (`image_as_text`), "[Image: <description>] <question>" as one plain user turn."""
    how = image_input(target, query)
    if how == "text":
        return user_turn(f"[Image: {query.description}] {query.question}", None, target.system_prompt)
    return user_turn(query.question, query.image if how == "image" else None, target.system_prompt)


def ask_targets(client: ModelClient, targets: Sequence[TargetConfig], queries: Sequence[Query],
                stage: str = STAGE) -> dict[str, list[ChatResult | ChatFailure]]:
    """Every target answers every query; targets run side by side, each bounded by its endpoint."""
    def ask(target: TargetConfig) -> list[ChatResult | ChatFailure]:
        messages = [target_messages(target, q) for q in queries]
        return client.chat_many(target.endpoint, messages, stage=stage, **target.params)

    with ThreadPoolExecutor(max_workers=max(len(targets), 1)) as pool:
        answers = list(pool.map(ask, targets))
    return {target.name: result for target, result in zip(targets, answers)}


def _api_verdict(reply: ChatResult | ChatFailure) -> tuple[str, str] | None:
    """(label, rule) when the API itself decided the outcome; None when the text must be read."""
    if isinstance(reply, ChatFailure):
        if reply.kind == "content_policy":
            return "full_refusal", "api_content_policy_rejection"
        return "error", f"call_failed:{reply.kind}"
    if reply.refusal:
        return "full_refusal", "api_refusal_field"
    if reply.finish_reason == "content_filter":
        return "full_refusal", "api_content_filter"
    return None


def label_answers(client: ModelClient, target: TargetConfig, model_id: str, queries: Sequence[Query],
                  replies: Sequence[ChatResult | ChatFailure], settings: TargetCheckSection,
                  judge: ModelRole | None = None) -> list[TargetResult]:
    """One TargetResult per reply, labelled by the API's own signal or by the configured classifier."""
    results: list[TargetResult | None] = [None] * len(replies)
    to_read: list[int] = []
    for n, reply in enumerate(replies):
        common = {"target": target.name, "model_id": model_id, "image_input": image_input(target, queries[n])}
        if isinstance(reply, ChatFailure):
            label, rule = _api_verdict(reply)  # type: ignore[misc]
            results[n] = TargetResult(**common, label=label, classifier="api", rule=rule,
                                      error=f"{reply.kind}: {reply.message}"[:500])
            continue
        common.update(model_id=reply.model or model_id, answer=reply.text,
                      finish_reason=reply.finish_reason, api_refusal=reply.refusal)
        if (decided := _api_verdict(reply)) is not None:
            results[n] = TargetResult(**common, label=decided[0], classifier="api", rule=decided[1])
        else:
            results[n] = TargetResult(**common, label="unparsed", classifier="pending")
            to_read.append(n)

    if settings.classifier == "rules" or not to_read:
        for n in to_read:
            verdict = classify(results[n].answer, question=queries[n].question)
            results[n] = results[n].model_copy(update={"label": verdict.label, "classifier": "rules",
                                                       "rule": verdict.rule})
    else:
        assert judge is not None  # the config validator guarantees it
        items = [JudgeItem(queries[n].question, results[n].answer, queries[n].image) for n in to_read]
        labelled = classify_with_judge(
            client, judge.endpoint, items, only_unsure=settings.classifier == "rules_then_judge",
            send_image=judge.send_image, system_prompt=judge.system_prompt, params=judge.params,
            stage=f"{STAGE}:judge")
        for n, (label, classifier, rule) in zip(to_read, labelled):
            results[n] = results[n].model_copy(update={"label": label, "classifier": classifier,
                                                       "rule": rule})
    return results  # type: ignore[return-value]


def counts_as_refusal(label: str, count_partial: bool) -> bool:
    return label == "full_refusal" or (count_partial and label == "partial_refusal")


@dataclass(frozen=True)
class Decision:
    check: TargetCheck
    keep: bool
    drop_reason: str | None  # "not_refused" or "target_undecided" when not kept


def decide(results: Sequence[TargetResult], settings: TargetCheckSection) -> Decision:
    """Keep when at least k targets refuse. A target whose answer could not be labelled (a failed
    call, an unparsed judge reply) is undecided: when only undecided targets stand between the item
    and k refusals, it is dropped as `target_undecided` (a re-run retries those calls), not as
    `not_refused`, so the funnel never blames the targets for what the pipeline failed to learn."""
    refusals = sum(counts_as_refusal(r.label, settings.count_partial) for r in results)
    undecided = sum(r.label in ("error", "unparsed", "missing") for r in results)
    k = settings.min_refusals
    keep = refusals >= k
    tier = None
    if keep:
        tier = "hard" if refusals == len(results) else "refused"
    reason = None if keep else ("target_undecided" if refusals + undecided >= k else "not_refused")
    check = TargetCheck(status="passed" if keep else "dropped", results=list(results),
                        refusals=refusals, tier=tier)
    return Decision(check, keep, reason)
