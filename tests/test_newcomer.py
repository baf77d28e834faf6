"""What a newcomer meets first: the command line, what the scripts print, where their outputs go, README's
Python example."""

import json
import os
import re
import subprocess
import sys

import pytest

import pendulum_env
import ppo_discrete
from tests.helpers import ROOT, run_script

TENSORBOARD = re.compile(r"(\S+) -m tensorboard\.main --logdir runs")  # the command a run prints to watch it


def written(stdout: str) -> list[str]:
    """The files a run's last line says it wrote."""
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("wrote "), last
    return last.removeprefix("wrote ").split(", ")


@pytest.mark.parametrize("script", ["ppo_discrete.py", "ppo_continuous_beta.py"])
def test_derived_settings_are_not_options(script, tmp_path):
    help_text = run_script(script, "--help", cwd=tmp_path).stdout
    for derived in ("--batch-size", "--minibatch-size", "--num-iterations"):
        assert derived not in help_text
    assert "--total-timesteps" in help_text
    done = run_script(script, "--batch-size", "64", cwd=tmp_path)
    assert done.returncode == 2 and "--batch-size" in done.stderr


def test_a_run_says_where_it_writes_how_to_watch_it_and_what_it_wrote(tmp_path):
    done = run_script("ppo_discrete.py", "--total-timesteps", "1000", "--num-envs", "4", "--num-steps", "32",
                      "--eval-episodes", "2", "--save-model", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    [run_dir] = os.listdir(tmp_path / "runs")
    assert f"runs/{run_dir}" in lines[0]
    # 1000 is not a whole number of batches of 128: it says how many steps it trains, 7 batches
    assert json.load(open(tmp_path / "runs" / run_dir / "summary.json"))["global_step"] == 896
    assert any("896" in line and not line.startswith("step") for line in lines[1:3])
    # the files it lists are there
    assert sorted(written(done.stdout)) == [f"runs/{run_dir}/agent.pt", f"runs/{run_dir}/summary.json"]
    assert all(os.path.isfile(tmp_path / path) for path in written(done.stdout))
    # the command to watch it names this Python, and runs
    [python] = TENSORBOARD.findall(lines[0])
    assert os.path.samefile(tmp_path / python, sys.executable)
    watch = subprocess.run([python, "-m", "tensorboard.main", "--help"], cwd=tmp_path, capture_output=True,
                           timeout=120)
    assert watch.returncode == 0, watch.stderr


def test_the_printed_python_is_relative_to_the_working_folder_when_under_it(tmp_path, monkeypatch, capsys):
    """A venv in the working folder is named as `.venv/bin/python`, as README writes it; one elsewhere in full."""
    for executable, expected in ((str(tmp_path / ".venv" / "bin" / "python"), ".venv/bin/python"),
                                 ("/elsewhere/bin/python", "/elsewhere/bin/python")):
        monkeypatch.setattr(sys, "executable", executable)
        ppo_discrete.train(ppo_discrete.Args(total_timesteps=128, num_envs=4, num_steps=32, eval_episodes=1))
        assert TENSORBOARD.findall(capsys.readouterr().out) == [expected]


def test_a_video_and_a_policy_picture_are_listed_too(tmp_path):
    pytest.importorskip("moviepy")
    done = run_script("ppo_continuous_beta.py", "--total-timesteps", "256", "--num-envs", "4", "--num-steps", "32",
                      "--eval-episodes", "1", "--capture-video", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [run_dir] = os.listdir(tmp_path / "runs")
    [video] = os.listdir(tmp_path / "videos" / run_dir)
    assert sorted(written(done.stdout)) == sorted([f"runs/{run_dir}/summary.json", f"runs/{run_dir}/policy.png",
                                                   f"videos/{run_dir}/{video}"])
    assert "XDG_RUNTIME_DIR" not in done.stderr  # no noise from SDL looking for a display


def test_readmes_python_example_runs_on_a_saved_agent(tmp_path):
    """README's "in Python" example, as written, on an agent saved by a short run (drawn by SDL into memory)."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    [example] = [block for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "load_policy" in block]
    done = run_script("ppo_discrete.py", "--total-timesteps", "512", "--num-envs", "4", "--num-steps", "32",
                      "--eval-episodes", "1", "--save-model", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [agent] = [path for path in written(done.stdout) if path.endswith("agent.pt")]
    [placeholder] = set(re.findall(r"runs/[^\"']*agent\.pt", example))
    code = example.replace(placeholder, agent) + "\nprint('played to the end', terminated or truncated)\n"
    environment = dict(os.environ, PYTHONPATH=ROOT, SDL_VIDEODRIVER="dummy")
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "played to the end True"


def test_the_pendulum_window_without_a_display_says_how_to_run_it(monkeypatch, capsys):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(SystemExit) as stop:
        pendulum_env.main([])
    assert stop.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no display" in line and "--steps N" in line  # why, and how to check the installation off-screen
    monkeypatch.setenv("DISPLAY", ":0")
    assert pendulum_env.has_display()
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert not pendulum_env.has_display()
    with pytest.raises(SystemExit):
        pendulum_env.main([])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "SDL_VIDEODRIVER=dummy" in line and "--steps N" in line
