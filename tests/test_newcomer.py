"""What a newcomer meets first: the command line, what the scripts print, and where their outputs go."""

import json
import os
import subprocess
import sys

import pytest
import torch

import pendulum_env
import ppo_continuous_beta
import ppo_discrete

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script: str, *argv: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("script", ["ppo_discrete.py", "ppo_continuous_beta.py"])
def test_derived_settings_are_not_options_and_step_counts_may_be_written_1e5(script, tmp_path):
    help_text = run(script, "--help", cwd=tmp_path).stdout
    for derived in ("--batch-size", "--minibatch-size", "--num-iterations"):
        assert derived not in help_text
    assert "--total-timesteps" in help_text
    done = run(script, "--batch-size", "64", cwd=tmp_path)
    assert done.returncode == 2 and "--batch-size" in done.stderr
    assert ppo_discrete.whole_number("1e5") == ppo_discrete.whole_number("100_000") == 100_000
    with pytest.raises(ValueError, match="not a whole number"):
        ppo_discrete.whole_number("1.5")


def test_a_run_says_where_it_writes_and_what_it_wrote(tmp_path):
    done = run("ppo_discrete.py", "--total-timesteps", "1e3", "--num-envs", "4", "--num-steps", "32",
               "--eval-episodes", "2", "--save-model", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    [run_dir] = os.listdir(tmp_path / "runs")
    assert lines[0] == f"run directory: runs/{run_dir} (watch it with: tensorboard --logdir runs)"
    assert lines[-1] == f"wrote runs/{run_dir}/summary.json, runs/{run_dir}/agent.pt"
    assert json.load(open(tmp_path / "runs" / run_dir / "summary.json"))["global_step"] == 896  # 1e3 // 128 * 128


def test_a_video_and_a_policy_picture_are_listed_too(tmp_path):
    pytest.importorskip("moviepy")
    done = run("ppo_continuous_beta.py", "--total-timesteps", "256", "--num-envs", "4", "--num-steps", "32",
               "--eval-episodes", "1", "--capture-video", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [run_dir] = os.listdir(tmp_path / "runs")
    [video] = os.listdir(tmp_path / "videos" / run_dir)
    assert done.stdout.splitlines()[-1] == (f"wrote runs/{run_dir}/summary.json, runs/{run_dir}/policy.png, "
                                            f"videos/{run_dir}/{video}")
    assert "XDG_RUNTIME_DIR" not in done.stderr


def test_resume_names_the_flags_the_checkpoint_overrides(capsys):
    args = ppo_discrete.Args(num_envs=4, num_steps=32, total_timesteps=128 * 3, checkpoint_every=2, eval_episodes=1)
    checkpoint = f"{ppo_discrete.train(args)['run_dir']}/checkpoint.pt"
    capsys.readouterr()
    ppo_discrete.train(ppo_discrete.Args(resume=checkpoint, learning_rate=0.1, num_envs=4, eval_episodes=1))
    [warning] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    # num_envs 4 is the checkpoint's own; eval_episodes 1 too: only the learning rate is overridden
    assert warning == "warning: --resume continues with the checkpoint's settings; ignored: --learning-rate 0.1"


def test_resuming_a_beta_run_at_the_mean_warns_of_nothing_not_given(capsys):
    """--deterministic-action is not given, so the checkpoint's "mean" overrides nothing the user asked for."""
    args = ppo_continuous_beta.Args(num_envs=4, num_steps=32, total_timesteps=128 * 3, checkpoint_every=2,
                                    eval_episodes=1, deterministic_action="mean")
    checkpoint = f"{ppo_continuous_beta.train(args)['run_dir']}/checkpoint.pt"
    capsys.readouterr()
    result = ppo_continuous_beta.train(ppo_continuous_beta.Args(resume=checkpoint))
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert json.load(open(f"{result['run_dir']}/summary.json"))["args"]["deterministic_action"] == "mean"


def test_cuda_without_a_gpu_is_recorded_as_the_cpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = ppo_continuous_beta.train(ppo_continuous_beta.Args(num_envs=4, num_steps=32, total_timesteps=128,
                                                               eval_episodes=1, cuda=True))
    assert json.load(open(f"{result['run_dir']}/summary.json"))["args"]["cuda"] is False


def test_the_pendulum_window_without_a_display_says_how_to_run_it(monkeypatch, capsys):
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(SystemExit) as stop:
        pendulum_env.main([])
    assert stop.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "there is no display to open the window on" in line and "--steps N" in line
    monkeypatch.setenv("DISPLAY", ":0")
    assert pendulum_env.has_display()
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert not pendulum_env.has_display()
