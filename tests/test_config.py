"""One validated config: TOML file, then EDGEPOSE_<SECTION>_<KEY>, then CLI flags."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli

from edgepose.config import build_config, redact_url
from edgepose.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edgepose.toml"
    path.write_text(text)
    return path


def test_layers_file_env_cli(tmp_path: Path) -> None:
    file = _write(tmp_path, '[model]\nthreads = 1\ndelegate = "cpu"\n[source]\nfps = 12.5\n')
    config = build_config(file, environ={"EDGEPOSE_MODEL_THREADS": "3", "EDGEPOSE_SOURCE_REALTIME": "yes"})
    assert (config.model.threads, config.model.delegate, config.source.fps, config.source.realtime) == (
        3, "cpu", 12.5, True,
    )  # fmt: skip
    config = build_config(file, environ={"EDGEPOSE_MODEL_THREADS": "3"}, overrides={"model": {"threads": 2}})
    assert config.model.threads == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[model]\nthreds = 2\n", "unknown key model.threds"),
        ("[modle]\nthreads = 2\n", "unknown section [modle]"),
        ("[model]\nthreads = 'two'\n", "whole number"),
        ("[model]\ndelegate = 'gpu'\n", "delegate must be one of"),
        ("[mqtt]\nurl = 'http://broker'\n", "mqtt url"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_invalid_files_are_rejected(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        build_config(_write(tmp_path, text), environ={})
    assert needle in str(info.value)


def test_unknown_env_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="EDGEPOSE_MODEL_THREDS"):
        build_config(environ={"EDGEPOSE_MODEL_THREDS": "2"})


def test_runtime_aliases_are_normalised() -> None:
    assert build_config(environ={}, overrides={"model": {"runtime": "litert"}}).model.runtime == "ai_edge_litert"


def test_cli_bad_config_file_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("--config", str(_write(tmp_path, "[model]\nbogus = 1\n")), "--print-config")
    assert_one_line_error(proc, 2, "unknown key model.bogus")
    proc = run_cli("--config", str(tmp_path / "missing.toml"), "--print-config")
    assert_one_line_error(proc, 2, "config file not found")


def test_print_config_merges_and_redacts(tmp_path: Path) -> None:
    file = _write(tmp_path, '[model]\nthreads = 1\n[mqtt]\nurl = "mqtt://cam:s3cret@broker.local:1883"\n'
                            '[preview]\ntoken = "hunter2"\n')  # fmt: skip
    proc = run_cli("infer", "--config", str(file), "--threads", "2", "--print-config", "x.jpg",
                   env={"EDGEPOSE_MODEL_DELEGATE": "cpu"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    printed = tomllib.loads(proc.stdout)
    assert printed["model"]["threads"] == 2 and printed["model"]["delegate"] == "cpu"
    assert "s3cret" not in proc.stdout and "hunter2" not in proc.stdout
    assert printed["mqtt"]["url"] == "mqtt://cam:***@broker.local:1883"
    assert printed["preview"]["token"] == "***"


def test_common_flags_work_before_and_after_the_subcommand() -> None:
    before = run_cli("--threads", "1", "run", "--print-config")
    after = run_cli("run", "--threads", "1", "--print-config")
    assert before.returncode == after.returncode == 0
    assert before.stdout == after.stdout
    assert tomllib.loads(after.stdout)["model"]["threads"] == 1


def test_redact_url_without_password_is_unchanged() -> None:
    assert redact_url("mqtts://cam@host:8883") == "mqtts://cam@host:8883"
