"""A user's own environment, given as Gymnasium's `module:id` (README, "Your own environment"): both scripts
train on it in every vectorization mode, and a module that cannot be imported is one line naming it."""

import json
import os

import pytest

from tests.helpers import ROOT, run_script

ENV_OF = {"ppo_discrete.py": "tests.custom_env_module:CustomDiscrete-v0",
          "ppo_continuous_beta.py": "tests.custom_env_module:CustomBox-v0"}
SMALL = ["--total-timesteps", "64", "--num-envs", "2", "--num-steps", "32", "--eval-episodes", "2"]


def run_here(script, *argv, cwd):
    """The script run from `cwd`, which holds nothing of the repository, with the repository on PYTHONPATH
    (as a user's module on theirs)."""
    return run_script(script, *argv, cwd=cwd, env=dict(os.environ, PYTHONPATH=ROOT))


@pytest.mark.parametrize("script", ENV_OF)
@pytest.mark.parametrize("mode", ["sync", "async", "auto"])
def test_a_module_env_trains_in_every_vectorization_mode(script, mode, tmp_path):
    env_id = ENV_OF[script]
    done = run_here(script, "--env-id", env_id, "--vectorization-mode", mode, "--save-model", *SMALL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [run_dir] = os.listdir(tmp_path / "runs")
    assert run_dir.startswith(env_id.split(":")[1] + "__")  # the run is named by the id, without the module
    summary = json.load(open(tmp_path / "runs" / run_dir / "summary.json"))
    assert summary["env_id"] == env_id and summary["global_step"] == 64
    assert len(summary["eval_returns"]) == 2
    if mode == "auto":  # the saved agent is evaluated on it too, in a fresh process, by the saved id alone
        evaluated = run_here(script, "--eval-model", f"runs/{run_dir}/agent.pt", "--eval-episodes", "2",
                             cwd=tmp_path)
        assert evaluated.returncode == 0, evaluated.stderr
        assert env_id in evaluated.stdout


@pytest.mark.parametrize("script", ENV_OF)
@pytest.mark.parametrize("env_id, named", [
    ("tests.broken_env_module:Broken-v0", "a_dependency_that_is_not_installed"),  # its dependency is missing
    ("no_such_module:Missing-v0", "no_such_module"),
    ("tests.custom_env_module:Unregistered-v0", "Unregistered"),  # imports, but registers no such id
])
def test_a_module_env_that_cannot_be_made_is_one_line_naming_why(script, env_id, named, tmp_path):
    done = run_here(script, "--env-id", env_id, *SMALL, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and named in line
    assert not os.path.exists(tmp_path / "runs")
