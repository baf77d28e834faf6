"""ppo_discrete.py: flattened observations, saved agents and their evaluation, action numbering, and learning.

What both scripts share (GAE, losses, refused settings, bootstrapping, reproducibility) is in test_algorithm.py;
interrupts, resuming and loading in test_robustness.py.
"""

import functools
import json
import os

import numpy as np
import pytest
import torch

import ppo_discrete
from ppo_discrete import Args, evaluate_saved_agent, train
from tests import helpers
from tests.helpers import (ConstantRewardEnv, ShiftedActionEnv, interrupted_run, look_like_a_desktop, read_scalars,
                           refused, register_once)

register_once("ConstantReward-v0", ConstantRewardEnv, max_episode_steps=5)
register_once("ShiftedActions-v0", ShiftedActionEnv, max_episode_steps=5)


tiny = functools.partial(helpers.tiny, ppo_discrete)  # 4 iterations of 4 envs x 32 steps on CartPole-v1


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
    evaluated = evaluate_saved_agent(tiny(eval_model=path, seed=2))
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])
    # and in Python, load_policy gives the same actions as the trained agent
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    with torch.no_grad():
        expected = result["agent"].act_deterministic(torch.as_tensor(obs)).numpy()
    np.testing.assert_array_equal(ppo_discrete.load_policy(path)(obs), expected)


def test_evaluating_a_saved_agent_records_a_video_and_says_where(capsys):
    pytest.importorskip("moviepy")
    result = train(tiny(save_model=True))
    capsys.readouterr()
    evaluate_saved_agent(tiny(eval_model=f"{result['run_dir']}/agent.pt", capture_video=True, eval_episodes=1))
    run_name = os.path.basename(result["run_dir"])
    videos = [f"videos/{run_name}__eval/{name}" for name in os.listdir(f"videos/{run_name}__eval")]
    assert videos and all(name.endswith(".mp4") for name in videos)
    printed = capsys.readouterr().out
    assert all(video in printed for video in videos)


def test_env_keywords_reach_training_a_resumed_run_the_saved_agent_and_its_evaluation(monkeypatch, capsys):
    """ConstantReward pays `reward` per step for 5 steps: with reward=2.0 every episode returns 10. Interrupted at
    iteration 4 of 5, resumed with --save-model; the agent is then evaluated on its own env and keywords, with
    neither --env-id nor --env-kwargs given, and with a keyword overridden."""
    checkpoint = interrupted_run(ppo_discrete, tiny(env_id="ConstantReward-v0", env_kwargs=("reward=2.0",),
                                                    total_timesteps=640), 4, monkeypatch)
    result = train(Args(resume=checkpoint, save_model=True))
    training_returns = [value for _, value in read_scalars(result["run_dir"])["charts/episodic_return"]]
    # both parts of the run: 4 envs finish 128 // 5 episodes before the interrupt (the 6th one's 3 steps are lost
    # with it) and 32 // 5 after the resumed run resets them
    assert len(training_returns) == 4 * (128 // 5 + 32 // 5) and set(training_returns) == {10.0}
    assert result["eval_returns"].tolist() == [10.0, 10.0]
    summary = json.load(open(f"{result['run_dir']}/summary.json"))
    assert summary["env_id"] == "ConstantReward-v0" and summary["args"]["env_kwargs"] == ["reward=2.0"]
    path = f"{result['run_dir']}/agent.pt"
    assert torch.load(path, weights_only=True)["args"]["env_kwargs"] == ("reward=2.0",)
    capsys.readouterr()
    assert evaluate_saved_agent(Args(eval_model=path, eval_episodes=2))["eval_returns"].tolist() == [10.0, 10.0]
    assert f"evaluating {path} on ConstantReward-v0 reward=2.0" in capsys.readouterr().out
    evaluated = evaluate_saved_agent(Args(eval_model=path, eval_episodes=3, env_kwargs=("reward=3.0",)))
    assert evaluated["eval_returns"].tolist() == [15.0, 15.0, 15.0]
    assert f"evaluating {path} on ConstantReward-v0 reward=3.0" in capsys.readouterr().out


def test_an_acrobot_agent_is_evaluated_on_acrobot_without_env_id(capsys):
    result = train(tiny(env_id="Acrobot-v1", save_model=True))
    path = f"{result['run_dir']}/agent.pt"
    capsys.readouterr()
    evaluated = evaluate_saved_agent(Args(eval_model=path, eval_episodes=2))
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])
    assert f"evaluating {path} on Acrobot-v1" in capsys.readouterr().out


# Refused inputs (the settings both scripts share are in test_algorithm.py, saved files in test_robustness.py)

def test_actions_other_than_discrete_are_refused(capsys):
    register_once("MultiDiscreteActions-v0", ConstantRewardEnv, kwargs={"action": "multidiscrete"})
    message = refused(train, tiny(env_id="MultiDiscreteActions-v0"), capsys)
    assert "MultiDiscrete" in message and "Discrete" in message


# Learning

def test_default_settings_solve_cartpole_with_seed_1():
    """Seed 1 with the defaults (100k steps) reaches a deterministic evaluation >= 475."""
    result = train(Args(env_id="CartPole-v1", seed=1))
    assert result["global_step"] <= 100_000
    assert result["eval_returns"].mean() >= 475


# Watching a saved agent

def test_play_shows_the_evaluation_episodes_in_a_window(monkeypatch, capsys):
    """`--eval-model PATH --play` runs the same episodes as evaluation, from the same starts, rendered for a
    person (here into memory: SDL's dummy driver, so no window opens), and prints each return."""
    pytest.importorskip("pygame")
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv
    monkeypatch.setitem(CartPoleEnv.metadata, "render_fps", 100_000)  # as fast as it draws, not 50 frames a second
    result = train(tiny(total_timesteps=1024, save_model=True, eval_episodes=3))
    drawn = look_like_a_desktop(monkeypatch)
    capsys.readouterr()
    played = evaluate_saved_agent(tiny(eval_model=f"{result['run_dir']}/agent.pt", play=True, eval_episodes=3))
    assert drawn  # it rendered for a person
    np.testing.assert_array_equal(played["eval_returns"], result["eval_returns"])
    printed = capsys.readouterr().out
    assert all(f"{r:.2f}" in printed for r in result["eval_returns"])  # each episode's return


# Action numbering

def test_actions_numbered_from_a_start_reach_the_env_as_it_numbers_them():
    ShiftedActionEnv.received.clear()
    result = train(tiny(env_id="ShiftedActions-v0", save_model=True))
    assert len(ShiftedActionEnv.received) == 512 + 2 * 5 and set(ShiftedActionEnv.received) <= {5, 6}
    assert set(ShiftedActionEnv.received[:512]) == {5, 6}  # both actions were tried in training
    ShiftedActionEnv.received.clear()
    evaluate_saved_agent(tiny(env_id="ShiftedActions-v0", eval_model=f"{result['run_dir']}/agent.pt"))
    assert len(ShiftedActionEnv.received) == 10 and set(ShiftedActionEnv.received) <= {5, 6}
    # load_policy returns actions as the env numbers them too
    assert set(ppo_discrete.load_policy(f"{result['run_dir']}/agent.pt")(np.ones((8, 1), np.float32))) <= {5, 6}
