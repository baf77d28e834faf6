"""What both PPO scripts share, checked on each: GAE, the clipped losses, refused settings.

Each script carries its own copy of these functions by design (a reader follows
one file); the tests run every worked example against both copies.
"""

import os
import shutil
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo_continuous_beta
import ppo_discrete
from tests.helpers import (ACTION_OF, ConstantRewardEnv, SeedRecordingEnv, read_scalars, refused, register_once,
                           run_script, tiny)

SCRIPTS = [ppo_discrete, ppo_continuous_beta]


# compute_gae

@pytest.mark.parametrize("script", SCRIPTS)
def test_gae_worked_example_from_spec(script):
    # rewards 1, values 0, no dones, gamma 0.5, lambda 1: A = 1 + 0.5 + 0.25, 1 + 0.5, 1
    rewards, values, dones = torch.ones(3, 1), torch.zeros(3, 1), torch.zeros(3, 1)
    advantages, returns = script.compute_gae(rewards, values, dones, torch.zeros(1), gamma=0.5, gae_lambda=1.0)
    assert advantages[:, 0].tolist() == [1.75, 1.5, 1.0]
    assert returns[:, 0].tolist() == [1.75, 1.5, 1.0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_gae_with_dones_and_two_envs(script):
    # env 0 ends its episode at t=1; env 1 at t=2. gamma = lambda = 0.5, so gamma*lambda = 0.25.
    rewards = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    values = np.array([[0.5, 1.0], [0.5, 1.0], [0.5, 1.0]])
    dones = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    last_value = np.array([2.0, 5.0])
    advantages, returns = script.compute_gae(rewards, values, dones, last_value, gamma=0.5, gae_lambda=0.5)
    # env 0: t=2: 3 + 0.5*2 - 0.5 = 3.5; t=1 (done): 2 - 0.5 = 1.5; t=0: (1 + 0.25 - 0.5) + 0.25*1.5 = 1.125
    # env 1: t=2 (done, last value ignored): 1 - 1 = 0; t=1: 0.5 - 1 = -0.5; t=0: -0.5 + 0.25*(-0.5) = -0.625
    np.testing.assert_allclose(advantages, [[1.125, -0.625], [1.5, -0.5], [3.5, 0.0]])
    np.testing.assert_allclose(returns, advantages + values)


@pytest.mark.parametrize("script", SCRIPTS)
def test_gae_lambda_one_is_discounted_return_minus_value_and_lambda_zero_is_td_error(script):
    generator = torch.Generator().manual_seed(0)
    rewards, values = torch.rand(6, 3, generator=generator), torch.rand(6, 3, generator=generator)
    last_value, dones, gamma = torch.rand(3, generator=generator), torch.zeros(6, 3), 0.9
    advantages, _ = script.compute_gae(rewards, values, dones, last_value, gamma, gae_lambda=1.0)
    discounted = last_value * gamma ** 6 + sum(gamma ** k * rewards[k] for k in range(6))
    torch.testing.assert_close(advantages[0], discounted - values[0])
    advantages, _ = script.compute_gae(rewards, values, dones, last_value, gamma, gae_lambda=0.0)
    next_values = torch.cat([values[1:], last_value[None]])
    torch.testing.assert_close(advantages, rewards + gamma * next_values - values)


@pytest.mark.parametrize("script", SCRIPTS)
def test_gae_of_integer_rewards_is_not_truncated(script):
    # the SPEC example with integer arrays: the advantages must still be 1.75, 1.5, 1.0
    advantages, _ = script.compute_gae(np.ones((3, 1), dtype=int), np.zeros((3, 1), dtype=int),
                                       np.zeros((3, 1), dtype=int), np.zeros(1, dtype=int), 0.5, 1.0)
    assert advantages[:, 0].tolist() == [1.75, 1.5, 1.0]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("library", ["torch", "numpy"])
def test_gae_accepts_boolean_dones(script, library):
    # the episode ends at step 1: A_1 = r_1 - V_1 = 0.5; A_0 = r_0 + gamma V_1 - V_0 + gamma lambda A_1 = 1.0;
    # A_2 = r_2 + gamma V_3 - V_2 = 0.75 (no done: bootstrapped from the last value 0.5)
    rewards, values, dones = [[1.0], [1.0], [1.0]], [[0.5], [0.5], [0.5]], [[False], [True], [False]]
    array = torch.tensor if library == "torch" else np.array
    advantages, _ = script.compute_gae(array(rewards), array(values), array(dones), array([0.5]), 0.5, 1.0)
    np.testing.assert_allclose(np.asarray(advantages)[:, 0], [1.0, 0.5, 0.75])


# The clipped losses

@pytest.mark.parametrize("script", SCRIPTS)
def test_clipped_surrogate_on_hand_computed_ratios(script):
    ratio = torch.tensor([0.5, 1.0, 1.5, 1.5, 0.5], requires_grad=True)
    advantages = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0])
    loss = script.clipped_surrogate_loss(ratio, advantages, clip_coef=0.2)
    # min(r A, clip(r) A) = 0.5, 1.0, min(1.5, 1.2) = 1.2, min(-1.5, -1.2) = -1.5, min(-0.5, -0.8) = -0.8
    assert loss.item() == pytest.approx(-(0.5 + 1.0 + 1.2 - 1.5 - 0.8) / 5)
    loss.backward()
    # the clipped terms (r=1.5 with A>0, r=0.5 with A<0) give no gradient; the others give -A/5
    torch.testing.assert_close(ratio.grad, torch.tensor([-0.2, -0.2, 0.0, 0.2, 0.0]))


@pytest.mark.parametrize("script", SCRIPTS)
def test_value_loss_clipped_and_unclipped(script):
    new, old, target = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([2.0, -1.0])
    # unclipped: 0.5 * mean((1-2)^2, (0+1)^2) = 0.5
    assert script.value_loss(new, old, target, 0.2, clip_vloss=False).item() == pytest.approx(0.5)
    # clipped prediction of the first is 0.2: max(1, 1.8^2) = 3.24; the second is within the clip: 1
    assert script.value_loss(new, old, target, 0.2, clip_vloss=True).item() == pytest.approx(0.5 * (3.24 + 1.0) / 2)


def collected_batch(script, size: int):
    """A fresh agent (3 observation dimensions) and what it would store for `size` random observations."""
    torch.manual_seed(0)
    agent = script.Agent(3, {ppo_discrete: 2, ppo_continuous_beta: 1}[script])
    obs = torch.randn(size, 3)
    with torch.no_grad():
        (actions, logprobs), values = agent.get_action(obs), agent.get_value(obs)
    return agent, obs, actions, logprobs, values


@pytest.mark.parametrize("script", SCRIPTS)
def test_ppo_loss_at_the_old_policy_is_minus_the_mean_advantage_plus_the_value_loss(script):
    """At the policy that collected the batch r_t = 1, so L^CLIP = mean(A) and -L^CLIP + c1 L^VF is what is left."""
    agent, obs, actions, logprobs, values = collected_batch(script, 6)
    advantages = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0, -1.0])  # mean 0.25
    returns = values + 1.0  # every prediction 1 short: L^VF = 0.5 * 1^2
    args = tiny(script, norm_adv=False, ent_coef=0.0, vf_coef=0.5, clip_vloss=False)
    loss, pg_loss, v_loss, _, logratio, ratio = script.ppo_loss(
        agent, obs, actions, logprobs, values, advantages, returns, args)
    assert torch.equal(ratio, torch.ones(6)) and torch.equal(logratio, torch.zeros(6))
    assert pg_loss.item() == pytest.approx(-0.25)
    assert v_loss.item() == pytest.approx(0.5)
    assert loss.item() == pytest.approx(-0.25 + 0.5 * 0.5)


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on the CPU needs g++")
@pytest.mark.parametrize("script", SCRIPTS)
def test_compiled_loss_matches_the_eager_one(script):
    """--compile runs ppo_loss through torch.compile: the same numbers and gradients, to float rounding."""
    agent, obs, actions, logprobs, values = collected_batch(script, 64)
    with torch.no_grad():
        for parameter in agent.parameters():  # move away from the old policy so that clipping is exercised
            parameter.add_(0.1 * torch.randn_like(parameter))
    batch = (agent, obs, actions, logprobs, values, torch.randn(64), torch.randn(64),
             tiny(script, ent_coef=0.01, clip_vloss=True))
    results = []
    for loss_function in (script.ppo_loss, torch.compile(script.ppo_loss)):
        agent.zero_grad()
        outputs = loss_function(*batch)
        outputs[0].backward()
        results.append([x.detach() for x in outputs] + [p.grad.clone() for p in agent.parameters()])
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("script", SCRIPTS)
def test_compile_without_a_cpp_compiler_is_refused(script, monkeypatch, capsys):
    monkeypatch.setenv("CXX", "no-such-compiler")
    message = refused(script.train, tiny(script, compile=True), capsys)
    assert "--compile needs the C++ compiler no-such-compiler" in message


@pytest.mark.parametrize("script", SCRIPTS)
def test_explained_variance(script):
    targets = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert script.explained_variance(targets, targets) == 1.0
    assert script.explained_variance(torch.full((4,), 2.5), targets) == pytest.approx(0.0)


# Refused settings: one line naming the problem and the fix, exit status 2, before any training

@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("overrides, expected", [
    (dict(num_envs=3, num_steps=5, num_minibatches=4), "not divisible by --num-minibatches"),
    (dict(total_timesteps=100), "smaller than one batch"),
    (dict(num_envs=0), "--num-envs is 0"),
    (dict(num_steps=-2), "--num-steps is -2"),
    (dict(update_epochs=-1), "--update-epochs is -1"),
    (dict(eval_episodes=0), "--eval-episodes is 0"),
    (dict(learning_rate=0.0), "--learning-rate is 0.0"),
    (dict(max_grad_norm=-1.0), "--max-grad-norm is -1.0"),
    (dict(gamma=1.5), "--gamma is 1.5"),
    (dict(gae_lambda=-0.1), "--gae-lambda is -0.1"),
    (dict(clip_coef=0.0), "--clip-coef is 0.0"),
    (dict(checkpoint_every=-1), "--checkpoint-every is -1"),
    (dict(eval_every=-2), "--eval-every is -2"),
    (dict(seed=-1), "--seed is -1"),
    (dict(num_envs=1, num_steps=4, num_minibatches=4, total_timesteps=64), "cannot be normalized"),
    (dict(eval_model="missing.pt"), "missing.pt: no such file"),
    (dict(resume="missing.pt"), "missing.pt: no such file"),
])
def test_bad_settings_are_refused(script, overrides, expected, capsys):
    function = script.evaluate_saved_agent if "eval_model" in overrides else script.train
    assert expected in refused(function, tiny(script, **overrides), capsys)


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_env_id_gets_gymnasiums_suggestion(script, capsys):
    message = refused(script.train, script.Args(env_id="CartPol-v1"), capsys)
    assert "NameNotFound" in message and "CartPol" in message and "Did you mean: `CartPole`?" in message


@pytest.mark.parametrize("script, env_id, expected", [
    (ppo_discrete, "Pendulum-v1", "use ppo_continuous_beta.py"),
    (ppo_continuous_beta, "CartPole-v1", "use ppo_discrete.py"),
])
def test_wrong_script_for_the_action_space_is_refused(script, env_id, expected, capsys):
    assert expected in refused(script.train, script.Args(env_id=env_id, total_timesteps=4096), capsys)


def test_native_vectorization_that_the_env_lacks_is_refused(capsys):
    args = ppo_discrete.Args(env_id="CartPole-v1", total_timesteps=4096, vectorization_mode="vector_entry_point")
    assert "has no native vector implementation with same-step autoreset" in refused(ppo_discrete.train, args, capsys)


def test_negative_heatmap_interval_is_refused(capsys):
    args = ppo_continuous_beta.Args(heatmap_every=-3)
    assert "--heatmap-every is -3" in refused(ppo_continuous_beta.train, args, capsys)


# Seeds: independent runs, evaluation apart from training

@pytest.mark.parametrize("script", SCRIPTS)
def test_runs_share_no_environment_seed_and_evaluation_none_with_training(script):
    """With seeds s + i, run seeds 1 and 2 would share 3 of their 4 training streams; from SeedSequence they
    share none, and evaluation draws from streams of its own, different for each run seed."""
    action = ACTION_OF[script.__name__]
    env_id = f"SeedRecording-{action}-v0"
    register_once(env_id, SeedRecordingEnv, max_episode_steps=4, kwargs={"action": action})
    seeds = {}
    for seed in (1, 2):
        SeedRecordingEnv.seeds.clear()
        script.train(tiny(script, env_id=env_id, seed=seed, num_steps=8, total_timesteps=32, eval_episodes=3))
        seeds[seed] = list(SeedRecordingEnv.seeds)
        assert len(seeds[seed]) == 7 and len(set(seeds[seed])) == 7  # 4 training envs, then 3 evaluation episodes
        assert seeds[seed][:4] == script.env_seeds(seed, 4, stream=(0, 1))  # training from iteration 1
        assert seeds[seed][4:] == script.env_seeds(seed, 3, stream=(1,))  # evaluation
    assert not set(seeds[1]) & set(seeds[2])


def test_first_rollouts_of_two_seeds_start_apart_in_every_environment():
    """The swing-up pendulum resets all 64 pendulums together every 200 steps: with independent seeds the start
    states of seeds 1 and 2 differ in every one of them."""
    env_seeds, starts = ppo_continuous_beta.env_seeds, {}
    for seed in (1, 2):
        envs = ppo_continuous_beta.make_env("SwingUpPendulum-v0", 64, "auto")
        starts[seed], _ = envs.reset(seed=env_seeds(seed, 64, stream=(0, 1)))
        envs.close()
    assert (np.abs(starts[1] - starts[2]).max(axis=1) > 1e-6).all()
    # and a resumed run (here from iteration 11) starts from new states too
    assert not set(env_seeds(1, 64, stream=(0, 11))) & set(env_seeds(1, 64, stream=(0, 1)))


# Environment keywords: --env-kwargs KEY=VALUE

@pytest.mark.parametrize("script", SCRIPTS)
def test_env_keywords_are_read_as_python_literals(script):
    assert script.keywords(("length=1.0", "steps=3", "fast=True", "name=rgb", "quoted='a b'", "none=None")) == {
        "length": 1.0, "steps": 3, "fast": True, "name": "rgb", "quoted": "a b", "none": None}


@pytest.mark.parametrize("script, env_id, good, bad, complaint", [
    (ppo_discrete, "CliffWalking-v1", "is_slippery=True", "slipery=True", "unexpected keyword argument 'slipery'"),
    (ppo_continuous_beta, "SwingUpPendulum-v0", "length=1.0", "lenght=1.0", "unexpected keyword argument 'lenght'"),
])
def test_a_keyword_the_environment_does_not_take_is_refused_before_training(script, env_id, good, bad, complaint,
                                                                           capsys):
    args = script.Args(env_id=env_id, env_kwargs=(good, bad), total_timesteps=512, num_envs=4, num_steps=32)
    message = refused(script.train, args, capsys)
    assert message.startswith(f"error: --env-kwargs {good} {bad}:") and complaint in message
    assert "write KEY=VALUE" in refused(script.train, script.Args(env_id=env_id, env_kwargs=("length",)), capsys)


def test_a_keyword_the_environment_does_not_take_is_one_line_on_the_command_line(tmp_path):
    done = run_script("ppo_continuous_beta.py", "--env-kwargs", "lenght=1.0", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: --env-kwargs lenght=1.0:") and "'lenght'" in line


# Vectorization: the native implementation only when it says it resets on the same step

class KeywordTakingVectorEnv(gym.vector.VectorEnv):
    """A native vector env whose constructor swallows any keyword, autoreset_mode included, and still resets on
    the next step, as its metadata says."""

    def __init__(self, num_envs=1, **kwargs):
        self.num_envs = num_envs
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)


@pytest.mark.parametrize("script", SCRIPTS)
def test_native_vectorization_is_chosen_by_its_metadata_not_its_constructor(script, capsys):
    register_once("KeywordTakingVector-v0", ConstantRewardEnv, max_episode_steps=5,
                  vector_entry_point=KeywordTakingVectorEnv)
    assert script.vectorization_mode("KeywordTakingVector-v0", "auto") == "sync"
    assert script.vectorization_mode("SwingUpPendulum-v0", "auto") == "vector_entry_point"
    with pytest.raises(SystemExit):
        script.vectorization_mode("KeywordTakingVector-v0", "vector_entry_point")
    assert "has no native vector implementation with same-step autoreset" in capsys.readouterr().err


# Time limits and reproducibility

@pytest.mark.parametrize("script", SCRIPTS)
def test_truncated_episodes_are_bootstrapped(script):
    """Reward 1 per step forever, cut at 5 steps by a time limit the agent cannot see.

    The true value is 1 / (1 - gamma) = 10 at gamma 0.9. Treating the cut as a
    terminal state would teach the critic the mean of the partial sums,
    (1 - 0.9^k) / 0.1 averaged over k = 1..5, about 2.6.
    """
    action = ACTION_OF[script.__name__]
    env_id = f"ConstantReward-{action}-v0"
    register_once(env_id, ConstantRewardEnv, max_episode_steps=5, kwargs={"action": action})
    raw_rewards = {"norm_reward": False} if script is ppo_continuous_beta else {}
    agent = script.train(tiny(script, env_id=env_id, total_timesteps=20_000, num_steps=50, gamma=0.9,
                              learning_rate=1e-2, clip_vloss=False, eval_episodes=1, **raw_rewards))["agent"]
    with torch.no_grad():
        assert agent.get_value(torch.ones(1, 1)).item() == pytest.approx(10.0, rel=0.1)


@pytest.mark.parametrize("script", SCRIPTS)
def test_same_seed_gives_identical_logged_numbers(script):
    first, second = (read_scalars(script.train(tiny(script, total_timesteps=1024, seed=3))["run_dir"])
                     for _ in range(2))
    first.pop("charts/SPS"), second.pop("charts/SPS")  # wall-clock speed, the one number allowed to differ
    assert "losses/approx_kl" in first and "charts/episodic_return" in first
    assert first == second


# Environments a script cannot train on

@pytest.mark.parametrize("script", SCRIPTS)
def test_observations_that_are_no_vector_are_refused(script, capsys):
    action = ACTION_OF[script.__name__]
    env_id = f"SequenceObs-{action}-v0"
    register_once(env_id, ConstantRewardEnv, kwargs={"observation": "sequence", "action": action})
    assert "observation space" in refused(script.train, tiny(script, env_id=env_id), capsys)


@pytest.mark.parametrize("script, env_id, extra", [
    ("ppo_discrete.py", "LunarLander-v3", "box2d"),
    ("ppo_continuous_beta.py", "LunarLanderContinuous-v3", "box2d"),
    ("ppo_continuous_beta.py", "HalfCheetah-v5", "mujoco"),
])
def test_a_missing_dependency_is_one_line_naming_the_install(script, env_id, extra, tmp_path):
    """Box2D and MuJoCo made unimportable (a module of that name that fails): Gymnasium's own message, which
    names the pip install."""
    for module in ("Box2D", "mujoco"):
        os.makedirs(tmp_path / "missing" / module)
        (tmp_path / "missing" / module / "__init__.py").write_text(f"raise ImportError('no {module} here')\n")
    done = run_script(script, "--env-id", env_id, cwd=tmp_path, timeout=120,
                      env=dict(os.environ, PYTHONPATH=str(tmp_path / "missing")))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert env_id in line and f'pip install "gymnasium[{extra}]"' in line


# Watching a saved agent: --play needs one, and a display

@pytest.mark.parametrize("script", SCRIPTS)
def test_play_needs_a_saved_agent(script, capsys):
    message = refused(script.train, tiny(script, play=True), capsys)
    assert "--play" in message and "--eval-model" in message


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("environment", [
    {},  # no display at all
    {"DISPLAY": ":0", "SDL_VIDEODRIVER": "dummy"},  # a display that SDL is told not to use
    {"WAYLAND_DISPLAY": "wayland-0", "SDL_VIDEODRIVER": "offscreen"},
])
def test_play_without_a_display_is_refused_naming_how_to_get_one(script, environment, monkeypatch, capsys):
    path = f"{script.train(tiny(script, save_model=True))['run_dir']}/agent.pt"
    monkeypatch.setattr(sys, "platform", "linux")
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    capsys.readouterr()
    message = refused(script.evaluate_saved_agent, tiny(script, eval_model=path, play=True), capsys)
    assert "display" in message and "None" not in message
    assert "ssh -X" in message or "desktop" in message or "--capture-video" in message
