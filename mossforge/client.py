"""The one model client: every chat and image call of every stage goes through it.

Endpoints are declared by name and reached with the official `openai` SDK, so OpenAI and any
OpenAI-compatible server (vLLM, Ollama, llama.cpp, a gateway) work alike. On top of the SDK:
one retry layer (the SDK's own is off: 429 waits for Retry-After; 5xx, timeouts and dropped
connections back off with jitter; other 4xx fail at once), a concurrency bound per endpoint with
optional rpm/tpm budgets, a disk cache keyed on the whole request (a re-run makes no HTTP calls),
accounting per endpoint and stage, and failures as values (`chat_many` returns a `ChatFailure`
in place of an answer), so one bad item never loses a batch. API keys never reach a log, a cache
file or the accounting; base64 image payloads are hashed in cache keys and redacted in logs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import email.utils
import functools
import hashlib
import importlib
import inspect
import json
import logging
import os
import random
import re
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from mossforge.config import EndpointConfig  # noqa: F401  (declared with the config; imported from here too)
from mossforge.errors import MossforgeError, PreflightError, RunInterrupted

log = logging.getLogger(__name__)
CANCELLED = "model calls cancelled (Ctrl-C or SIGTERM)"


class _Deferred:
    """`openai`, imported on first use: the CLI's quick paths (`--help`, config checks) and the
    offline build never call a model, and importing the SDK takes about half a second."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module("openai"), name)


openai = _Deferred()

CacheMode = Literal["use", "refresh", "off"]
FailureKind = Literal["rate_limit", "quota", "server_error", "timeout", "connection", "bad_request",
                      "content_policy", "auth", "malformed_response", "error"]
DUMMY_API_KEY = "not-needed"  # local servers ignore the key, but the SDK insists on one
T = TypeVar("T")


class MissingApiKeyError(PreflightError, RuntimeError):
    """An endpoint names an environment variable for its key, and that variable is not set."""


@dataclass(frozen=True)
class ChatResult:
    text: str | None
    refusal: str | None  # the SDK's `message.refusal` (an API-side refusal)
    finish_reason: str | None  # "stop", "length", "content_filter", ...
    input_tokens: int
    output_tokens: int
    cached: bool
    model: str
    endpoint: str
    cache_key: str
    ok: bool = True


_STORED_CHAT_FIELDS = ("text", "refusal", "finish_reason", "input_tokens", "output_tokens", "model")


@dataclass(frozen=True)
class ImageResult:
    images: list[bytes]  # decoded image files (PNG unless the endpoint's params ask otherwise)
    revised_prompts: list[str | None]
    cached: bool
    model: str
    endpoint: str
    cache_key: str
    ok: bool = True


@dataclass(frozen=True)
class ChatFailure:
    kind: FailureKind
    message: str  # redacted: no keys, no base64 payloads
    endpoint: str = ""
    stage: str = ""
    attempts: int = 0
    ok: bool = False


class ModelCallError(MossforgeError, RuntimeError):
    """Raised by the async `chat` / `images` when a call fails for good; carries the failure."""

    def __init__(self, failure: ChatFailure) -> None:
        super().__init__(f"{failure.endpoint}: {failure.kind}: {failure.message}")
        self.failure = failure


# -- redaction and cache keys ----------------------------------------------------------------

_DATA_URL = re.compile(r"data:([\w.+/-]+);base64,([A-Za-z0-9+/]+={0,2})")


def _sha256_of_base64(payload: str) -> str:
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raw = payload.encode()
    return hashlib.sha256(raw).hexdigest()


def hash_data_urls(value: Any) -> Any:
    """A copy of `value` with every base64 data URL replaced by the sha256 of its bytes."""
    if isinstance(value, str):
        return _DATA_URL.sub(lambda m: f"data:{m[1]};sha256,{_sha256_of_base64(m[2])}", value)
    if isinstance(value, dict):
        return {k: hash_data_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [hash_data_urls(v) for v in value]
    return value


def redact(text: str) -> str:
    """Text safe to log: base64 data URLs shortened to a placeholder."""
    return _DATA_URL.sub(lambda m: f"data:{m[1]};base64,<{len(m[2])} chars redacted>", text)


def cache_key(request: dict[str, Any]) -> str:
    canonical = json.dumps(hash_data_urls(request), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _DiskCache:
    """One JSON file per key under `root/<first two hex>/`, written atomically (tmp + replace)."""

    def __init__(self, root: Path | None, mode: CacheMode) -> None:
        self.root = Path(root) if root is not None else None
        self.mode: CacheMode = mode if self.root is not None else "off"
        self.reads = self.mode == "use"
        self.writes = self.mode in ("use", "refresh")

    def path(self, key: str, suffix: str = ".json") -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}{suffix}"

    def get(self, key: str) -> dict | None:
        if not self.reads:
            return None
        try:
            return json.loads(self.path(key).read_text())
        except (OSError, ValueError):  # missing, or torn by a crash: treat as a miss
            return None

    def put(self, key: str, entry: dict, blobs: dict[str, bytes] | None = None) -> None:
        if not self.writes:
            return
        # Blobs first and the JSON last: an entry that exists is complete.
        for suffix, data in (blobs or {}).items():
            self._atomic_write(self.path(key, suffix), data)
        self._atomic_write(self.path(key), json.dumps(entry, ensure_ascii=False).encode())

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


# -- failure classification and rate limiting ------------------------------------------------

class _MalformedResponse(ValueError):
    pass


_CONTENT_POLICY_CODES = {"content_policy_violation", "content_filter", "moderation_blocked"}
_CONTENT_POLICY_WORDS = ("safety system", "content policy", "content management policy")


@dataclass
class _Verdict:
    kind: FailureKind
    retry: bool
    retry_after: float | None = None


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), if present."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            when = email.utils.parsedate_tz(value)  # the HTTP-date form
            return max(0.0, email.utils.mktime_tz(when) - time.time()) if when else None
    return None


def _classify(exc: BaseException) -> _Verdict:
    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError, its parent
        return _Verdict("timeout", True)
    if isinstance(exc, openai.APIConnectionError):
        return _Verdict("connection", True)
    if isinstance(exc, openai.RateLimitError):
        if exc.code == "insufficient_quota":  # billing, not load: waiting will not help
            return _Verdict("quota", False)
        return _Verdict("rate_limit", True, _retry_after(exc.response.headers))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return _Verdict("server_error", True)
        if status == 408:
            return _Verdict("timeout", True)
        if status in (401, 403):
            return _Verdict("auth", False)
        message = str(exc).lower()
        if (exc.code or "") in _CONTENT_POLICY_CODES or any(w in message for w in _CONTENT_POLICY_WORDS):
            return _Verdict("content_policy", False)
        return _Verdict("bad_request", False)
    if isinstance(exc, (json.JSONDecodeError, _MalformedResponse, openai.APIResponseValidationError)):
        return _Verdict("malformed_response", False)
    return _Verdict("error", False)


class _TokenBucket:
    """`per_minute` units a minute, in bursts of at most ten seconds' worth."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * 10)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # a request bigger than a burst still gets through
        while True:
            self._refill()
            if self.level >= amount:
                self.level -= amount
                return
            await asyncio.sleep((amount - self.level) / self.rate)

    def settle(self, amount: float) -> None:
        """Correct an estimate once the real usage is known (the level may go negative)."""
        self._refill()
        self.level -= amount


# -- accounting ------------------------------------------------------------------------------

@dataclass
class _Tally:
    requests: int = 0  # calls asked for (cached or not)
    ok: int = 0
    cache_hits: int = 0
    calls: int = 0  # HTTP requests made, retries included
    retries: int = 0
    failures: Counter = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    def add(self, other: _Tally) -> None:
        for name in ("requests", "ok", "cache_hits", "calls", "retries", "input_tokens", "output_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "ok": self.ok, "failed": sum(self.failures.values()),
                "cache_hits": self.cache_hits, "calls": self.calls, "retries": self.retries,
                "failures": dict(sorted(self.failures.items())), "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6)}


def accounting_of(endpoints: dict[str, EndpointConfig], cache_mode: str,
                  rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals per endpoint, per stage and overall from `tally_rows()` of one or more clients (a
    run whose tasks ran in several processes has one client per task there)."""
    by_endpoint: dict[str, _Tally] = {name: _Tally() for name in endpoints}
    by_stage: dict[str, _Tally] = {}
    total = _Tally()
    for row in rows:
        fields = {k: v for k, v in row.items() if k not in ("endpoint", "stage")}
        tally = _Tally(**{**fields, "failures": Counter(fields["failures"])})
        by_endpoint.setdefault(row["endpoint"], _Tally()).add(tally)
        by_stage.setdefault(row["stage"], _Tally()).add(tally)
        total.add(tally)
    return {
        "cache_mode": cache_mode,
        "endpoints": {name: {"model": endpoints[name].model if name in endpoints else None, **t.as_dict()}
                      for name, t in by_endpoint.items()},
        "stages": {stage: t.as_dict() for stage, t in sorted(by_stage.items())},
        "total": total.as_dict(),
    }


# -- the client ------------------------------------------------------------------------------

@functools.cache
def _sdk_args(kind: str) -> frozenset[str]:
    """The keyword arguments the SDK's chat (or images) call takes by name."""
    from openai.resources.chat.completions import AsyncCompletions
    from openai.resources.images import AsyncImages

    method = AsyncCompletions.create if kind == "chat" else AsyncImages.generate
    return frozenset(inspect.signature(method).parameters) - {"self"}


def _split_params(params: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """SDK keyword arguments; parameters the SDK does not know (vLLM's `top_k`, ...) go in extra_body."""
    kwargs = {k: v for k, v in params.items() if k in known}
    extra = {k: v for k, v in params.items() if k not in known}
    if extra:
        kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **extra}
    return kwargs


@dataclass
class _Runtime:
    """Per-endpoint state that lives on the client's event loop."""

    sdk: openai.AsyncOpenAI
    slots: asyncio.Semaphore
    rpm: _TokenBucket | None
    tpm: _TokenBucket | None


class ModelClient:
    """Chat and image calls to named endpoints, with retries, bounds, a disk cache and accounting.

    All network work runs on one private event loop in a daemon thread, so the per-endpoint bounds
    hold for every caller: sync code (`chat_many`), async code (`await chat(...)`) on any loop,
    and several threads at once.
    """

    def __init__(self, endpoints: dict[str, EndpointConfig] | list[EndpointConfig],
                 cache_dir: Path | None = None, cache_mode: CacheMode = "use", *,
                 backoff_base: float = 0.5, backoff_max: float = 30.0,
                 retry_after_max: float = 120.0, call_slot: Callable[[str], Any] | None = None) -> None:
        items = endpoints.values() if isinstance(endpoints, dict) else endpoints
        configs = [e if isinstance(e, EndpointConfig) else EndpointConfig.model_validate(e) for e in items]
        self.endpoints = {c.name: c for c in configs}
        if len(self.endpoints) != len(configs):
            raise ValueError("endpoint names must be unique")
        if cache_mode not in ("use", "refresh", "off"):
            raise ValueError(f"cache_mode must be 'use', 'refresh' or 'off', got {cache_mode!r}")
        self._keys: dict[str, str] = {}
        for config in configs:  # fail before any work, naming the variable but never a value
            if config.api_key_env is None:
                self._keys[config.name] = DUMMY_API_KEY
            elif not os.environ.get(config.api_key_env):
                raise MissingApiKeyError(
                    f"endpoint {config.name!r} needs an API key in the environment variable "
                    f"{config.api_key_env}, which is not set")
            else:
                self._keys[config.name] = os.environ[config.api_key_env]
        self.cache = _DiskCache(cache_dir, cache_mode)
        self.backoff_base, self.backoff_max, self.retry_after_max = backoff_base, backoff_max, retry_after_max
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runtimes: dict[str, _Runtime] = {}
        # An extra async slot per HTTP attempt, given the endpoint name: the flows hold a Prefect
        # global concurrency limit here when tasks run in several processes (flows/limits.py).
        self._call_slot = call_slot or (lambda endpoint: contextlib.nullcontext())
        self._cancelled = False  # cancel_all() was called

    # -- public API ----------------------------------------------------------------------------
    async def chat(self, endpoint: str, messages: list[dict], *, stage: str,
                   response_format: dict | None = None, **params: Any) -> ChatResult:
        """One chat completion. Raises `ModelCallError` (with `.failure`) when it fails for good."""
        self._config(endpoint)
        return await self._on_loop(self._chat(endpoint, messages, stage, response_format, params))

    async def images(self, endpoint: str, prompt: str, size: str = "1024x1024", n: int = 1, *,
                     stage: str, **params: Any) -> ImageResult:
        """Generated images, decoded. Raises `ModelCallError` (kind "content_policy" on a block)."""
        self._config(endpoint)
        return await self._on_loop(self._images(endpoint, prompt, size, n, stage, params))

    def chat_many(self, endpoint: str, message_lists: list[list[dict]], *, stage: str,
                  response_format: dict | list[dict | None] | None = None, **params: Any,
                  ) -> list[ChatResult | ChatFailure]:
        """Many chats at once (bounded per endpoint), in input order; failures come back as values.
        `response_format`: one for every chat, or a list with one per chat."""
        self._config(endpoint)
        formats = response_format if isinstance(response_format, list) else [response_format] * len(message_lists)
        if len(formats) != len(message_lists):
            raise ValueError(f"chat_many: {len(formats)} response formats for {len(message_lists)} chats")
        calls = [self._chat(endpoint, m, stage, f, params) for m, f in zip(message_lists, formats)]
        return self._run(self._gather(calls))

    def images_many(self, endpoint: str, prompts: list[str], size: str = "1024x1024", n: int = 1, *,
                    stage: str, **params: Any) -> list[ImageResult | ChatFailure]:
        self._config(endpoint)
        return self._run(self._gather([self._images(endpoint, p, size, n, stage, params) for p in prompts]))

    def accounting(self) -> dict[str, Any]:
        """Totals per endpoint, per stage and overall, as plain JSON-ready values."""
        return accounting_of(self.endpoints, self.cache.mode, self.tally_rows())

    def tally_rows(self) -> list[dict[str, Any]]:
        """The raw counts per (endpoint, stage), JSON-ready, for `accounting(extra=...)` elsewhere."""
        with self._lock:
            return [{"endpoint": e, "stage": s, **asdict(t), "failures": dict(t.failures)}
                    for (e, s), t in sorted(self._tallies.items())]

    def accounting_table(self) -> list[dict[str, Any]]:
        """One flat row per (endpoint, stage), for a table or a CSV."""
        with self._lock:
            rows = [{"endpoint": e, "stage": s, **t.as_dict()} for (e, s), t in sorted(self._tallies.items())]
        for row in rows:
            row["failures"] = ", ".join(f"{k}={v}" for k, v in row["failures"].items())
        return rows

    @property
    def cancelled(self) -> bool:
        """`cancel_all` was called: this client starts no call again."""
        return self._cancelled

    def cancel_all(self) -> None:
        """Cancel every call running or waiting on this client (Ctrl-C, SIGTERM): the threads waiting in
        `chat_many` get a CancelledError at once instead of finishing their batches' calls."""
        self._cancelled = True  # and every later call: a queued batch starts none
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: [task.cancel() for task in asyncio.all_tasks(loop)])

    def close(self) -> None:
        if self._loop is None:
            return
        self._run(self._close_sdks())
        self._finalizer.detach()
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the private event loop ----------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                                name="mossforge-model-client")
                self._thread.start()
                # A client dropped without close() must not leave its thread running.
                self._finalizer = weakref.finalize(self, self._loop.call_soon_threadsafe, self._loop.stop)
            return self._loop

    def _run(self, coro: Awaitable[T]) -> T:
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("ModelClient's sync methods cannot be called from its own loop")
        future = asyncio.run_coroutine_threadsafe(coro, loop)  # type: ignore[arg-type]
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._cancelled:
                raise RunInterrupted(CANCELLED) from None
            raise
        except BaseException:  # Ctrl-C in the caller: stop the work too
            future.cancel()
            raise

    async def _on_loop(self, coro: Awaitable[T]) -> T:
        loop = self._ensure_loop()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))  # type: ignore[arg-type]

    async def _gather(self, calls: list[Awaitable[T]]) -> list[T | ChatFailure]:
        async def settle(call: Awaitable[T]) -> T | ChatFailure:
            try:
                return await call
            except ModelCallError as exc:
                return exc.failure
        return list(await asyncio.gather(*(settle(c) for c in calls)))

    async def _close_sdks(self) -> None:
        for runtime in self._runtimes.values():
            await runtime.sdk.close()
        self._runtimes.clear()
        await asyncio.get_running_loop().shutdown_default_executor()  # the SDK's to_thread helpers

    # -- calls ---------------------------------------------------------------------------------
    def _config(self, endpoint: str) -> EndpointConfig:
        if self._cancelled:  # every public call starts here
            raise RunInterrupted(CANCELLED)
        try:
            return self.endpoints[endpoint]
        except KeyError:
            raise ValueError(f"unknown endpoint {endpoint!r}; configured: {sorted(self.endpoints)}") from None

    def _runtime(self, config: EndpointConfig) -> _Runtime:
        runtime = self._runtimes.get(config.name)
        if runtime is None:  # created on the client's loop, which the SDK client and semaphore bind to
            sdk = openai.AsyncOpenAI(api_key=self._keys[config.name], base_url=config.base_url,
                                     timeout=config.timeout_s, max_retries=0)  # our retries only
            runtime = _Runtime(sdk, asyncio.Semaphore(config.max_concurrency),
                               _TokenBucket(config.rpm) if config.rpm else None,
                               _TokenBucket(config.tpm) if config.tpm else None)
            self._runtimes[config.name] = runtime
        return runtime

    def _bump(self, endpoint: str, stage: str, **counts: int) -> None:
        with self._lock:
            tally = self._tallies.setdefault((endpoint, stage), _Tally())
            for name, n in counts.items():
                setattr(tally, name, getattr(tally, name) + n)

    async def _chat(self, endpoint: str, messages: list[dict], stage: str,
                    response_format: dict | None, params: dict[str, Any]) -> ChatResult:
        config = self._config(endpoint)
        merged = {**config.params, **params}
        hashed = hash_data_urls(messages)  # once: images are the bulk of a request (the key, the log)
        key = cache_key({"kind": "chat", "base_url": config.base_url, "model": config.model,
                         "messages": hashed, "params": merged, "response_format": response_format})
        self._bump(endpoint, stage, requests=1)
        if (entry := self.cache.get(key)) is not None and entry.get("kind") == "chat":
            self._bump(endpoint, stage, cache_hits=1)
            return ChatResult(**entry["result"], cached=True, endpoint=endpoint, cache_key=key)

        kwargs = _split_params(merged, _sdk_args("chat"))
        if response_format is not None:
            kwargs["response_format"] = response_format
        runtime = self._runtime(config)

        async def attempt() -> ChatResult:
            completion = await runtime.sdk.chat.completions.create(
                model=config.model, messages=messages, **kwargs)
            try:
                choice, usage = completion.choices[0], completion.usage
                return ChatResult(
                    text=choice.message.content, refusal=getattr(choice.message, "refusal", None),
                    finish_reason=choice.finish_reason,
                    input_tokens=(usage.prompt_tokens or 0) if usage else 0,
                    output_tokens=(usage.completion_tokens or 0) if usage else 0,
                    cached=False, model=completion.model or config.model, endpoint=endpoint, cache_key=key)
            except (AttributeError, IndexError, TypeError) as exc:
                raise _MalformedResponse(f"unexpected chat response shape: {exc}") from None

        # For the tpm budget: ~4 characters a token, plus the answer's cap; corrected after the call.
        estimate = (len(json.dumps(hashed)) // 4 + int(merged.get("max_tokens") or 0)
                    if config.tpm else 0)
        result = await self._call(config, stage, attempt, tokens=estimate)
        self._count_usage(config, stage, result.input_tokens, result.output_tokens)
        stored = {k: v for k, v in asdict(result).items() if k in _STORED_CHAT_FIELDS}
        request = {"model": config.model, "messages": hashed, "params": hash_data_urls(merged),
                   "response_format": response_format}
        self.cache.put(key, {"kind": "chat", "created": time.time(), "endpoint": endpoint,
                             "request": request, "result": stored})
        return result

    async def _images(self, endpoint: str, prompt: str, size: str, n: int, stage: str,
                      params: dict[str, Any]) -> ImageResult:
        config = self._config(endpoint)
        # b64 unless the endpoint says otherwise (gpt-image models take response_format=None: omit it).
        merged = {"response_format": "b64_json", **config.params, **params}
        merged = {k: v for k, v in merged.items() if v is not None}
        key = cache_key({"kind": "images", "base_url": config.base_url, "model": config.model,
                         "prompt": prompt, "size": size, "n": n, "params": merged})
        self._bump(endpoint, stage, requests=1)
        if (entry := self.cache.get(key)) is not None:
            try:
                images = [self.cache.path(key, f".{i}.png").read_bytes() for i in range(entry["count"])]
            except OSError:
                pass  # an image file went missing: call again
            else:
                self._bump(endpoint, stage, cache_hits=1)
                return ImageResult(images, entry["revised_prompts"], True, entry["model"], endpoint, key)

        kwargs = _split_params(merged, _sdk_args("images"))
        runtime = self._runtime(config)

        async def attempt() -> ImageResult:
            response = await runtime.sdk.images.generate(model=config.model, prompt=prompt, size=size,
                                                         n=n, **kwargs)
            try:
                data = list(response.data or [])
                if not data or any(d.b64_json is None for d in data):
                    raise _MalformedResponse("image answer without b64_json (a URL-only answer?)")
                images = [base64.b64decode(d.b64_json) for d in data]
            except (AttributeError, TypeError, binascii.Error) as exc:
                raise _MalformedResponse(f"unexpected image response shape: {exc}") from None
            return ImageResult(images, [getattr(d, "revised_prompt", None) for d in data], False,
                               config.model, endpoint, key)

        result = await self._call(config, stage, attempt, tokens=0)
        self._count_usage(config, stage, 0, 0)
        self.cache.put(key, {"kind": "images", "created": time.time(), "model": result.model,
                             "prompt": prompt, "size": size, "params": merged,
                             "count": len(result.images), "revised_prompts": result.revised_prompts},
                       blobs={f".{i}.png": image for i, image in enumerate(result.images)})
        return result

    def _count_usage(self, config: EndpointConfig, stage: str, tokens_in: int, tokens_out: int) -> None:
        self._bump(config.name, stage, ok=1, input_tokens=tokens_in, output_tokens=tokens_out)
        if config.price_per_1k_input is not None or config.price_per_1k_output is not None:
            cost = (tokens_in * (config.price_per_1k_input or 0.0)
                    + tokens_out * (config.price_per_1k_output or 0.0)) / 1000
            with self._lock:
                tally = self._tallies[(config.name, stage)]
                tally.cost_usd = (tally.cost_usd or 0.0) + cost

    async def _call(self, config: EndpointConfig, stage: str, attempt: Callable[[], Awaitable[T]],
                    tokens: int) -> T:
        """Run `attempt` under the endpoint's bounds, retrying what is worth retrying."""
        runtime = self._runtime(config)
        attempts = 0

        def wait(state: RetryCallState) -> float:
            verdict = _classify(state.outcome.exception())  # type: ignore[union-attr, arg-type]
            if verdict.retry_after is not None:  # the server said how long: do as it says
                return verdict.retry_after
            ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
            return random.uniform(ceiling / 2, ceiling)  # "equal jitter": spread out, never ~0

        def before_sleep(state: RetryCallState) -> None:
            verdict = _classify(state.outcome.exception())  # type: ignore[union-attr, arg-type]
            self._bump(config.name, stage, retries=1)
            log.info("%s/%s: %s on attempt %d; retrying in %.2fs", config.name, stage, verdict.kind,
                     state.attempt_number, state.upcoming_sleep)

        def worth_retrying(exc: BaseException) -> bool:
            verdict = _classify(exc)  # a Retry-After beyond our patience means "not today"
            return verdict.retry and (verdict.retry_after or 0.0) <= self.retry_after_max

        retrying = AsyncRetrying(stop=stop_after_attempt(config.max_retries + 1), wait=wait,
                                 retry=retry_if_exception(worth_retrying), before_sleep=before_sleep,
                                 reraise=True)
        try:
            async for try_ in retrying:
                with try_:
                    # The slot is held for one HTTP attempt, not across backoff sleeps.
                    async with runtime.slots, self._call_slot(config.name):
                        if runtime.rpm:
                            await runtime.rpm.take(1)
                        if runtime.tpm and tokens:
                            await runtime.tpm.take(tokens)
                        attempts += 1
                        self._bump(config.name, stage, calls=1)
                        result = await attempt()
                    if runtime.tpm and tokens:
                        used = getattr(result, "input_tokens", 0) + getattr(result, "output_tokens", 0)
                        runtime.tpm.settle(used - tokens)
            return result
        except Exception as exc:  # every failure becomes a value the caller can count
            verdict = _classify(exc)
            message = self._scrub(f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._tallies.setdefault((config.name, stage), _Tally()).failures[verdict.kind] += 1
            # A blocked request is an expected answer in target checks, not an incident.
            level = logging.INFO if verdict.kind == "content_policy" else logging.WARNING
            log.log(level, "%s/%s: failed (%s) after %d attempt(s): %s", config.name, stage, verdict.kind,
                    attempts, message)
            raise ModelCallError(ChatFailure(verdict.kind, message, config.name, stage, attempts)) from None

    def _scrub(self, text: str) -> str:
        text = redact(text)
        for key in self._keys.values():
            if key != DUMMY_API_KEY and len(key) >= 4:
                text = text.replace(key, "***")
        return text[:2000]
