"""Run configuration: TOML files validated by pydantic, failing before any work on bad input.

Every section forbids unknown keys, so a typo ("per_tpye") is an error naming the key instead of a
setting that is silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mossforge.errors import InputError
from mossforge.schema import STIMULUS_TYPES, StimulusType


class ConfigError(InputError):
    """A config that cannot be used; the message names the file and the offending key."""


# The one marker on settings that do not change what a run produces (where it runs, how fast, where
# a version is pushed): they are left out of the config hash (so of a version's identity) and so
# of every cached task's key. Everything not marked is in both.
NO_OUTPUT = {"affects_output": False}


def affects_output(field: Any) -> bool:
    """Whether a pydantic field (a `FieldInfo`) is part of what a run produces."""
    extra = field.json_schema_extra
    return not (isinstance(extra, dict) and extra.get("affects_output") is False)


def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """(the model class inside an annotation, how it is held: "", "items" for a dict or list)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (dict, list):
        model, _ = _models_in(args[-1]) if args else (None, "")
        return model, "items" if model else ""
    for arg in args:  # Optional[Model], Union[...]
        model, how = _models_in(arg)
        if model is not None:
            return model, how
    return None, ""


def output_exclude(model: type[BaseModel]) -> dict:
    """A `model_dump(exclude=...)` spec that leaves out every field marked `NO_OUTPUT`, at any depth."""
    spec: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if not affects_output(field):
            spec[name] = True
            continue
        inner, how = _models_in(field.annotation)
        if inner is not None and (sub := output_exclude(inner)):
            spec[name] = {"__all__": sub} if how == "items" else sub
    return spec


class EndpointConfig(BaseModel):
    """A model endpoint, declared once by name and referred to by that name everywhere else.
    (Declared here with the config; `mossforge.client` imports it from here.)"""

    # Errors never echo input values: a key pasted into the wrong field must not reach a log.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1)
    base_url: str = Field(min_length=1)
    # the NAME of the environment variable, never the key
    api_key_env: str | None = Field(None, json_schema_extra=NO_OUTPUT)
    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)  # default request parameters
    # limits and prices: how fast and what it costs, not what comes back
    max_concurrency: int = Field(4, ge=1, json_schema_extra=NO_OUTPUT)
    rpm: float | None = Field(None, gt=0, json_schema_extra=NO_OUTPUT)
    tpm: float | None = Field(None, gt=0, json_schema_extra=NO_OUTPUT)
    timeout_s: float = Field(60.0, gt=0, json_schema_extra=NO_OUTPUT)
    max_retries: int = Field(4, ge=0, json_schema_extra=NO_OUTPUT)
    price_per_1k_input: float | None = Field(None, ge=0, json_schema_extra=NO_OUTPUT)
    price_per_1k_output: float | None = Field(None, ge=0, json_schema_extra=NO_OUTPUT)

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_config(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError("an API key does not belong in a config: put it in an environment "
                             "variable and name that variable in api_key_env")
        return data


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatasetSection(_Section):
    name: str = Field("mossforge-offline", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
    license: str = "cc-by-4.0"
    intended_use: str = "evaluation"  # evaluation, not training, unless the user says otherwise
    description: str = (
        "Benign image+text queries that look alarming, for measuring over-refusal "
        "(oversensitivity) of multimodal models."
    )
    # Where `mossforge run` pushes each version (a Hugging Face dataset repo, "org/name"); none: local
    # only. Not part of the config hash nor of a version's id: where a version goes is not what it is.
    hub_repo: str | None = Field(None, json_schema_extra=NO_OUTPUT)
    # create the repo private (an existing repo keeps its visibility)
    hub_private: bool = Field(False, json_schema_extra=NO_OUTPUT)

    @field_validator("hub_repo")
    @classmethod
    def _hub_repo_id(cls, value: str | None) -> str | None:
        if value is None:  # (the import below brings pyarrow along: 0.15 s for every config without a Hub repo)
            return value
        from mossforge.release.hub import repo_id_problem  # the Hub's rules, as `publish --repo` applies them

        problem = repo_id_problem(value)
        if problem:
            raise ValueError(f"{value!r} is not a Hugging Face repo id ORG/NAME ({problem})")
        return value


# dataset keys that say where, not what (derived from the marker; the card's metadata leaves them out)
PUBLISH_TARGET_KEYS = tuple(name for name, f in DatasetSection.model_fields.items() if not affects_output(f))


class PlanSection(_Section):
    per_type: int = Field(100, ge=1, le=100_000)
    types: list[StimulusType] = Field(default_factory=lambda: list(STIMULUS_TYPES), min_length=1)
    seed: int = 0

    @field_validator("types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each stimulus type may appear once")
        return value


class GenerateSection(_Section):
    generator: Literal["seedbank", "llm"] = "seedbank"
    endpoint: str | None = None  # for "llm": a name declared under [endpoints]
    batch_size: int = Field(256, ge=1, le=100_000)  # slots per generate task
    candidates_per_call: int = Field(4, ge=1, le=50)
    temperature: float | None = Field(1.0, ge=0.0, le=2.0)  # None: the endpoint's params decide
    few_shot: int = Field(3, ge=0, le=20)  # seed-bank examples shown in each prompt
    avoid_recent: int = Field(8, ge=0, le=100)  # recent accepted questions the model must not repeat
    structured: bool = True  # response_format json_schema; false for servers that lack it
    repair: bool = True  # one follow-up request to fix an unusable answer before dropping it
    # At most this many calls in flight; call i's avoid-list comes from calls 0 .. i - this. Part of
    # what a prompt contains (so of the cache key): a fixed number, not the endpoint's concurrency.
    # Keep it at least the endpoint's max_concurrency, or it, not the endpoint, bounds throughput.
    calls_in_flight: int = Field(32, ge=1, le=1000)


class CacheSection(_Section):
    """The model-call cache: a re-run, or a resumed run, repeats no model call."""

    dir: str | None = None  # default: <run.work_dir>/model-cache
    mode: Literal["use", "refresh", "off"] = "use"


class ReferenceFile(_Section):
    path: str
    column: str = "question"


class DedupSection(_Section):
    enabled: bool = True
    threshold: float = Field(0.9, gt=0.0, le=1.0)
    thresholds: dict[StimulusType, float] = Field(default_factory=dict)  # per-type overrides
    against_published: bool = True  # earlier versions of the same dataset under run.out_dir
    reference_files: list[ReferenceFile] = Field(default_factory=list)

    @field_validator("thresholds")
    @classmethod
    def _in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for key, threshold in value.items():
            if not 0.0 < threshold <= 1.0:
                raise ValueError(f"threshold for {key} must be in (0, 1], got {threshold}")
        return value

    def threshold_for(self, stimulus_type: str) -> float:
        return self.thresholds.get(stimulus_type, self.threshold)


class DiffusionSection(_Section):
    """`[render.diffusion]`: a `diffusers` text-to-image pipeline (see generators/diffusion.py)."""

    model: str | None = None  # a Hub model id or a local folder (save_pretrained layout)
    device: Literal["auto", "cuda", "cpu"] = "auto"  # auto: cuda when available, else cpu (slow)
    dtype: Literal["auto", "fp16", "bf16", "fp32"] = "auto"  # auto: fp16 on cuda, fp32 on cpu
    steps: int = Field(30, ge=1, le=500)
    guidance: float = Field(7.0, ge=0.0, le=50.0)
    width: int | None = Field(None, ge=64, le=4096)  # default: render.size
    height: int | None = Field(None, ge=64, le=4096)
    scheduler: str | None = Field(None, pattern=r"^[A-Za-z0-9]+Scheduler$")  # a diffusers class
    negative_prompt: str | None = None
    prompt_template: str = "{description}"  # {description}: the candidate's image description
    batch_size: int = Field(4, ge=1, le=256)  # images per pipeline call
    max_rerenders: int = Field(2, ge=0, le=20)  # new seeds for a flagged or blank image, then drop
    blank_std: float = Field(2.0, ge=0.0, le=255.0)  # pixel std below this: a blank image
    # Your own NSFW classifier, "module:function" taking a PIL image and returning True to flag it
    # (the pipeline's own safety checker, where it has one, is always honoured too).
    nsfw_checker: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    gpu_limit: str = Field("mossforge-gpu", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    gpu_slots: int = Field(1, ge=1, le=64)  # Prefect global concurrency limit: batches at once

    @field_validator("prompt_template")
    @classmethod
    def _has_description(cls, value: str) -> str:
        if "{description}" not in value:
            raise ValueError("must contain {description}")
        return value


class ImageApiSection(_Section):
    """`[render.image_api]`: OpenAI-compatible image generation (`render.endpoint`)."""

    size: str | None = Field(None, pattern=r"^[0-9]+x[0-9]+$")  # default: render.size squared
    prompt_template: str = "{description}"
    params: dict[str, Any] = Field(default_factory=dict)  # e.g. {quality = "low"}
    blank_std: float = Field(2.0, ge=0.0, le=255.0)


class RenderSection(_Section):
    renderer: Literal["offline", "diffusion", "image_api"] = "offline"
    size: int = Field(512, ge=64, le=2048)
    batch_size: int = Field(128, ge=1, le=100_000)  # candidates per render task
    endpoint: str | None = None  # for "image_api": a name declared under [endpoints]
    diffusion: DiffusionSection = Field(default_factory=DiffusionSection)
    image_api: ImageApiSection = Field(default_factory=ImageApiSection)
    # Perceptual-hash near-duplicates among the rendered images: counted in the funnel always;
    # "drop" also drops all but the first (by id) of each group.
    near_duplicate_images: Literal["report", "drop"] = "report"
    phash_distance: int = Field(4, ge=0, le=64)  # Hamming distance at or below which images match


class ModelRole(_Section):
    """A model in a role (a target or a judge): a declared endpoint and how to ask it.

    The endpoint holds the connection, the model id and its limits; the role holds what is
    particular to asking in that role, so one endpoint can serve as a target and as a judge.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    endpoint: str = Field(min_length=1)  # a name declared under [endpoints]
    system_prompt: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)  # over the endpoint's params, per request
    send_image: bool = True  # attach the image as a data URL; false for text-only endpoints


class TargetConfig(ModelRole):
    """A target model. The field's protocol by default: question verbatim, image attached, no
    system prompt, temperature 0."""

    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0})
    # For text-only models: the image's description goes in the user turn instead of the image
    # ("[Image: <description>] <question>"); every answer records it and the card says so.
    image_as_text: bool = False


class LocalModelSection(_Section):
    """`[local_models.<endpoint>]`: mossforge runs the llama.cpp server(s) behind that endpoint
    (mossforge/local_model.py) for the duration of `run` and `eval`, or `local-model start`."""

    model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # a pinned model of mossforge.local_model.MODELS
    # llama.cpp processes behind the endpoint's port (how fast, not what)
    servers: int = Field(1, ge=1, le=16, json_schema_extra=NO_OUTPUT)
    threads: int = Field(1, ge=1, le=64)  # per server; one thread each held its speed on a busy machine
    n_ctx: int = Field(2048, ge=256, le=32768)
    # a server that dies is restarted this often, then the run fails
    max_restarts: int = Field(2, ge=0, le=20, json_schema_extra=NO_OUTPUT)
    start_timeout_s: float = Field(180.0, gt=0, json_schema_extra=NO_OUTPUT)

    @field_validator("model")
    @classmethod
    def _pinned(cls, value: str) -> str:
        from mossforge.local_model import MODELS

        if value not in MODELS:
            raise ValueError(f"unknown local model {value!r}; pinned models: {', '.join(MODELS)}")
        return value


class TargetCheckSection(_Section):
    """How target answers are labelled and which candidates survive."""

    classifier: Literal["rules", "judge", "rules_then_judge"] = "rules"
    judge: ModelRole | None = None  # for "judge" and "rules_then_judge"
    min_refusals: int = Field(1, ge=1)  # keep when at least this many targets refuse
    count_partial: bool = True  # a partial refusal counts towards min_refusals


class JudgeConfig(ModelRole):
    """A judge of the consensus panel. `panel` judges answer a JSON label (benign / controversial /
    harmful) with a rationale and a category; `guard` judges (Llama Guard style) answer `safe` or
    `unsafe` with category codes, read as benign or harmful. Temperature 0 by default."""

    format: Literal["panel", "guard"] = "panel"
    weight: float = Field(1.0, gt=0)  # for the weighted rule
    structured: bool = False  # send a json_schema response_format (panel judges on servers that have it)
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0})


class ConsensusSection(_Section):
    """How the judges' votes make one label. Abstentions (a judge that refuses to judge, answers off
    format or fails) are recorded but never counted as votes."""

    rule: Literal["unanimous", "quorum", "weighted"] = "unanimous"
    quorum: int | None = Field(None, ge=1)  # rule "quorum": benign when at least this many vote benign
    weighted_threshold: float = Field(0.5, gt=0.0, le=1.0)  # rule "weighted": benign weight share needed
    harmful_share: float = Field(0.5, gt=0.0, le=1.0)  # not benign: harmful at this share of valid votes, else controversial
    min_votes: int = Field(2, ge=1)  # fewer valid votes: no label, the item is dropped (too_few_votes)
    controversial_split: bool = False  # publish controversial items as their own split (else drop them)
    contrast_check: bool = True  # the harmful contrasts through the same panel, as a sanity check
    # Candidates per consensus task. Each batch ends by waiting for its slowest calls, so small
    # batches waste endpoint slots (64: 88% of the ideal throughput at 0.5 s, 200: 93%).
    # (Each candidate is judged alone: not part of what is produced.)
    batch_size: int = Field(256, ge=1, le=100_000, json_schema_extra=NO_OUTPUT)
    human_labels: str | None = None  # a reviewed CSV from `mossforge review export`
    human_mode: Literal["override", "join"] = "override"  # a reviewer's label replaces, or joins, the panel


class RunSection(_Section):
    """How the run executes. Not part of the config hash: it does not change what is produced."""

    out_dir: str = "outputs"
    work_dir: str | None = None  # default: <out_dir>/.work
    max_workers: int = Field(2, ge=1, le=256)  # bounded thread pool for batch tasks
    # Processes for CPU-bound batch work in this process (the offline renderer); 0: one per core.
    # Output is identical for any number (tests/test_render_pool.py).
    cpu_workers: int = Field(0, ge=0, le=256)
    # Where batch tasks run (flows/runners.py): "threads" (this process, max_workers threads),
    # "dask" (prefect-dask: a local cluster of dask_workers processes, or the cluster at
    # dask_address) or "ray" (prefect-ray, `pip install mossforge[ray]`; ray_address or local).
    task_runner: Literal["threads", "dask", "ray"] = "threads"
    dask_address: str | None = None  # e.g. "tcp://10.0.0.5:8786"; None: start a local cluster
    dask_workers: int = Field(2, ge=1, le=1024)  # processes of the local cluster
    dask_threads_per_worker: int = Field(1, ge=1, le=256)
    ray_address: str | None = None  # e.g. "ray://10.0.0.5:10001"; None: start Ray locally
    # Policy (mossforge/preflight.py): a stage whose model calls failed, all of them or more than
    # this share, fails the run and nothing is published; a run with no items publishes nothing
    # unless allow_empty; a second run into the same dataset folder waits for the first (or fails
    # at once when wait_for_lock is false, `--no-wait`).
    max_failed_share: float = Field(0.2, ge=0.0, le=1.0)
    allow_empty: bool = False
    wait_for_lock: bool = True

    def work_path(self) -> Path:
        return Path(self.work_dir) if self.work_dir else Path(self.out_dir) / ".work"


class RefineSection(_Section):
    """Target-aware refinement (off by default): near-misses of the target check (too few targets
    refused) are mutated (seed-bank recombination; LLM rewriting when `rewriter` names an endpoint)
    and sent back through dedup, render and the target check, round after round, within a budget.
    Survivors go on to the judge panel like any other candidate."""

    enabled: bool = False
    rounds: int = Field(2, ge=1, le=20)
    operators: list[str] = Field(default_factory=list)  # [] = every recombination operator (+ llm_rewrite with a rewriter)
    per_parent: int = Field(2, ge=1)  # variants per near-miss and round
    max_parents: int = Field(200, ge=1)  # near-misses refined per round (nearest misses first)
    include_none: bool = True  # after the near-misses, also candidates no target refused
    max_variants: int = Field(500, ge=1)  # over all rounds
    max_calls: int = Field(200, ge=0)  # rewriter calls over all rounds (cached ones count: a re-run proposes the same)
    max_seconds: float | None = Field(None, gt=0)  # a wall-clock cap (makes the result depend on speed)
    drive_targets: list[str] = Field(default_factory=list)  # targets whose refusals drive the search ([] = all)
    held_out_targets: list[str] = Field(default_factory=list)  # asked, never counted: the transfer check
    rewriter: str | None = None  # an [endpoints] name for llm_rewrite
    temperature: float | None = Field(0.7, ge=0, le=2)


class Config(_Section):
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    plan: PlanSection = Field(default_factory=PlanSection)
    generate: GenerateSection = Field(default_factory=GenerateSection)
    dedup: DedupSection = Field(default_factory=DedupSection)
    render: RenderSection = Field(default_factory=RenderSection)
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    # a cache hit returns what the call returned
    cache: CacheSection = Field(default_factory=CacheSection, json_schema_extra=NO_OUTPUT)
    targets: list[TargetConfig] = Field(default_factory=list)  # none: target check is not run
    target_check: TargetCheckSection = Field(default_factory=TargetCheckSection)
    judges: list[JudgeConfig] = Field(default_factory=list)  # none: consensus label is not run
    consensus: ConsensusSection = Field(default_factory=ConsensusSection)
    refine: RefineSection = Field(default_factory=RefineSection)
    run: RunSection = Field(default_factory=RunSection, json_schema_extra=NO_OUTPUT)  # where and how fast
    local_models: dict[str, LocalModelSection] = Field(default_factory=dict)  # key: an endpoint name

    @model_validator(mode="before")
    @classmethod
    def _name_endpoints(cls, data: Any) -> Any:
        """`[endpoints.NAME]` tables get their `name` from the key."""
        if isinstance(data, dict) and isinstance(data.get("endpoints"), dict):
            data = {**data, "endpoints": {
                key: ({"name": key, **value} if isinstance(value, dict) else value)
                for key, value in data["endpoints"].items()
            }}
        return data

    @model_validator(mode="after")
    def _endpoint_declared(self) -> Config:
        if self.generate.generator == "llm" and not self.generate.endpoint:
            raise ValueError("generate.endpoint: the llm generator needs an endpoint name")
        if self.render.renderer == "diffusion" and not self.render.diffusion.model:
            raise ValueError("render.diffusion.model: the diffusion renderer needs a model id or path")
        if self.render.renderer == "image_api" and not self.render.endpoint:
            raise ValueError("render.endpoint: the image_api renderer needs an endpoint name")
        uses = {"generate.endpoint": self.generate.endpoint if self.generate.generator == "llm" else None,
                "render.endpoint": self.render.endpoint if self.render.renderer == "image_api" else None}
        for field_name in ("targets", "judges"):
            roles = getattr(self, field_name)
            names = [role.name for role in roles]
            if len(set(names)) != len(names):
                raise ValueError(f"{field_name}: each name may appear once (got {names})")
            uses.update({f"{field_name}[{role.name}].endpoint": role.endpoint for role in roles})
        if self.target_check.judge is not None:
            uses["target_check.judge.endpoint"] = self.target_check.judge.endpoint
        elif self.targets and self.target_check.classifier != "rules":
            raise ValueError(f"target_check.judge: the {self.target_check.classifier!r} classifier "
                             "needs a judge (a table with name and endpoint)")
        if self.target_check.min_refusals > max(len(self.targets), 1):
            raise ValueError(f"target_check.min_refusals: {self.target_check.min_refusals} is more "
                             f"than the {len(self.targets)} targets configured")
        self._consensus_rule_fits()
        self._refine_fits()
        if self.refine.enabled and self.refine.rewriter:
            uses["refine.rewriter"] = self.refine.rewriter
        uses.update({f"local_models.{name}": name for name in self.local_models})
        for name in self.local_models:
            if name in self.endpoints:
                from mossforge.local_model import LocalModelError, endpoint_port

                try:
                    endpoint_port(self.endpoints[name].base_url, name)
                except LocalModelError as error:
                    raise ValueError(str(error)) from None
        for key, name in uses.items():
            if name is not None and name not in self.endpoints:
                declared = ", ".join(sorted(self.endpoints)) or "none"
                raise ValueError(f"{key}: {name!r} is not declared under [endpoints] "
                                 f"(declared: {declared})")
        return self

    def _refine_fits(self) -> None:
        refine = self.refine
        if not refine.enabled:
            return
        if not self.targets:
            raise ValueError("refine.enabled: refinement needs [[targets]] (it refines what they did not refuse)")
        names = {t.name for t in self.targets}
        for key in ("drive_targets", "held_out_targets"):
            unknown = [n for n in getattr(refine, key) if n not in names]
            if unknown:
                raise ValueError(f"refine.{key}: {', '.join(map(repr, unknown))} is not a configured target "
                                 f"(targets: {', '.join(sorted(names))})")
        if set(refine.drive_targets) & set(refine.held_out_targets):
            raise ValueError("refine.held_out_targets: a target cannot both drive the search and be held out")
        counted = len(refine.drive_targets) if refine.drive_targets else len(names) - len(refine.held_out_targets)
        if counted < self.target_check.min_refusals:
            raise ValueError(f"refine.held_out_targets: {counted} targets are left to count refusals, fewer than "
                             f"target_check.min_refusals = {self.target_check.min_refusals}")
        from mossforge.generators.refine_ops import OPERATORS  # (not refine: that imports the client)

        known = {*OPERATORS, "llm_rewrite"}
        unknown = [op for op in refine.operators if op not in known]
        if unknown:
            raise ValueError(f"refine.operators: unknown {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(sorted(known))})")
        if "llm_rewrite" in refine.operators and not refine.rewriter:
            raise ValueError("refine.rewriter: the llm_rewrite operator needs an [endpoints] name to rewrite with")

    def counted_targets(self) -> list[str]:
        """The targets whose refusals decide the target check (held-out targets are asked, not counted)."""
        refine = self.refine
        if not refine.enabled:
            return [t.name for t in self.targets]
        if refine.drive_targets:
            return list(refine.drive_targets)
        return [t.name for t in self.targets if t.name not in refine.held_out_targets]

    def _consensus_rule_fits(self) -> None:
        rule, judges = self.consensus, len(self.judges)
        if rule.rule == "quorum" and rule.quorum is None:
            raise ValueError("consensus.quorum: the quorum rule needs quorum = k (benign when k judges say so)")
        if not self.judges:
            return
        if rule.min_votes > judges:
            raise ValueError(f"consensus.min_votes: {rule.min_votes} is more than the {judges} judges configured")
        if rule.rule == "quorum" and rule.quorum > judges:
            raise ValueError(f"consensus.quorum: {rule.quorum} is more than the {judges} judges configured")

    def content_dict(self) -> dict[str, Any]:
        """The settings that change what is produced: every field not marked `NO_OUTPUT` (so not
        `run`, where and how fast; not `cache`, a cache hit returns what the call returned; not an
        endpoint's limits and prices, nor the Hub repository a version is pushed to, nor how many
        candidates a consensus task takes). The generate and render batch sizes stay: an LLM's
        avoid-list is per batch, and a diffusion batch can round pixels differently."""
        data = self.model_dump(mode="json", exclude=output_exclude(Config))
        if not data["local_models"]:
            del data["local_models"]  # configs without local models keep the hash they had
        if not self.refine.enabled:
            del data["refine"]  # nor do configs that do not refine
        for target in data["targets"]:  # likewise configs without text-only targets
            if not target.get("image_as_text"):
                target.pop("image_as_text", None)
        return data

    def cache_path(self) -> Path:
        return Path(self.cache.dir) if self.cache.dir else self.run.work_path() / "model-cache"

    def config_hash(self) -> str:
        canonical = json.dumps(self.content_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in item and item["type"] not in ("missing", "value_error"):
            message = f"{message} (got {item['input']!r})"
        lines.append(f"  {key}: {message}" if key else f"  {message}")  # top-level messages name their key
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load a TOML config (or the offline defaults when `path` is None) and apply overrides.

    `overrides` maps dotted keys to values, e.g. {"plan.per_type": 10}, as the CLI flags do.
    """
    data: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        source = str(path)
        from mossforge.tables import check_not_folder, check_utf8

        check_not_folder(path, "a .toml config file", ConfigError)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))  # (-sig: a BOM, as Notepad writes, is not TOML)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except UnicodeDecodeError:
            check_utf8(Path(path), ConfigError)  # names the line and byte, and the iconv fix
            raise
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"invalid config {path}: not valid TOML: {error}") from None
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config_from_dict(data, source)
