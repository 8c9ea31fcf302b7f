"""The model client against a real (loopback) OpenAI-compatible server: retries, bounds, cache,
accounting, redaction. Timeouts and backoffs are shortened so the whole file runs in seconds."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import threading
import time

import pytest
from openai_server import (
    Reply,
    content_policy,
    drop,
    error,
    hang,
    malformed,
    ok,
    png_bytes,
    rate_limited,
    serve,
    server_error,
)
from pydantic import ValidationError

from mossforge.client import (
    ChatFailure,
    ChatResult,
    EndpointConfig,
    ImageResult,
    MissingApiKeyError,
    ModelCallError,
    ModelClient,
    _TokenBucket,
    cache_key,
    redact,
)

SECRET = "sk-test-0123456789-SECRET-abcdef"


@pytest.fixture
def server():
    with serve() as s:
        yield s


def endpoint(server, **changes) -> EndpointConfig:
    fields = dict(name="local", base_url=server.base_url, model="test-model", timeout_s=2.0,
                  max_retries=2)
    fields.update(changes)
    return EndpointConfig(**fields)


def make_client(server, cache_dir=None, cache_mode="use", **changes) -> ModelClient:
    return ModelClient([endpoint(server, **changes)], cache_dir=cache_dir, cache_mode=cache_mode,
                       backoff_base=0.01, backoff_max=0.05)


def user(text: str, image: bytes | None = None) -> list[dict]:
    if image is None:
        return [{"role": "user", "content": text}]
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def totals(client: ModelClient, name: str = "local") -> dict:
    return client.accounting()["endpoints"][name]


# -- answers ----------------------------------------------------------------------------------

def test_good_answers_in_order_with_usage_and_cost(server):
    with make_client(server, price_per_1k_input=1.0, price_per_1k_output=2.0) as client:
        results = client.chat_many("local", [user(f"question {i}") for i in range(5)], stage="generate")
    assert [r.text for r in results] == [f"echo: question {i}" for i in range(5)]
    assert all(isinstance(r, ChatResult) and not r.cached and r.finish_reason == "stop" for r in results)
    t = totals(client)
    assert (t["requests"], t["ok"], t["calls"], t["retries"], t["failed"]) == (5, 5, 5, 0, 0)
    assert t["input_tokens"] == sum(r.input_tokens for r in results) > 0
    assert t["output_tokens"] == sum(r.output_tokens for r in results) == 15
    assert t["cost_usd"] == pytest.approx((t["input_tokens"] * 1.0 + t["output_tokens"] * 2.0) / 1000)
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"  # no key env: dummy key
    assert server.requests[0].headers["x-stainless-retry-count"] == "0"


def test_async_chat_from_a_caller_loop_and_params_reach_the_server(server):
    async def main(client):
        return await asyncio.gather(*(client.chat("local", user(f"q{i}"), stage="target", seed=i)
                                      for i in range(3)))

    with make_client(server, params={"temperature": 0, "top_k": 5}) as client:
        results = asyncio.run(main(client))
    assert [r.text for r in results] == ["echo: q0", "echo: q1", "echo: q2"]
    body = server.requests[0].body
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert body["top_k"] == 5  # unknown to the SDK: sent through extra_body
    assert client.accounting()["stages"]["target"]["ok"] == 3


def test_refusal_field_and_content_filter_finish_are_captured(server):
    server.set_script([ok(refusal="I can't help with that.")])
    with make_client(server) as client:
        [refused] = client.chat_many("local", [user("a")], stage="target")
        server.set_script([ok(content="", finish_reason="content_filter")])
        [filtered] = client.chat_many("local", [user("b")], stage="target")
    assert refused.refusal == "I can't help with that." and refused.text is None
    assert filtered.finish_reason == "content_filter" and filtered.text == ""
    assert totals(client)["ok"] == 2  # answers, not failures: the refusal classifier decides


# -- retries ----------------------------------------------------------------------------------

def test_429_waits_for_retry_after(server):
    server.set_script([rate_limited(retry_after=0.6), ok("fine")])
    with make_client(server) as client:
        start = time.monotonic()
        [result] = client.chat_many("local", [user("a")], stage="generate")
        elapsed = time.monotonic() - start
    assert result.text == "fine"
    gap = server.requests[1].received_at - server.requests[0].received_at
    assert 0.6 <= gap < 2.0 and elapsed >= 0.6  # far above the 0.05 s backoff ceiling (below 2 s: the header, not a backoff)
    t = totals(client)
    assert (t["calls"], t["retries"], t["ok"], t["failed"]) == (2, 1, 1, 0)


def test_500_then_success_counts_a_retry(server):
    server.set_script([server_error(500), server_error(503), ok("third time")])
    with make_client(server) as client:
        [result] = client.chat_many("local", [user("a")], stage="generate")
    assert result.text == "third time"
    t = totals(client)
    assert (t["calls"], t["retries"], t["failed"]) == (3, 2, 0)


def test_hung_request_times_out_is_retried_then_counted_as_failure(server):
    server.set_script(lambda request: hang(5))
    with make_client(server, timeout_s=0.3, max_retries=1) as client:
        start = time.monotonic()
        [failure] = client.chat_many("local", [user("a")], stage="target")
        elapsed = time.monotonic() - start
    assert isinstance(failure, ChatFailure) and failure.kind == "timeout" and failure.attempts == 2
    assert 0.6 <= elapsed < 3.0  # two 0.3 s timeouts and a short backoff, not the 5 s hang
    t = totals(client)
    assert (t["calls"], t["retries"], t["failures"]) == (2, 1, {"timeout": 1})


def test_dropped_connection_is_retried(server):
    server.set_script([drop(), ok("after drop")])
    with make_client(server) as client:
        [result] = client.chat_many("local", [user("a")], stage="generate")
    assert result.text == "after drop" and totals(client)["retries"] == 1


def test_malformed_json_is_a_counted_failure_and_the_batch_goes_on(server):
    server.set_script(lambda r: malformed() if "bad" in r.body["messages"][0]["content"] else None)
    with make_client(server) as client:
        results = client.chat_many("local", [user("good 1"), user("bad"), user("good 2")], stage="judge")
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].kind == "malformed_response" and results[1].attempts == 1  # not retried
    assert totals(client)["failures"] == {"malformed_response": 1}
    assert client.accounting_table()[0]["failures"] == "malformed_response=1"


@pytest.mark.parametrize("reply, kind", [
    (error(400, "bad parameter"), "bad_request"),
    (error(401, "no such key", code="invalid_api_key"), "auth"),
    (content_policy(), "content_policy"),
    (error(400, "blocked", code="content_filter"), "content_policy"),
])
def test_4xx_fails_at_once_with_its_kind(server, reply, kind):
    server.set_script(lambda r: reply)
    with make_client(server) as client:
        [failure] = client.chat_many("local", [user("a")], stage="target")
        with pytest.raises(ModelCallError) as raised:  # the async API raises, carrying the failure
            asyncio.run(client.chat("local", user("a"), stage="target"))
    assert failure.kind == kind and raised.value.failure.kind == kind
    assert len(server.requests) == 2 and totals(client)["retries"] == 0


def test_retries_are_bounded_and_rate_limits_without_header_back_off(server):
    server.set_script(lambda r: rate_limited(retry_after=None))
    with make_client(server, max_retries=3) as client:
        [failure] = client.chat_many("local", [user("a")], stage="generate")
    assert failure.kind == "rate_limit" and failure.attempts == 4 and len(server.requests) == 4


def test_rate_limits_that_will_not_lift_soon_are_not_retried(server):
    server.set_script([rate_limited(retry_after=3600), error(429, "quota", code="insufficient_quota")])
    with make_client(server) as client:
        start = time.monotonic()
        failures = [client.chat_many("local", [user(q)], stage="s")[0] for q in ("a", "b")]
    # (not retried: an hour's Retry-After would be waited out; the bound leaves room for a loaded machine)
    assert [f.kind for f in failures] == ["rate_limit", "quota"] and time.monotonic() - start < 3
    assert len(server.requests) == 2 and totals(client)["retries"] == 0


# -- bounds -----------------------------------------------------------------------------------

def test_concurrency_bound_is_respected(server):
    server.latency = 0.1
    with make_client(server, max_concurrency=3) as client:
        start = time.monotonic()
        results = client.chat_many("local", [user(f"q{i}") for i in range(12)], stage="generate")
        elapsed = time.monotonic() - start
    assert all(r.ok for r in results)
    assert server.max_active == 3
    assert elapsed >= 0.4  # 12 requests, 3 at a time, 0.1 s each


def test_bound_holds_across_threads_sharing_a_client(server):
    server.latency = 0.05
    with make_client(server, max_concurrency=2) as client:
        threads = [threading.Thread(target=client.chat_many,
                                    args=("local", [user(f"t{t}-{i}") for i in range(4)]),
                                    kwargs={"stage": "s"}) for t in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert server.max_active == 2 and totals(client)["ok"] == 12


def test_cancel_all_stops_waiting_and_later_calls(server):
    """Ctrl-C (`cancel_all`, from the run's SIGINT handler): a thread waiting in chat_many gets
    RunInterrupted at once instead of finishing its batch, and no later call is made."""
    from mossforge.errors import RunInterrupted

    server.latency = 0.5
    with make_client(server, max_concurrency=1) as client:
        outcome = {}

        def ask():
            try:
                client.chat_many("local", [user(f"q{i}") for i in range(20)], stage="s")
            except RunInterrupted as error:
                outcome["error"] = error

        thread = threading.Thread(target=ask)
        thread.start()
        while len(server.requests) < 2:
            time.sleep(0.01)
        client.cancel_all()
        thread.join(10)
        asked = len(server.requests)
        assert not thread.is_alive() and "cancelled" in str(outcome.get("error"))
        with pytest.raises(RunInterrupted):
            client.chat_many("local", [user("after")], stage="s")
    assert asked <= 3 and len(server.requests) == asked  # 20 queued: at most the one in flight more


def test_rpm_budget_spaces_requests_out(server):
    with make_client(server, rpm=240, max_concurrency=64) as client:  # 4 a second, bursts of 40
        start = time.monotonic()
        results = client.chat_many("local", [user(f"q{i}") for i in range(42)], stage="s")
        elapsed = time.monotonic() - start
    assert all(r.ok for r in results) and 0.45 <= elapsed < 2.5  # the 42nd waits 2 x 0.25 s


def test_token_bucket_waits_when_the_budget_is_spent():
    async def main():
        bucket = _TokenBucket(per_minute=6000)  # 100 a second, bursts of 1000
        start = time.monotonic()
        await bucket.take(1000)
        await bucket.take(30)
        return time.monotonic() - start

    assert 0.25 <= asyncio.run(main()) < 1.0  # 0.3 s to refill 30 tokens


# -- cache ------------------------------------------------------------------------------------

def test_second_run_makes_zero_requests(server, tmp_path):
    batch = [user(f"q{i}") for i in range(6)]
    with make_client(server, tmp_path) as client:
        first = client.chat_many("local", batch, stage="generate")
    assert len(server.requests) == 6
    with make_client(server, tmp_path) as client:
        second = client.chat_many("local", batch, stage="generate")
    assert len(server.requests) == 6  # not one more
    assert all(r.cached for r in second) and [r.text for r in second] == [r.text for r in first]
    t = totals(client)
    assert (t["calls"], t["cache_hits"], t["ok"]) == (0, 6, 0)
    assert len(list(tmp_path.glob("*/*.json"))) == 6


def test_cache_key_covers_params_and_response_format(server, tmp_path):
    with make_client(server, tmp_path) as client:
        client.chat_many("local", [user("q")], stage="s")
        client.chat_many("local", [user("q")], stage="s", temperature=0.7)
        client.chat_many("local", [user("q")], stage="s", response_format={"type": "json_object"})
        client.chat_many("local", [user("q")], stage="s", temperature=0.7)  # hit
    assert len(server.requests) == 3 and totals(client)["cache_hits"] == 1


def test_refresh_recalls_and_rewrites_off_neither_reads_nor_writes(server, tmp_path):
    batch = [user("q1"), user("q2")]
    with make_client(server, tmp_path) as client:
        client.chat_many("local", batch, stage="s")
    server.set_script(lambda r: ok("fresh"))
    with make_client(server, tmp_path, cache_mode="refresh") as client:
        refreshed = client.chat_many("local", batch, stage="s")
    assert len(server.requests) == 4 and not any(r.cached for r in refreshed)
    with make_client(server, tmp_path) as client:  # refresh wrote the new answers
        assert [r.text for r in client.chat_many("local", batch, stage="s")] == ["fresh", "fresh"]
    assert len(server.requests) == 4

    off_dir = tmp_path / "off"
    for _ in range(2):
        with make_client(server, off_dir, cache_mode="off") as client:
            client.chat_many("local", batch, stage="s")
    assert len(server.requests) == 8 and not off_dir.exists()


def test_failures_are_not_cached(server, tmp_path):
    server.set_script([error(400, "nope")])
    with make_client(server, tmp_path) as client:
        [failure] = client.chat_many("local", [user("q")], stage="s")
        [result] = client.chat_many("local", [user("q")], stage="s")
    assert not failure.ok and result.ok and not result.cached
    assert len(server.requests) == 2


def test_image_data_urls_are_hashed_in_the_key_and_never_stored_or_logged(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    image, other = png_bytes(16, 16), png_bytes(16, 16, rgb=(1, 2, 3))
    payload = base64.b64encode(image).decode()
    with make_client(server, tmp_path) as client:
        client.chat_many("local", [user("describe", image)], stage="target")
        client.chat_many("local", [user("describe", image)], stage="target")  # same bytes: a hit
        client.chat_many("local", [user("describe", other)], stage="target")  # other bytes: a miss
        server.set_script([error(400, f"cannot read data:image/png;base64,{payload}")])
        [failure] = client.chat_many("local", [user("echo me", image)], stage="target")
    assert len(server.requests) == 3 and totals(client)["cache_hits"] == 1
    assert payload in json.dumps(server.requests[0].body)  # the server did get the image
    stored = "".join(p.read_text() for p in tmp_path.glob("*/*.json"))
    assert payload not in stored and hashlib.sha256(image).hexdigest() in stored
    assert payload not in failure.message and "chars redacted" in failure.message
    assert payload not in caplog.text and "failed (bad_request)" in caplog.text
    assert cache_key({"u": f"data:image/png;base64,{payload}"}) != \
        cache_key({"u": f"data:image/jpeg;base64,{payload}"})
    assert redact(f"see data:image/png;base64,{payload} and more") == \
        f"see data:image/png;base64,<{len(payload)} chars redacted> and more"


# -- keys -------------------------------------------------------------------------------------

def test_api_key_never_appears_in_cache_accounting_or_logs(server, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MOSSFORGE_TEST_KEY", SECRET)
    server.set_script([server_error(), ok("hello"), error(401, f"Incorrect API key provided: {SECRET}")])
    with make_client(server, tmp_path, api_key_env="MOSSFORGE_TEST_KEY") as client:
        [result] = client.chat_many("local", [user("one")], stage="s")
        [failure] = client.chat_many("local", [user("two")], stage="s")
        dumped = json.dumps([client.accounting(), client.accounting_table()])
    assert result.text == "hello" and failure.kind == "auth"
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was used
    assert SECRET not in failure.message and "***" in failure.message
    assert SECRET not in dumped
    assert SECRET not in caplog.text and "retrying" in caplog.text
    assert all(SECRET not in p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert SECRET not in repr(client.endpoints)


def test_missing_key_variable_names_endpoint_and_variable(server, monkeypatch):
    monkeypatch.delenv("MOSSFORGE_NO_SUCH_KEY", raising=False)
    with pytest.raises(MissingApiKeyError, match=r"'judge-a'.*MOSSFORGE_NO_SUCH_KEY"):
        ModelClient([endpoint(server, name="judge-a", api_key_env="MOSSFORGE_NO_SUCH_KEY")])


def test_endpoint_config_forbids_unknown_keys_and_bad_values(server):
    with pytest.raises(ValidationError, match="temprature"):
        EndpointConfig(name="a", base_url="http://x/v1", model="m", temprature=0)
    with pytest.raises(ValidationError):
        EndpointConfig(name="a", base_url="http://x/v1", model="m", max_concurrency=0)
    with pytest.raises(ValidationError, match="api_key_env") as raised:  # a key pasted into config
        EndpointConfig(name="a", base_url="http://x/v1", model="m", api_key=SECRET)
    assert SECRET not in str(raised.value)
    with pytest.raises(ValidationError) as raised:
        EndpointConfig(name="a", base_url="http://x/v1", model="m", api_key_env=SECRET, model_id=SECRET)
    assert SECRET not in str(raised.value)
    with make_client(server) as client, pytest.raises(ValueError, match="unknown endpoint 'nope'"):
        client.chat_many("nope", [user("a")], stage="s")


# -- images -----------------------------------------------------------------------------------

def test_images_decode_to_png_and_are_cached(server, tmp_path):
    with make_client(server, tmp_path) as client:
        [first] = client.images_many("local", ["a toy knife in a playroom"], size="32x24", n=2, stage="render")
        [again] = client.images_many("local", ["a toy knife in a playroom"], size="32x24", n=2, stage="render")
        single = asyncio.run(client.images("local", "a red mug", size="8x8", stage="render"))
    assert isinstance(first, ImageResult) and len(first.images) == 2
    assert first.images[0].startswith(b"\x89PNG") and first.images[0] == png_bytes(32, 24)
    assert again.cached and again.images == first.images
    assert single.images == [png_bytes(8, 8)]
    assert server.count("/images/generations") == 2
    assert server.requests[0].body["response_format"] == "b64_json"
    assert not any(SECRET in p.name for p in tmp_path.rglob("*"))


def test_image_content_policy_rejection_is_a_failure_value(server):
    server.set_script([content_policy(), Reply()])
    with make_client(server) as client:
        results = client.images_many("local", ["blocked", "fine"], size="8x8", stage="render")
    kinds = sorted(r.kind if isinstance(r, ChatFailure) else "ok" for r in results)
    assert kinds == ["content_policy", "ok"]
    assert totals(client)["failures"] == {"content_policy": 1} and totals(client)["retries"] == 0
