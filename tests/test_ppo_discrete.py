"""ppo_discrete.py: worked examples of its pure functions, refused inputs, and learning."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo_discrete
from ppo_discrete import Args, train
from tests.helpers import ConstantRewardEnv, ShiftedActionEnv, read_scalars, refused, register_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(**overrides) -> Args:
    """A run small enough for a unit test."""
    settings = dict(env_id="CartPole-v1", total_timesteps=512, num_envs=4, num_steps=32, eval_episodes=2)
    settings.update(overrides)
    return Args(**settings)


# Time limits: bootstrapping a truncated episode

def test_truncated_episodes_are_bootstrapped():
    """Reward 1 per step forever, cut at 5 steps by a time limit the agent cannot see.

    The true value is 1 / (1 - gamma) = 10 at gamma 0.9. Treating the cut as a
    terminal state would teach the critic the mean of the partial sums,
    (1 - 0.9^k) / 0.1 averaged over k = 1..5, about 2.6.
    """
    register_once("ConstantReward-v0", ConstantRewardEnv, max_episode_steps=5)
    args = tiny(env_id="ConstantReward-v0", total_timesteps=20_000, num_steps=50, gamma=0.9,
                learning_rate=1e-2, clip_vloss=False, eval_episodes=1)
    agent = train(args)["agent"]
    with torch.no_grad():
        value = agent.get_value(torch.ones(1, 1)).item()
    assert value == pytest.approx(10.0, rel=0.1)


# Reproducibility

def test_same_seed_gives_identical_logged_numbers(tmp_path):
    runs = [train(tiny(total_timesteps=1024, seed=3))["run_dir"] for _ in range(2)]
    first, second = (read_scalars(run) for run in runs)
    first.pop("charts/SPS"), second.pop("charts/SPS")
    assert first.keys() == second.keys() and "losses/approx_kl" in first
    assert first == second


# Observations that need flattening

def test_discrete_observations_are_one_hot_flattened():
    result = train(tiny(env_id="FrozenLake-v1", total_timesteps=256, num_steps=64, num_minibatches=2))
    assert result["agent"].actor[0].in_features == 16


# Saving, and evaluating a saved agent

@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_saved_agent_evaluates_to_the_same_returns(activation):
    result = train(tiny(total_timesteps=2048, save_model=True, seed=2, activation=activation))
    path = f"{result['run_dir']}/agent.pt"
    assert torch.load(path, weights_only=True)["args"]["activation"] == activation
    evaluated = train(tiny(eval_model=path, seed=2))
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])


def test_evaluation_records_videos(tmp_path):
    pytest.importorskip("moviepy")
    result = train(tiny(total_timesteps=512, save_model=True))
    train(tiny(eval_model=f"{result['run_dir']}/agent.pt", capture_video=True, eval_episodes=1))
    videos = [name for _, _, names in os.walk(tmp_path / "videos") for name in names if name.endswith(".mp4")]
    assert len(videos) >= 1


# Refused inputs (the settings both scripts share are in test_algorithm.py)

def test_unflattenable_observations_and_non_discrete_actions_are_refused(capsys):
    register_once("SequenceObs-v0", ConstantRewardEnv, kwargs={"observation": "sequence"})
    assert "cannot be flattened" in refused(train, tiny(env_id="SequenceObs-v0"), capsys)
    register_once("MultiDiscreteActions-v0", ConstantRewardEnv, kwargs={"action": "multidiscrete"})
    assert "Discrete actions only" in refused(train, tiny(env_id="MultiDiscreteActions-v0"), capsys)


def test_missing_optional_dependency_names_the_install(monkeypatch, capsys):
    def make_without_box2d(*args, **kwargs):
        raise gym.error.DependencyNotInstalled('Box2D is not installed, run `pip install "gymnasium[box2d]"`')
    monkeypatch.setattr(ppo_discrete.gym, "make", make_without_box2d)
    assert 'pip install "gymnasium[box2d]"' in refused(train, tiny(env_id="LunarLander-v3"), capsys)


def test_bad_checkpoints_are_refused(tmp_path, capsys):
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    assert "is not a checkpoint" in refused(train, tiny(eval_model="notes.pt"), capsys)

    # a pickle that would run code when loaded is refused by weights_only=True
    torch.save({"script": "ppo_discrete", "payload": os.system}, tmp_path / "evil.pt")
    assert "could run code" in refused(train, tiny(eval_model="evil.pt"), capsys)

    path = f"{train(tiny(save_model=True))['run_dir']}/agent.pt"
    assert "was saved for CartPole-v1, not Acrobot-v1" in refused(train, tiny(env_id="Acrobot-v1", eval_model=path), capsys)

    # right environment id, wrong network shape
    saved = torch.load(path, weights_only=True)
    saved["agent"] = {name: torch.zeros(3, 3) for name in saved["agent"]}
    torch.save(saved, tmp_path / "reshaped.pt")
    assert "network of another shape" in refused(train, tiny(eval_model="reshaped.pt"), capsys)


def test_command_line_error_has_no_traceback():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "ppo_discrete.py"), "--env-id", "CartPol-v1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: unknown environment id 'CartPol-v1'; did you mean CartPole-v1")


# Learning

def test_default_settings_solve_cartpole_with_seed_1():
    """Seed 1 with the defaults (100k steps) reaches a deterministic evaluation >= 475."""
    result = train(Args(env_id="CartPole-v1", seed=1))
    assert result["global_step"] <= 100_000
    assert result["eval_returns"].mean() >= 475


# Watching a saved agent

def test_play_shows_the_evaluation_episodes_in_a_window(monkeypatch, capsys):
    """`--eval-model PATH --play` runs the same episodes as evaluation, from the same starts, in a window."""
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv
    monkeypatch.setitem(CartPoleEnv.metadata, "render_fps", 100_000)  # as fast as it draws, not 50 frames a second
    result = train(tiny(total_timesteps=1024, save_model=True, eval_episodes=3))
    played = train(tiny(eval_model=f"{result['run_dir']}/agent.pt", play=True, eval_episodes=3))
    np.testing.assert_array_equal(played["eval_returns"], result["eval_returns"])
    printed = capsys.readouterr().out.splitlines()[-3:]
    assert printed == [f"episode {i + 1}: return {r:.2f}" for i, r in enumerate(result["eval_returns"])]


def test_play_needs_a_saved_agent(capsys):
    assert "--play shows a saved agent" in refused(train, tiny(play=True), capsys)


# Environment keywords and action numbering

def test_env_keywords_reach_training_evaluation_the_saved_agent_and_a_resumed_run():
    """ConstantReward pays `reward` per step for 5 steps: with reward=2.0 every episode returns 10."""
    register_once("ConstantReward-v0", ConstantRewardEnv, max_episode_steps=5)
    result = train(tiny(env_id="ConstantReward-v0", env_kwargs=("reward=2.0",), save_model=True, total_timesteps=640,
                        checkpoint_every=4))
    training_returns = [value for _, value in read_scalars(result["run_dir"])["charts/episodic_return"]]
    assert training_returns and set(training_returns) == {10.0}
    assert result["eval_returns"].tolist() == [10.0, 10.0]
    summary = json.load(open(f"{result['run_dir']}/summary.json"))
    assert summary["args"]["env_kwargs"] == ["reward=2.0"]
    assert torch.load(f"{result['run_dir']}/agent.pt", weights_only=True)["args"]["env_kwargs"] == ("reward=2.0",)
    # a saved agent is evaluated on its own environment, unless other keywords are given
    assert train(tiny(env_id="ConstantReward-v0", eval_model=f"{result['run_dir']}/agent.pt"))[
        "eval_returns"].tolist() == [10.0, 10.0]
    assert train(tiny(env_id="ConstantReward-v0", eval_model=f"{result['run_dir']}/agent.pt",
                      env_kwargs=("reward=3.0",)))["eval_returns"].tolist() == [15.0, 15.0]
    # a resumed run keeps them: its last iteration's episodes and its evaluation pay 2 per step
    resumed = train(Args(resume=f"{result['run_dir']}/checkpoint.pt"))
    assert resumed["run_dir"] == result["run_dir"] and resumed["eval_returns"].tolist() == [10.0, 10.0]


def test_actions_numbered_from_a_start_reach_the_env_as_it_numbers_them():
    register_once("ShiftedActions-v0", ShiftedActionEnv, max_episode_steps=5)
    ShiftedActionEnv.received.clear()
    result = train(tiny(env_id="ShiftedActions-v0", save_model=True))
    assert len(ShiftedActionEnv.received) == 512 + 2 * 5 and set(ShiftedActionEnv.received) <= {5, 6}
    assert set(ShiftedActionEnv.received[:512]) == {5, 6}  # both actions were tried in training
    ShiftedActionEnv.received.clear()
    train(tiny(env_id="ShiftedActions-v0", eval_model=f"{result['run_dir']}/agent.pt"))
    assert len(ShiftedActionEnv.received) == 10 and set(ShiftedActionEnv.received) <= {5, 6}
