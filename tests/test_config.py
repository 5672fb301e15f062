import subprocess
import sys

import pytest

from srlkit.config import (
    Recipe,
    TrainConfig,
    apply_overrides,
    load_recipe,
    parse_value,
    to_toml,
)
from srlkit.errors import ConfigError


def test_defaults_round_trip_through_toml(tmp_path):
    r = Recipe()
    p = tmp_path / "r.toml"
    p.write_text(to_toml(r))
    assert load_recipe(p) == r


def test_overrides_and_partial_phases(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('[train.phases.srl]\nlr = 1e-6\n')
    r = load_recipe(p, ["train.phases.rlvr.steps=3", "train.curriculum=rlvr"])
    assert r.train.phases["srl"].lr == 1e-6
    assert r.train.phases["srl"].table == "srl"  # default kept for fields not given
    assert r.train.phases["rlvr"].steps == 3
    assert r.train.curriculum == ["rlvr"]


def test_unknown_key_is_one_line_error(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text("[train]\nlearning_rat = 1\n")
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    assert "learning_rat" in str(e.value) and "\n" not in str(e.value)


def test_bad_override_shape():
    with pytest.raises(ConfigError):
        apply_overrides({}, ["nokey"])


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("x") == "x" and parse_value("false") is False


def test_curriculum_accepts_comma_string():
    assert TrainConfig(curriculum="srl,rlvr").curriculum == ["srl", "rlvr"]


def test_config_module_imports_no_torch():
    code = "import sys, srlkit.config, srlkit.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
