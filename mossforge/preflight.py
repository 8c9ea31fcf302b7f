"""Checks that stop a run early and loudly instead of letting it publish something wrong.

Before any stage (`check_run`):
- every folder the run writes (the output folder, the work folder, the model-call cache) can be
  written;
- every endpoint the config uses answers: one minimal chat call (one token) for the chat roles
  (generator, targets, judges, the refusal judge), the model list for an image endpoint. A key
  that is missing or rejected (401/403), a model the server does not know, or a host that cannot
  be reached stops the run, naming the endpoint, its URL and the environment variable that holds
  its key (never the key);
- when the run pushes to the Hub (`dataset.hub_repo`), the Hugging Face token can push (whoami):
  a missing, rejected or read-only token stops the run before its first stage, not after its last.

After the model stages (`check_failures`): a stage in which every model call failed, or more than
`run.max_failed_share` of them, fails the run with that reason. Blocked requests
(`content_policy`) are answers, not failures: a target's API refusing a query is what the target
check looks for.

Before publishing (`check_not_empty`): a version with no items is published only when
`run.allow_empty` is set.

Plain Python over the shared model client (`mossforge.client`): no Prefect.
"""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mossforge.client import ChatFailure, EndpointConfig, MissingApiKeyError, ModelClient
from mossforge.errors import EmptyVersionError, InputError, PreflightError, StageFailedError

PREFLIGHT_STAGE = "preflight"
_NOT_FAILURES = {"content_policy"}  # a blocked request is an answer (an API-side refusal)


@dataclass(frozen=True)
class EndpointUse:
    endpoint: str
    kind: str  # "chat" or "images"
    roles: tuple[str, ...]  # the config keys that name it, e.g. targets[gpt].endpoint


def endpoint_uses(config) -> list[EndpointUse]:
    """Every endpoint the config's stages will call, with the keys that name it."""
    uses: list[tuple[str | None, str, str]] = []
    if config.generate.generator == "llm":
        uses.append((config.generate.endpoint, "chat", "generate.endpoint"))
    if config.render.renderer == "image_api":
        uses.append((config.render.endpoint, "images", "render.endpoint"))
    uses += _target_uses(config, config.targets,
                         judged=bool(config.targets) and config.target_check.classifier != "rules")
    uses += [(judge.endpoint, "chat", f"judges[{judge.name}].endpoint") for judge in config.judges]
    return _merged(uses)


def model_uses(config, targets=(), judged: bool = False) -> list[EndpointUse]:
    """The endpoints a command outside the build calls (`eval`, `classify-refusals`): the targets it
    asks, and the target-check judge when `judged` and one labels the answers."""
    return _merged(_target_uses(config, targets, judged))


def _target_uses(config, targets, judged: bool) -> list[tuple[str | None, str, str]]:
    uses = [(target.endpoint, "chat", f"targets[{target.name}].endpoint") for target in targets]
    if judged and config.target_check.judge is not None:
        uses.append((config.target_check.judge.endpoint, "chat", "target_check.judge.endpoint"))
    return uses


def _merged(uses: list[tuple[str | None, str, str]]) -> list[EndpointUse]:
    """One EndpointUse per (endpoint, kind), with every key that names it."""
    roles: dict[tuple[str, str], list[str]] = {}
    for name, kind, key in uses:
        if name is not None:
            roles.setdefault((name, kind), []).append(key)
    return [EndpointUse(name, kind, tuple(keys)) for (name, kind), keys in roles.items()]


# --- folders ------------------------------------------------------------------------------------


def check_writable(folders: dict[str, Path]) -> None:
    """Each folder exists (or can be made) and a file can be written in it; `folders` maps the
    config key or option that sets a folder to the folder."""
    for key, folder in folders.items():
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".mossforge-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise InputError(f"cannot write to {folder} ({key}): {reason}; choose a folder you can write "
                             f"(e.g. --outputs DIR) or fix its permissions. Nothing was run.") from None


def run_folders(config) -> dict[str, Path]:
    folders = {"run.out_dir (--outputs)": Path(config.run.out_dir), "run.work_dir": config.run.work_path()}
    if config.endpoints and config.cache.mode != "off":
        folders["cache.dir"] = config.cache_path()
    return folders


# --- endpoints ----------------------------------------------------------------------------------


def _who(endpoint: EndpointConfig) -> str:
    return f"endpoint {endpoint.name!r} ({endpoint.base_url}, model {endpoint.model!r})"


def _key_hint(endpoint: EndpointConfig) -> str:
    if endpoint.api_key_env:
        return f"the key in the environment variable {endpoint.api_key_env}"
    return (f"no key (set api_key_env under [endpoints.{endpoint.name}] to the name of the variable "
            "that holds it)")


def _status_of(message: str) -> int | None:
    for status in (401, 403, 404):
        if f"Error code: {status}" in message or f" {status} " in f" {message} ":
            return status
    return None


def _judge_failure(endpoint: EndpointConfig, roles: tuple[str, ...], failure: ChatFailure) -> str | None:
    """A problem that stops the run, or None when the endpoint is usable (or may well be)."""
    used_by = ", ".join(roles)
    status = _status_of(failure.message)
    if failure.kind == "auth":
        return (f"{_who(endpoint)} rejected {_key_hint(endpoint)} ({status or 'auth'}); used by "
                f"{used_by}. Check that the variable holds a valid key for this server.")
    if failure.kind in ("connection", "timeout"):
        return (f"{_who(endpoint)} could not be reached ({failure.kind}); used by {used_by}. Is the "
                f"server running and base_url right?")
    if failure.kind == "quota":
        return f"{_who(endpoint)} answered that the account's quota is used up; used by {used_by}."
    message = failure.message.lower()
    if status == 404 or "model_not_found" in message or ("model" in message and (
            "not found" in message or "does not exist" in message or "unknown" in message)):
        return (f"{_who(endpoint)}: the server does not know the model {endpoint.model!r} (used by "
                f"{used_by}); check [endpoints.{endpoint.name}] model.")
    return None  # a 400 on a one-token probe (a parameter the model lacks), a 429 or a 500: not conclusive


def _probe_chat(client: ModelClient, endpoint: str) -> ChatFailure | None:
    result = client.chat_many(endpoint, [[{"role": "user", "content": "ping"}]], stage=PREFLIGHT_STAGE,
                              max_tokens=1)[0]
    return result if isinstance(result, ChatFailure) else None


def _probe_models(endpoint: EndpointConfig, timeout: float) -> ChatFailure | None:
    """GET <base_url>/models: reachability, the key, and the model when the server lists models."""
    import httpx

    headers = {}
    if endpoint.api_key_env:
        headers["Authorization"] = f"Bearer {os.environ[endpoint.api_key_env]}"
    try:
        response = httpx.get(endpoint.base_url.rstrip("/") + "/models", headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return ChatFailure("timeout", "no answer", endpoint.name)
    except httpx.HTTPError as error:
        return ChatFailure("connection", type(error).__name__, endpoint.name)
    if response.status_code in (401, 403):
        return ChatFailure("auth", f"Error code: {response.status_code}", endpoint.name)
    if response.status_code == 200:
        try:
            listed = {m.get("id") for m in response.json().get("data") or []}
        except (ValueError, AttributeError):
            listed = set()
        if listed and endpoint.model not in listed:
            return ChatFailure("bad_request", f"Error code: 404 model {endpoint.model!r} not found", endpoint.name)
    return None  # a server without a model list (404) answered: reachable, nothing more to learn


def check_endpoints(config, timeout: float = 20.0, uses: list[EndpointUse] | None = None) -> list[str]:
    """Probe every endpoint the config uses (or those in `uses`), concurrently; raise
    `PreflightError` listing every problem found. Returns the endpoints checked."""
    uses = endpoint_uses(config) if uses is None else uses
    if not uses:
        return []
    problems: list[str] = []
    # A probe of its own: the cache is off (a cached answer proves nothing about the key), one
    # retry, and a short timeout, so an unreachable host is reported in seconds.
    probes: dict[str, EndpointConfig] = {}
    for use in uses:
        endpoint = config.endpoints[use.endpoint]
        if endpoint.api_key_env and not os.environ.get(endpoint.api_key_env):
            problems.append(f"{_who(endpoint)} needs its API key in the environment variable "
                            f"{endpoint.api_key_env}, which is not set; used by {', '.join(use.roles)}.")
            continue
        probes[use.endpoint] = endpoint.model_copy(update={"max_retries": 1,
                                                           "timeout_s": min(endpoint.timeout_s, timeout)})
    checks = [u for u in uses if u.endpoint in probes]
    try:
        client = ModelClient(list(probes.values()), cache_mode="off", backoff_base=0.2, backoff_max=1.0)
    except MissingApiKeyError as error:  # set between the check above and here
        raise PreflightError(str(error)) from None
    quiet = logging.getLogger("mossforge.client")  # the problems are reported below, once
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        problems += _probe_all(client, checks, probes, timeout)
    finally:
        quiet.setLevel(level)
    if problems:
        raise PreflightError("preflight failed, nothing was run:\n  " + "\n  ".join(problems))
    return sorted({u.endpoint for u in uses})


def _probe_all(client: ModelClient, checks: list[EndpointUse], probes: dict[str, EndpointConfig],
               timeout: float) -> list[str]:
    problems = []
    with client, ThreadPoolExecutor(max_workers=max(1, min(8, len(checks)))) as pool:
        futures = [(use, pool.submit(_probe_chat, client, use.endpoint) if use.kind == "chat"
                    else pool.submit(_probe_models, probes[use.endpoint], min(probes[use.endpoint].timeout_s, timeout)))
                   for use in checks]
        for use, future in futures:
            failure = future.result()
            problem = failure and _judge_failure(probes[use.endpoint], use.roles, failure)
            if problem:
                problems.append(problem)
    return problems


def check_inputs(config) -> None:
    """The files the config names exist (else the run started, drew its bars and failed at dedup
    or consensus, a Failed run in the UI for a typo in a path)."""
    from mossforge.config import ConfigError

    named = [("dedup.reference_files", ref.path) for ref in config.dedup.reference_files if config.dedup.enabled]
    if config.consensus.human_labels:
        named.append(("consensus.human_labels", config.consensus.human_labels))
    for key, path in named:  # (a reference may be a dataset folder; the labels must be a file)
        if not (Path(path).is_file() if key == "consensus.human_labels" else Path(path).exists()):
            raise ConfigError(f"{key}: {path} does not exist{' or is not a file' if Path(path).exists() else ''}. "
                              "Nothing was run.")


def check_hub(config) -> list[str]:
    """When the run pushes (`dataset.hub_repo`), the Hugging Face token can push: a missing, rejected
    or read-only token found now, not after the whole run (the version would be published locally
    and the push would fail at the end). Returns ["the Hub"] when checked."""
    if not config.dataset.hub_repo:
        return []
    from mossforge.errors import network_host
    from mossforge.release.hub import HubError, check_push_access

    try:
        check_push_access()
    except HubError as error:
        raise PreflightError(f"preflight failed, nothing was run:\n  dataset.hub_repo = {config.dataset.hub_repo}: "
                             f"{error}") from None
    except Exception as error:  # a Hub that cannot be reached (HF_ENDPOINT, a proxy, no network, offline mode)
        offline = type(error).__name__ == "OfflineModeIsEnabled"
        host = network_host(error)
        if host is None and not offline:
            raise
        why = ("HF_HUB_OFFLINE is set; unset it for a run that pushes" if offline else
               f"could not reach the Hugging Face Hub ({host}) to check the token; check the network and HF_ENDPOINT")
        raise PreflightError(f"preflight failed, nothing was run:\n  dataset.hub_repo = {config.dataset.hub_repo}: "
                             f"{why}") from None
    return ["the Hub"]


def check_run(config, endpoints: bool = True) -> list[str]:
    """Everything that can be known before any stage runs: input files, folders, then endpoints
    and the Hub token (unless `endpoints` is False: --skip-preflight)."""
    check_inputs(config)
    check_writable(run_folders(config))
    return check_endpoints(config) + check_hub(config) if endpoints else []


# --- during and after the run -------------------------------------------------------------------


def check_failures(model_calls: dict | None, max_failed_share: float,
                   outcome: str = "run failed, nothing was published") -> None:
    """Fail when a stage's model calls failed, all of them or more than `max_failed_share`."""
    problems = []
    for stage, tally in ((model_calls or {}).get("stages") or {}).items():
        requests = tally.get("requests", 0)
        failures = {k: v for k, v in (tally.get("failures") or {}).items() if k not in _NOT_FAILURES}
        failed = sum(failures.values())
        if not requests or not failed:
            continue
        share = failed / requests
        if failed == requests or share > max_failed_share:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(failures.items()))
            problems.append(f"stage {stage}: {failed} of {requests} model calls failed ({kinds}); the "
                            f"limit is run.max_failed_share = {max_failed_share}")
    if problems:
        raise StageFailedError(f"{outcome}:\n  " + "\n  ".join(problems)
                               + "\nFix the endpoint and run again: finished calls are cached.")


def check_not_empty(count: int, allow_empty: bool, dataset: str, funnel=()) -> None:
    """Refuse to publish a version with no items unless `allow_empty`; say where items went."""
    if count or allow_empty:
        return
    drops = "; ".join(f"{row['stage']}: " + ", ".join(f"{k} {v}" for k, v in row["dropped"].items())
                      for row in funnel if row.get("dropped"))
    raise EmptyVersionError(f"the run ended with no items for {dataset}, so no version was published"
                            + (f" (dropped: {drops})" if drops else "")
                            + "; set run.allow_empty = true to publish empty versions")

