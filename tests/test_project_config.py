"""``[tool.direktiv-sdk]`` in pyproject.toml: command line > environment > config > default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("direktiv-sdk"))

pytest_plugins = ["pytester"]

PYPROJECT = """\
[project]
name = "flows"

[tool.direktiv-sdk]
store = "file://./from-config"
namespace = "cfg"
secrets = { token = "s3cret" }

[tool.direktiv-sdk.functions]
shout = "fns/app.py:shout"
"""

FLOW = """\
functions: [{id: shout, type: knative-workflow, image: x}]
states:
- id: a
  type: action
  action: {function: shout, secrets: [token], input: {text: 'jq(.secrets.token)'}}
  transition: b
- {id: b, type: setter, variables: [{key: said, scope: namespace, value: 'jq(.return)'}]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (tmp_path / "fns").mkdir()
    (tmp_path / "fns" / "app.py").write_text(
        "def shout(input, context):\n    return input['text'].upper()\n", encoding="utf-8"
    )
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "flow.yaml").write_text(FLOW, encoding="utf-8")
    return tmp_path


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DIREKTIV_")}
    return subprocess.run(
        [CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
        env={**full, **env},
    )  # fmt: skip


def test_the_cli_reads_store_namespace_functions_and_secrets(project: Path) -> None:
    sub = project / "flows"  # the nearest pyproject.toml is found from a subfolder too
    done = _cli(sub, "run", "flow.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"return":"S3CRET"}\n'
    got = _cli(sub, "vars", "get", "said", "--store", f"file://{sub}/from-config")
    assert got.stdout == '"S3CRET"'  # namespace cfg, from the config...
    assert _cli(sub, "vars", "get", "said").returncode == 0  # ...and so is the store
    assert _cli(sub, "vars", "get", "said", "--namespace", "default").returncode == 1


def test_command_line_beats_environment_beats_config(project: Path) -> None:
    sub = project / "flows"
    env = {"DIREKTIV_STORE_URL": f"file://{project}/from-env", "DIREKTIV_NAMESPACE": "envns"}
    assert _cli(sub, "run", "flow.yaml", **env).returncode == 0
    assert (project / "from-env" / "envns").is_dir()
    assert not (sub / "from-config").exists()
    done = _cli(sub, "run", "flow.yaml", "--store", "memory://", "--namespace", "cli", **env)
    assert done.returncode == 0
    done = _cli(sub, "run", "flow.yaml", "--function", "shout=fns.app:nope", **env)
    assert done.returncode == 2  # --function replaces the config's target for that id
    assert "no module named 'fns'" in done.stderr


def test_help_says_which_setting_wins(project: Path) -> None:
    shown = " ".join(_cli(project, "run", "--help").stdout.split())
    assert "the command line wins over the environment" in shown
    assert "[tool.direktiv-sdk] in the nearest pyproject.toml" in shown


def test_a_bad_config_is_a_clear_error(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.direktiv-sdk]\nstorage = "x"\n')
    done = _cli(project, "vars", "list")
    assert done.returncode == 2
    assert done.stderr == (
        f"direktiv-sdk: error: {project / 'pyproject.toml'}: [tool.direktiv-sdk]: unknown key "
        "'storage'; known keys: functions, namespace, secrets, sidecar-port, store\n"
    )


def test_the_pytest_plugin_reads_the_store_and_the_sidecar_port(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.direktiv-sdk]\nstore = "file://./cfg-store"\nsidecar-port = 0\n'
    )
    pytester.makepyfile(
        "def test_store(direktiv_store_url, direktiv_sidecar_address):\n"
        "    assert direktiv_store_url == 'file://./cfg-store'\n"
        "    assert direktiv_sidecar_address == ('127.0.0.1', 0)\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["direktiv: store file://./cfg-store (*pyproject.toml*)"])
