"""[refine] is validated with messages that name the key; off by default it changes no hash."""

import pytest

from mossforge.config import ConfigError, load_config

TARGETS = {"endpoints": {"e": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}},
           "targets": [{"name": "a", "endpoint": "e"}, {"name": "b", "endpoint": "e"}]}


@pytest.mark.parametrize("refine, key", [
    ({"held_out_targets": ["zz"]}, "refine.held_out_targets"),
    ({"drive_targets": ["a"], "held_out_targets": ["a"]}, "refine.held_out_targets"),
    ({"operators": ["no_such_operator"]}, "refine.operators"),
    ({"operators": ["llm_rewrite"]}, "refine.rewriter"),
    ({"rewriter": "nowhere"}, "refine.rewriter"),
])
def test_bad_refine_settings_name_the_key(refine, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides={**TARGETS, "refine": {"enabled": True, **refine}})


def test_refine_needs_targets():
    with pytest.raises(ConfigError, match=r"refine\.enabled"):
        load_config(overrides={"refine.enabled": True})


def test_held_out_targets_are_not_counted_and_an_unused_section_changes_no_hash():
    on = load_config(overrides={**TARGETS, "refine": {"enabled": True, "held_out_targets": ["b"]}})
    assert on.counted_targets() == ["a"]
    off = load_config(overrides={**TARGETS, "refine": {"enabled": False, "held_out_targets": ["b"]}})
    assert off.counted_targets() == ["a", "b"]
    assert off.config_hash() == load_config(overrides=TARGETS).config_hash() != on.config_hash()
