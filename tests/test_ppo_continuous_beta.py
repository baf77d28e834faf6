"""ppo_continuous_beta.py: the Beta head, bounds, refused inputs, the policy picture, learning."""

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo_continuous_beta
import pendulum_env
from ppo_continuous_beta import Agent, Args, policy_grid, to_env_action, train
from tests.helpers import BoundedActionEnv, ConstantRewardEnv, read_scalars, refused, register_once

register_once("BoundedAction-v0", BoundedActionEnv, max_episode_steps=20)


def tiny(**overrides) -> Args:
    settings = dict(env_id="SwingUpPendulum-v0", total_timesteps=512, num_envs=4, num_steps=32, eval_episodes=2)
    settings.update(overrides)
    return Args(**settings)


# The Beta head

def test_alpha_and_beta_exceed_one():
    torch.manual_seed(0)
    agent = Agent(obs_dim=3, action_dim=2)
    for layer in (agent.alpha_head, agent.beta_head):  # widen the heads so the test is not only at init
        torch.nn.init.normal_(layer.weight, std=1.0)
    alpha, beta = agent.get_alpha_beta(torch.randn(1000, 3) * 3)
    assert alpha.shape == beta.shape == (1000, 2)
    assert (alpha > 1).all() and (beta > 1).all()
    assert alpha.max() > 2 and beta.max() > 2  # the heads really move
    # far out, softplus(x) drops below float32's resolution at 1, and 1 + softplus rounds to 1: never below
    torch.nn.init.constant_(agent.alpha_head.bias, -100.0)
    alpha, _ = agent.get_alpha_beta(torch.randn(10, 3))
    assert (alpha >= 1).all()


def test_samples_stay_inside_eps_and_log_probabilities_are_finite_at_both_ends():
    agent = Agent(obs_dim=3, action_dim=1)
    # push alpha to ~60: the Beta mass sits against 1, where float32 samples round to 1.0
    torch.nn.init.constant_(agent.alpha_head.bias, 60.0)
    u, log_prob = agent.get_action(torch.zeros(5000, 3))
    eps = Agent.sample_eps
    assert u.min() >= eps and u.max() <= 1 - eps
    assert torch.isfinite(log_prob).all()
    # the update scores the stored samples finitely, and a stored action at either end of [eps, 1 - eps] too
    log_prob_again, entropy, _ = agent.evaluate_actions(torch.zeros(5000, 3), u)
    torch.testing.assert_close(log_prob_again, log_prob)
    assert torch.isfinite(entropy).all()
    for end in (eps, 1 - eps):
        log_prob, _, _ = agent.evaluate_actions(torch.zeros(1, 3), torch.full((1, 1), end))
        assert torch.isfinite(log_prob).all()


def test_log_probability_and_entropy_sum_over_action_dimensions():
    torch.manual_seed(1)
    agent = Agent(obs_dim=3, action_dim=2)
    obs, u = torch.randn(4, 3), torch.rand(4, 2) * 0.9 + 0.05
    log_prob, entropy, _ = agent.evaluate_actions(obs, u)
    alpha, beta = agent.get_alpha_beta(obs)
    per_dimension = torch.distributions.Beta(alpha, beta)
    torch.testing.assert_close(log_prob, per_dimension.log_prob(u).sum(-1))
    torch.testing.assert_close(entropy, per_dimension.entropy().sum(-1))


def agent_with(alpha: float, beta: float, deterministic_action: str = "mode") -> Agent:
    """An agent whose Beta is the same everywhere: zero head weights, biases with 1 + softplus(bias) = alpha, beta."""
    agent = Agent(obs_dim=3, action_dim=1, deterministic_action=deterministic_action)
    for head, value in ((agent.alpha_head, alpha), (agent.beta_head, beta)):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.constant_(head.bias, float(np.log(np.expm1(value - 1.0))))  # softplus^-1(value - 1)
    return agent


def test_deterministic_action_is_the_mode_or_with_mean_the_mean():
    """Beta(3, 2): the mode (alpha - 1) / (alpha + beta - 2) is 2/3, the mean alpha / (alpha + beta) 0.6."""
    obs = torch.randn(5, 3)
    torch.testing.assert_close(agent_with(3.0, 2.0).act_deterministic(obs), torch.full((5, 1), 2 / 3))
    torch.testing.assert_close(agent_with(3.0, 2.0, "mean").act_deterministic(obs), torch.full((5, 1), 0.6))
    # the mode is where the density peaks; alpha = beta = 1 (flat, a limit softplus reaches only by rounding)
    # gives the middle rather than 0 / 0
    distribution = torch.distributions.Beta(torch.tensor(3.0), torch.tensor(2.0))
    grid = torch.linspace(0.01, 0.99, 99)
    assert grid[distribution.log_prob(grid).argmax()].item() == pytest.approx(2 / 3, abs=0.01)
    flat = Agent(obs_dim=3, action_dim=1)
    torch.nn.init.constant_(flat.alpha_head.bias, -200.0), torch.nn.init.constant_(flat.beta_head.bias, -200.0)
    assert flat.act_deterministic(torch.zeros(1, 3)).item() == 0.5


@pytest.mark.parametrize("choice", ["mode", "mean"])
def test_the_deterministic_action_is_saved_with_the_agent_and_used_on_load(choice):
    result = train(tiny(save_model=True, deterministic_action=choice))
    saved = torch.load(f"{result['run_dir']}/agent.pt", weights_only=True)
    assert saved["args"]["deterministic_action"] == choice
    assert ppo_continuous_beta.load_agent(saved, "agent.pt", torch.device("cpu")).deterministic_action == choice
    evaluated = train(tiny(eval_model=f"{result['run_dir']}/agent.pt"))  # the default would be the mode
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])
    # asked for the other action, --eval-model evaluates at that one instead: the returns of a policy built from
    # the same network at that action
    other = {"mode": "mean", "mean": "mode"}[choice]
    evaluated = train(tiny(eval_model=f"{result['run_dir']}/agent.pt", deterministic_action=other))
    agent = ppo_continuous_beta.load_agent(saved, "agent.pt", torch.device("cpu"))
    agent.deterministic_action = other
    space = gym.make("SwingUpPendulum-v0").action_space
    expected = ppo_continuous_beta.evaluate(ppo_continuous_beta.deterministic_policy(
        agent, torch.device("cpu"), None, space.low, space.high), tiny())
    np.testing.assert_array_equal(evaluated["eval_returns"], expected)
    assert not np.array_equal(expected, result["eval_returns"])


def test_affine_map_onto_asymmetric_bounds():
    low, high = np.array([-2.0, 0.0]), np.array([1.0, 5.0])
    np.testing.assert_allclose(to_env_action(np.array([0.0, 0.0]), low, high), [-2.0, 0.0])
    np.testing.assert_allclose(to_env_action(np.array([1.0, 1.0]), low, high), [1.0, 5.0])
    np.testing.assert_allclose(to_env_action(np.array([0.5, 0.1]), low, high), [-0.5, 0.5])


def test_actions_land_inside_asymmetric_bounds_during_training():
    BoundedActionEnv.received.clear()
    train(tiny(env_id="BoundedAction-v0", total_timesteps=1024))
    actions = np.array(BoundedActionEnv.received)
    assert len(actions) >= 1024
    assert (actions >= [-2.0, 0.0]).all() and (actions <= [1.0, 5.0]).all()
    # and the policy explores the whole box, not a corner of it
    assert actions[:, 0].min() < -1.0 and actions[:, 0].max() > 0.0
    assert actions[:, 1].min() < 1.5 and actions[:, 1].max() > 3.5


def test_ratio_is_one_on_the_first_mini_batch():
    """With one epoch of one mini-batch, every logged figure is the first mini-batch's.

    Before any gradient step the new policy is the old one, so r_t(theta) = 1:
    nothing is clipped and both KL estimates vanish. "Exactly" up to float32
    rounding: a matrix product over 4 rows (the rollout) and over 128 (the
    mini-batch) may round the last bit differently; a wrong stored action
    (the env action instead of u, say) would give KLs of order 0.1 instead.
    """
    run_dir = train(tiny(update_epochs=1, num_minibatches=1, total_timesteps=1024))["run_dir"]
    scalars = read_scalars(run_dir)
    assert [value for _, value in scalars["losses/clipfrac"]] == [0.0] * 8
    for tag in ("losses/approx_kl", "losses/old_approx_kl"):
        assert len(scalars[tag]) == 8 and max(abs(value) for _, value in scalars[tag]) < 1e-6


# Time limits and reproducibility

def test_truncated_episodes_are_bootstrapped():
    """Reward 1 per step, cut at 5 steps: the critic must learn 1 / (1 - 0.9) = 10, not about 2.6."""
    register_once("ConstantRewardBox-v0", ConstantRewardEnv, max_episode_steps=5, kwargs={"action": "box"})
    agent = train(tiny(env_id="ConstantRewardBox-v0", total_timesteps=20_000, num_steps=50, gamma=0.9,
                       learning_rate=1e-2, norm_reward=False, eval_episodes=1))["agent"]
    with torch.no_grad():
        assert agent.get_value(torch.ones(1, 1)).item() == pytest.approx(10.0, rel=0.1)


def test_same_seed_gives_identical_logged_numbers():
    first, second = (read_scalars(train(tiny(total_timesteps=1024, seed=5))["run_dir"]) for _ in range(2))
    first.pop("charts/SPS"), second.pop("charts/SPS")
    assert "losses/approx_kl" in first and first == second


# Normalisation statistics: saved with the model, frozen for evaluation

def test_running_observation_statistics_match_the_whole_data():
    data = np.random.default_rng(0).normal(loc=[3.0, -1.0], scale=[2.0, 0.5], size=(1000, 2))
    obs_rms = ppo_continuous_beta.RunningMeanStd(shape=(2,))
    for batch in np.split(data, [7, 300, 301, 1000]):
        if len(batch):
            ppo_continuous_beta.normalize_obs(batch, obs_rms, update=True)
    np.testing.assert_allclose(obs_rms.mean, data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(obs_rms.var, data.var(0), rtol=1e-5)
    normalized = ppo_continuous_beta.normalize_obs(data, obs_rms)  # frozen: no update
    np.testing.assert_allclose(normalized.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(normalized.std(0), 1.0, rtol=1e-5)
    assert obs_rms.count == pytest.approx(1000, abs=1e-3)


def test_observation_statistics_are_saved_and_reused_for_evaluation():
    result = train(tiny(total_timesteps=2048, norm_obs=True, norm_reward=True, save_model=True))
    saved = torch.load(f"{result['run_dir']}/agent.pt", weights_only=True)
    stats = saved["obs_stats"]
    assert stats["count"] > 2048 and len(stats["mean"]) == 3 and min(stats["var"]) > 0
    assert stats["mean"] != [0.0, 0.0, 0.0]
    evaluated = train(tiny(eval_model=f"{result['run_dir']}/agent.pt"))
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])


def test_a_relu_agent_is_saved_and_evaluated_as_relu():
    result = train(tiny(activation="relu", save_model=True))
    path = f"{result['run_dir']}/agent.pt"
    saved = torch.load(path, weights_only=True)
    assert saved["args"]["activation"] == "relu"
    obs = torch.randn(8, 3)
    outputs = {}
    for activation in ("relu", "tanh"):
        agent = Agent(3, 1, activation=activation)
        agent.load_state_dict(saved["agent"])
        outputs[activation] = agent.act_deterministic(obs)
    assert not torch.allclose(outputs["relu"], outputs["tanh"])  # so the activation matters to this checkpoint
    evaluated = train(tiny(eval_model=path))
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])


def test_a_saved_agent_drives_the_pendulum_window_with_play(monkeypatch):
    """`--eval-model PATH --play` opens the pendulum's window; while the mouse button is held the saved
    agent's deterministic action drives the motor."""
    pygame = pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setattr(pendulum_env, "has_display", lambda: True)  # drawn off-screen, as if there were a screen
    monkeypatch.setattr(pygame.mouse, "get_pressed", lambda *args, **kwargs: (True, False, False))
    result = train(tiny(save_model=True, norm_obs=True))
    path = f"{result['run_dir']}/agent.pt"
    actions = []
    policy = ppo_continuous_beta.saved_policy(torch.load(path, weights_only=True), path, torch.device("cpu"))
    recording = lambda obs: actions.append(policy(obs[None])[0]) or actions[-1]  # noqa: E731
    monkeypatch.setattr(pendulum_env, "play", functools.partial(pendulum_env.play, steps=5))
    monkeypatch.setattr(ppo_continuous_beta, "saved_policy", lambda *args: lambda obs: recording(obs[0])[None])
    train(tiny(eval_model=path, play=True))
    assert len(actions) == 5
    env = gym.make("SwingUpPendulum-v0")
    assert all(action.shape == (1,) and env.action_space.contains(action) for action in actions)
    assert len({float(action[0]) for action in actions}) > 1  # the agent reacts to the swinging pendulum


def test_play_needs_a_saved_agent_and_a_display(monkeypatch, capsys):
    assert "--play shows a saved agent" in refused(train, tiny(play=True), capsys)
    path = f"{train(tiny(save_model=True))['run_dir']}/agent.pt"
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert "there is no display here" in refused(train, tiny(eval_model=path, play=True), capsys)


# Refused inputs

def test_infinite_bounds_images_and_discrete_actions_are_refused(capsys):
    register_once("UnboundedAction-v0", ConstantRewardEnv, kwargs={"action": "unbounded"})
    assert "has infinite bounds" in refused(train, tiny(env_id="UnboundedAction-v0"), capsys)
    register_once("ImageObs-v0", ConstantRewardEnv, kwargs={"observation": "image", "action": "box"})
    assert "is an image" in refused(train, tiny(env_id="ImageObs-v0"), capsys)
    assert "use ppo_discrete.py" in refused(train, tiny(env_id="Acrobot-v1"), capsys)


def test_checkpoint_of_the_other_script_or_environment_is_refused(capsys):
    path = f"{train(tiny(save_model=True))['run_dir']}/agent.pt"
    assert "was saved for SwingUpPendulum-v0, not Pendulum-v1" in refused(
        train, tiny(env_id="Pendulum-v1", eval_model=path), capsys)
    saved = torch.load(path, weights_only=True)
    saved["script"] = "ppo_discrete"
    torch.save(saved, "discrete.pt")
    assert "not a checkpoint saved by ppo_continuous_beta.py" in refused(train, tiny(eval_model="discrete.pt"), capsys)


# The policy picture

def test_policy_grid_puts_angle_on_x_and_velocity_on_y():
    axes = ppo_continuous_beta.pendulum_picture_axes("SwingUpPendulum-v0")
    assert axes == {"velocity_low": -1.0, "velocity_high": 1.0, "rad_per_s": 8.0, "action_low": 0.0,
                    "action_high": 1.0}
    # a policy that pushes with sin(angle) and ignores velocity: lowest at -pi/2, highest at +pi/2
    angle, velocity, action = policy_grid(lambda obs: (obs[:, 1:2] + 1) / 2, axes, width=65, height=33)
    assert action.shape == (33, 65)
    assert angle[0] == -np.pi and angle[-1] == np.pi and velocity[0] == 1.0 and velocity[-1] == -1.0
    assert action[16, 16] == pytest.approx(0.0) and action[16, 48] == pytest.approx(1.0)  # -pi/2, +pi/2
    assert action[16, 32] == pytest.approx(0.5)  # upright: the middle action
    np.testing.assert_array_equal(action[0], action[-1])  # top row and bottom row: the same angles
    # Pendulum-v1 observes the velocity in rad/s itself, and acts with a torque in [-2, 2]
    assert ppo_continuous_beta.pendulum_picture_axes("Pendulum-v1") == {
        "velocity_low": -8.0, "velocity_high": 8.0, "rad_per_s": 1.0, "action_low": -2.0, "action_high": 2.0}
    assert ppo_continuous_beta.pendulum_picture_axes("LunarLanderContinuous-v3") is None


def test_policy_figure_names_its_axes_and_the_ends_of_the_colour_bar():
    axes = ppo_continuous_beta.pendulum_picture_axes("Pendulum-v1")
    figure = ppo_continuous_beta.policy_figure(lambda obs: obs[:, 1:2] * 2, axes)
    plot, colorbar = figure.axes
    assert plot.get_xlabel() == "angle (rad, 0 = upright)" and plot.get_ylabel() == "angular velocity (rad/s)"
    assert plot.get_ylim() == (-8.0, 8.0)
    assert [label.get_text() for label in colorbar.get_yticklabels()] == ["-2 lowest", "0 middle", "2 highest"]


def test_training_on_a_pendulum_writes_the_policy_png_and_logs_it():
    result = train(tiny(heatmap_every=2, total_timesteps=512))
    with open(f"{result['run_dir']}/policy.png", "rb") as f:
        png = f.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (640, 400)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(result["run_dir"], size_guidance={"images": 0})
    events.Reload()
    images = events.Images("charts/policy")
    assert len(images) == 3  # iterations 2 and 4, and the end
    assert all((image.width, image.height) == (640, 400) for image in images)


# Learning

def test_swing_up_pendulum_learns_with_seed_1():
    """Seed 1 with the defaults, cut to 200k steps (about 10 s), swings the pendulum up.

    Measured here: -119 over 20 evaluation episodes (the full 2M steps give
    -123 over 100). Zero control scores about -1075 and the untrained
    policy -1100 to -1300, so -200 says the agent swings up and balances from
    nearly every start, with room for another CPU's rounding.
    """
    result = train(Args(seed=1, total_timesteps=200_000, eval_episodes=20))
    assert result["global_step"] <= 200_000
    assert result["eval_returns"].mean() >= -200
