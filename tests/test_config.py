import pytest

from mossforge.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_offline_config():
    cfg = load_config()
    assert cfg.generate.generator == "seedbank" and cfg.render.renderer == "offline"
    assert cfg.dedup.threshold == 0.9 and cfg.targets == [] and cfg.judges == []


@pytest.mark.parametrize("text, key", [
    ("[plan]\nper_tpye = 3\n", "plan.per_tpye: unknown key"),
    ("[plan]\nper_type = 0\n", "plan.per_type"),
    ("[plan]\nper_type = 'many'\n", "plan.per_type"),
    ("[plan]\ntypes = ['bogus']\n", "plan.types.0"),
    ("[dedup]\nthreshold = 1.5\n", "dedup.threshold"),
    ("[dedup]\nthresholds = { negated_harm = 2.0 }\n", "dedup.thresholds"),
    ("[dedup]\nthresholds = { nope = 0.9 }\n", "dedup.thresholds.nope"),
    ("[dataset]\nname = 'has spaces'\n", "dataset.name"),
    ("[render]\nrenderer = 'diffusers'\n", "render.renderer"),
    ("[[targets]]\nname = 'gpt'\n", "targets"),
    ("surprise = 1\n", "surprise: unknown key"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert key in str(error.value)
    assert str(tmp_path / "c.toml") in str(error.value)


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[plan\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_a_folder_or_a_non_utf8_config_is_a_one_line_error_not_a_crash(tmp_path):
    """`mossforge run --config adir` was an IsADirectoryError, a latin-1 file a UnicodeDecodeError
    (exit 1, "unexpected error"); both are bad input: exit 2, the file named."""
    from typer.testing import CliRunner

    from mossforge.cli import app

    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder; give a .toml config file"):
        load_config(folder)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[dataset]\n# caf\xe9\nname = 'x'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"line 2: byte 0xe9 is not UTF-8.*iconv"):
        load_config(latin)
    for path in (folder, latin):
        result = CliRunner().invoke(app, ["run", "--config", str(path), "--outputs", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert "unexpected" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_overrides_and_hash(tmp_path):
    base = load_config()
    changed = load_config(overrides={"plan.per_type": 7})
    assert changed.plan.per_type == 7
    assert changed.config_hash() != base.config_hash()
    # where things run does not change what is produced
    assert load_config(overrides={"run.out_dir": str(tmp_path)}).config_hash() == base.config_hash()
    # nor how many candidates a consensus task judges at once; a render batch can (diffusion rounding)
    assert load_config(overrides={"consensus.batch_size": 8}).config_hash() == base.config_hash()
    assert load_config(overrides={"render.batch_size": 8}).config_hash() != base.config_hash()
    assert load_config(overrides={"dedup.thresholds": {"negated_harm": 0.95}}).dedup.threshold_for("negated_harm") == 0.95


def test_shipped_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))
    assert configs, "configs/ should hold at least the offline config"
    for path in configs:
        load_config(path)


# --- the NO_OUTPUT marker: one source for the config hash and the cached tasks' keys -----------

def _full_config() -> dict:
    """A config that reaches every section (endpoints, roles, local models, reference files)."""
    return load_config(overrides={
        "endpoints": {"a": {"base_url": "http://127.0.0.1:8111/v1", "model": "m"},
                      "b": {"base_url": "http://example.org/v1", "model": "n"}},
        "generate.generator": "llm", "generate.endpoint": "b",
        "render.renderer": "diffusion", "render.diffusion.model": "some/model",
        "targets": [{"name": "t", "endpoint": "b"}, {"name": "u", "endpoint": "b"}],
        "target_check.classifier": "judge", "target_check.judge": {"name": "c", "endpoint": "b"},
        "judges": [{"name": "j", "endpoint": "b"}, {"name": "k", "endpoint": "b"}],
        "consensus.quorum": 1, "local_models": {"a": {}},
        "dedup.reference_files": [{"path": "refs.csv"}],
        "refine": {"enabled": True, "rewriter": "b", "max_seconds": 60.0,
                   "operators": ["er_salient_element", "llm_rewrite"]},
    }).model_dump(mode="json")


def _leaves(model, data, path=(), marked=False):
    from mossforge.config import _models_in, affects_output

    for name, field in model.model_fields.items():
        here, off = path + (name,), marked or not affects_output(field)
        inner, how = _models_in(field.annotation)
        value = data.get(name)
        if inner is not None and value is not None and (how == "" or value):
            items = (value.items() if isinstance(value, dict) else enumerate(value)) if how else [(None, value)]
            for key, item in items:
                yield from _leaves(inner, item, here if key is None else here + (key,), off)
        else:
            yield here, field, value, off


def _candidates(field, value):
    import typing

    args = [a for a in typing.get_args(field.annotation) if a is not type(None)]
    literal = [a for a in args for a in typing.get_args(a)] if field.annotation is not bool else []
    out = [v for v in typing.get_args(field.annotation) if v != value]  # a Literal's other choices
    out += [v for v in literal if isinstance(v, str) and v != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [round(value * 0.5, 4), round(value + 0.05, 4), 0.5]
    if isinstance(value, str):
        from mossforge.local_model import MODELS

        return out + [value + "x", "{description}, photo", "x" + value, "a", "b", *MODELS]
    if isinstance(value, list):
        return [value[:-1], value + value[:1]] if value else [["x"]]
    if isinstance(value, dict):
        return [{**value, "k": 1}, {"negated_harm": 0.5}]
    return out + [128, 2, 0.5, "x", "EulerScheduler", "m:f", "{description}", "64x64", True, "1/2",
                  {"name": "z", "endpoint": "b"}]


def _with(data, path, value):
    import copy

    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def test_every_marked_field_is_out_of_the_hash_and_every_other_field_in_it():
    from mossforge.config import Config, config_from_dict

    base = _full_config()
    base_hash = config_from_dict(base).config_hash()
    untested, marked = [], []
    for path, field, value, off in _leaves(Config, base):
        for candidate in _candidates(field, value):
            try:
                changed = config_from_dict(_with(base, path, candidate))
            except Exception:
                continue
            node = changed.model_dump(mode="json")
            for part in path:
                node = node[part]
            if node == value:
                continue
            if off:
                marked.append(".".join(map(str, path)))
                assert changed.config_hash() == base_hash, f"{path} is marked but changes the hash"
            else:
                assert changed.config_hash() != base_hash, f"{path} is not marked but leaves the hash"
            break
        else:
            untested.append(".".join(map(str, path)))
    # refine's target lists must name configured targets: checked one by one below
    assert set(untested) == {"refine.drive_targets", "refine.held_out_targets"}, f"no valid change for {untested}"
    for key in ("drive_targets", "held_out_targets"):
        changed = config_from_dict({**base, "refine": {**base["refine"], key: ["t"]}})
        assert changed.config_hash() != base_hash, f"refine.{key} leaves the hash"
    assert {"run.max_workers", "run.allow_empty", "cache.mode", "dataset.hub_repo", "consensus.batch_size",
            "endpoints.a.max_concurrency", "endpoints.b.api_key_env", "local_models.a.servers"} <= set(marked)


def test_the_task_cache_key_is_the_config_hash():
    """The flow's tasks get the whole config but are keyed on its hash: a marked field (where the
    version is pushed, the runner) recomputes nothing; an unmarked one recomputes everything."""
    from mossforge.flows.build import _CACHED, Run

    assert "config" in _CACHED["cache_policy"].policies[1].exclude
    base = load_config()
    pushed = load_config(overrides={"dataset.hub_repo": "me/data", "run.task_runner": "dask",
                                    "run.max_workers": 7, "consensus.batch_size": 3})
    other = load_config(overrides={"render.size": 256})
    assert Run(base).key == Run(pushed).key == base.config_hash() != Run(other).key


def test_reading_a_toml_imports_neither_the_model_client_nor_openai_nor_pyarrow(tmp_path):
    """(pyarrow came along with the Hub repo's check, 0.15 s, also for configs without a Hub repo)"""
    import subprocess
    import sys

    config = tmp_path / "c.toml"
    config.write_text('[endpoints.a]\nbase_url = "http://x/v1"\nmodel = "m"\n'
                      '[generate]\ngenerator = "llm"\nendpoint = "a"\n')
    code = ("import sys\nimport mossforge.config as c\n"
            f"cfg = c.load_config({str(config)!r})\nassert cfg.endpoints['a'].model == 'm'\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'httpx2', 'tenacity', 'pyarrow')"
            " or m == 'mossforge.client'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("repo", ["noslash", "org/bad--name", "org/name.git", "org/-name", "a/b/c"])
def test_hub_repo_is_checked_by_the_hubs_rules(repo):
    """The config accepted 'org/bad--name' and 'org/name.git', which `publish --repo` (and the Hub)
    refuse: a run would build for an hour and then fail to push. One rule for both now."""
    with pytest.raises(ConfigError, match=r"dataset\.hub_repo: .* is not a Hugging Face repo id ORG/NAME"):
        load_config(overrides={"dataset.hub_repo": repo})
    assert load_config(overrides={"dataset.hub_repo": "my-org/over.refusal_v2"}).dataset.hub_repo == "my-org/over.refusal_v2"
