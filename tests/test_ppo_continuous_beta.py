"""ppo_continuous_beta.py: the Beta head, bounds, saved agents, refused inputs, the policy picture, learning.

What both scripts share (GAE, losses, refused settings, bootstrapping, reproducibility) is in test_algorithm.py;
interrupts, resuming and loading in test_robustness.py.
"""

import functools
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

import pendulum_env
import ppo_continuous_beta
from ppo_continuous_beta import Agent, Args, evaluate_saved_agent, load_policy, to_env_action, train
from tests import helpers
from tests.helpers import (BoundedActionEnv, ConstantRewardEnv, look_like_a_desktop, read_scalars, refused,
                           register_once, run_script)

register_once("BoundedAction-v0", BoundedActionEnv, max_episode_steps=20)


tiny = functools.partial(helpers.tiny, ppo_continuous_beta)  # 4 iterations of 4 envs x 32 steps, the swing-up


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


def agent_with_heads(a: float, b: float) -> Agent:
    """An agent whose alpha and beta heads output `a` and `b` (before softplus) whatever the observation."""
    agent = Agent(obs_dim=3, action_dim=1)
    for head, value in ((agent.alpha_head, a), (agent.beta_head, b)):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.constant_(head.bias, value)
    return agent


@pytest.mark.parametrize("a, b", [
    (20.0, -20.0),  # alpha ~ 21, beta - 1 ~ 2e-9: the mode at 1
    (-20.0, 20.0),  # and at 0
    (0.0, -17.0),  # beta - 1 = 4e-8 is below float32's resolution at 1: beta rounds to 1
    (-17.0, 0.0),
    (-14.3, -17.0),  # alpha - 1 = 6.2e-7, 5 steps of float32 at 1, beta rounds to 1, and alpha + beta rounds to
                     # 2 + 4 steps: (alpha - 1) / (alpha + beta - 2) would be 1.25, the true mode 0.94
    (-14.0, -14.0),  # both 8e-7: equal, however small
    (-100.0, -100.0),  # both 4e-44, subnormal
    (-200.0, -200.0),  # both underflow to 0: the flat Beta(1, 1), whose middle is taken
    (-200.0, -100.0),
])
def test_the_mode_stays_in_the_unit_interval_at_extreme_head_outputs(a, b):
    """The mode (alpha - 1) / (alpha + beta - 2) = sa / (sa + sb) with sa, sb the softplus outputs, computed
    without rounding them into alpha and beta first: in [0, 1] wherever softplus is tiny, 0.5 where both are 0."""
    mode = agent_with_heads(a, b).act_deterministic(torch.zeros(4, 3))
    assert mode.shape == (4, 1) and torch.isfinite(mode).all()
    assert (mode >= 0).all() and (mode <= 1).all(), mode
    sa, sb = (float(torch.nn.functional.softplus(torch.tensor(x, dtype=torch.float32))) for x in (a, b))
    expected = 0.5 if sa + sb == 0 else sa / (sa + sb)  # in float64
    assert mode[0, 0].item() == pytest.approx(expected, abs=1e-6)
    if a == b:
        assert (mode == 0.5).all()


@pytest.mark.parametrize("choice", ["mode", "mean"])
def test_the_deterministic_action_is_saved_with_the_agent_and_used_on_load(choice, capsys):
    result = train(tiny(save_model=True, deterministic_action=choice))
    path = f"{result['run_dir']}/agent.pt"
    assert torch.load(path, weights_only=True)["args"]["deterministic_action"] == choice
    capsys.readouterr()
    evaluated = evaluate_saved_agent(tiny(eval_model=path))  # the default would be the mode
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])
    assert f"at the {choice}" in capsys.readouterr().out
    np.testing.assert_array_equal(ppo_continuous_beta.evaluate(load_policy(path), tiny()), result["eval_returns"])
    # asked for the other action, --eval-model evaluates at that one instead: the returns of the policy that
    # load_policy builds from the same network at that action
    other = {"mode": "mean", "mean": "mode"}[choice]
    evaluated = evaluate_saved_agent(tiny(eval_model=path, deterministic_action=other))
    assert f"at the {other}" in capsys.readouterr().out
    expected = ppo_continuous_beta.evaluate(load_policy(path, deterministic_action=other), tiny())
    np.testing.assert_array_equal(evaluated["eval_returns"], expected)
    assert not np.array_equal(expected, result["eval_returns"])


def test_a_saved_agent_keeps_its_env_keywords_unless_named(capsys):
    """Trained with motor=4.0, evaluated with --env-kwargs length=0.5: on the pendulum with both."""
    result = train(tiny(env_kwargs=("motor=4.0",), save_model=True))
    path = f"{result['run_dir']}/agent.pt"
    capsys.readouterr()
    evaluated = evaluate_saved_agent(Args(eval_model=path, eval_episodes=2, env_kwargs=("length=0.5",)))
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("evaluating")]
    assert f"{path} on SwingUpPendulum-v0" in line and "motor=4.0" in line and "length=0.5" in line
    both = tiny(env_kwargs=("motor=4.0", "length=0.5"))
    np.testing.assert_array_equal(evaluated["eval_returns"],
                                  ppo_continuous_beta.evaluate(load_policy(path), both))
    assert not np.array_equal(evaluated["eval_returns"], result["eval_returns"])  # the rod's length matters


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
    evaluated = evaluate_saved_agent(tiny(eval_model=f"{result['run_dir']}/agent.pt"))
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
    evaluated = evaluate_saved_agent(tiny(eval_model=path))
    np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])


def test_a_saved_agent_drives_the_pendulum_window_with_play(monkeypatch):
    """`--eval-model PATH --play` opens the pendulum's window (here drawn into memory) on the saved agent's
    pendulum; while the mouse button is held the agent's deterministic action drives the motor."""
    pygame = pytest.importorskip("pygame")
    result = train(tiny(save_model=True, norm_obs=True, env_kwargs=("motor=4.0",)))
    path = f"{result['run_dir']}/agent.pt"
    drawn, played, actions = look_like_a_desktop(monkeypatch), [], []
    monkeypatch.setattr(pygame.mouse, "get_pressed", lambda *args, **kwargs: (True, False, False))

    def five_frames(policy, **config):  # the window would run until closed
        played.append(config)
        recording = lambda obs: actions.append(policy(obs)) or actions[-1]  # noqa: E731
        return original(recording, steps=5, **config)

    original = pendulum_env.play
    monkeypatch.setattr(pendulum_env, "play", five_frames)
    evaluate_saved_agent(tiny(eval_model=path, play=True))
    assert drawn and played == [{"motor": 4.0}] and len(actions) == 5
    space = gym.make("SwingUpPendulum-v0").action_space
    assert all(action.shape == (1,) and space.contains(action) for action in actions)
    assert len({float(action[0]) for action in actions}) > 1  # the agent reacts to the swinging pendulum
    # the same action as load_policy's, from the pendulum hanging at rest
    first = load_policy(path)(np.array([[-1.0, 0.0, 0.0]], np.float32))[0]
    np.testing.assert_allclose(actions[0], first, atol=1e-5)


def test_play_on_another_env_runs_the_evaluation_episodes(monkeypatch):
    pytest.importorskip("pygame")
    from gymnasium.envs.classic_control.pendulum import PendulumEnv
    monkeypatch.setitem(PendulumEnv.metadata, "render_fps", 100_000)  # as fast as it draws
    result = train(tiny(env_id="Pendulum-v1", save_model=True, eval_episodes=1))
    drawn = look_like_a_desktop(monkeypatch)
    played = evaluate_saved_agent(tiny(eval_model=f"{result['run_dir']}/agent.pt", play=True, eval_episodes=1))
    assert drawn
    np.testing.assert_allclose(played["eval_returns"], result["eval_returns"], rtol=1e-5)


# Refused inputs

def test_infinite_bounds_images_and_discrete_actions_are_refused(capsys):
    register_once("UnboundedAction-v0", ConstantRewardEnv, kwargs={"action": "unbounded"})
    assert "infinite" in refused(train, tiny(env_id="UnboundedAction-v0"), capsys)
    register_once("ImageObs-v0", ConstantRewardEnv, kwargs={"observation": "image", "action": "box"})
    assert "observation space" in refused(train, tiny(env_id="ImageObs-v0"), capsys)
    assert "use ppo_discrete.py" in refused(train, tiny(env_id="Acrobot-v1"), capsys)


# The policy picture

class FigureRecorder:
    """Stands in for the SummaryWriter: keeps each figure logged, by tag and step."""

    def __init__(self):
        self.figures = []

    def add_figure(self, tag, figure, global_step=None, **kwargs):
        self.figures.append((tag, figure, global_step))


def drawn_picture(policy, env_id, tmp_path):
    """What log_policy_picture draws for `policy` on `env_id`: the image's array (rows from the highest velocity
    at the top to the lowest, columns angle -pi..pi), its extent and colour limits; None if it draws nothing."""
    writer = FigureRecorder()
    ppo_continuous_beta.log_policy_picture(writer, str(tmp_path), policy, tiny(env_id=env_id), 7)
    if not writer.figures:
        assert not os.path.exists(tmp_path / "policy.png")
        return None
    [(tag, figure, step)] = writer.figures
    assert (tag, step) == ("charts/policy", 7)
    assert (tmp_path / "policy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    [image] = figure.axes[0].get_images()
    return np.asarray(image.get_array()), image.get_extent(), image.get_clim()


def test_the_policy_picture_puts_angle_on_x_and_velocity_on_y(tmp_path):
    # a policy that pushes with sin(angle) and ignores velocity: lowest at -pi/2, highest at +pi/2
    action, extent, limits = drawn_picture(lambda obs: (obs[:, 1:2] + 1) / 2, "SwingUpPendulum-v0", tmp_path)
    height, width = action.shape
    assert limits == (0.0, 1.0) and list(extent) == [-np.pi, np.pi, -1.0, 1.0]
    angles = np.linspace(-np.pi, np.pi, width)
    np.testing.assert_allclose(action[height // 2], (np.sin(angles) + 1) / 2, atol=1e-6)
    assert action[:, np.argmin(np.abs(angles))].tolist() == pytest.approx([0.5] * height, abs=0.02)  # upright
    np.testing.assert_array_equal(action[0], action[-1])  # every row: the same angles
    # one that pushes with the velocity: highest in the top row, lowest in the bottom one
    action, _, _ = drawn_picture(lambda obs: (obs[:, 2:3] + 1) / 2, "SwingUpPendulum-v0", tmp_path)
    np.testing.assert_allclose(action[0], 1.0)
    np.testing.assert_allclose(action[-1], 0.0, atol=1e-6)
    # Pendulum-v1 observes the velocity in [-8, 8] and acts with a torque in [-2, 2]
    _, extent, limits = drawn_picture(lambda obs: obs[:, 1:2] * 2, "Pendulum-v1", tmp_path)
    assert limits == (-2.0, 2.0) and list(extent) == [-np.pi, np.pi, -8.0, 8.0]
    # and an env that is no pendulum gets no picture
    assert drawn_picture(lambda obs: obs[:, :2], "BoundedAction-v0", tmp_path / "none") is None


def test_training_on_a_pendulum_writes_the_policy_png_and_logs_it():
    result = train(tiny(heatmap_every=2, total_timesteps=512))
    with open(f"{result['run_dir']}/policy.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(result["run_dir"], size_guidance={"images": 0})
    events.Reload()
    assert [image.step for image in events.Images("charts/policy")] == [256, 512, 512]  # iterations 2, 4, the end


# Learning

def test_swing_up_pendulum_learns_with_seed_1():
    """Seed 1 with the defaults, cut to 200k steps (about 10 s), swings the pendulum up.

    Measured here: -119 over 20 evaluation episodes (the full 4M steps give
    -120 over 100). Zero control scores about -1075 and the untrained
    policy -1100 to -1300, so -200 says the agent swings up and balances from
    nearly every start, with room for another CPU's rounding.
    """
    result = train(Args(seed=1, total_timesteps=200_000, eval_episodes=20))
    assert result["global_step"] <= 200_000
    assert result["eval_returns"].mean() >= -200


# MuJoCo

def test_mujoco_envs_train_without_its_deprecation_noise(tmp_path):
    """Gymnasium's v5 models use a compiler attribute MuJoCo deprecates: MuJoCo would print that warning at
    every env made and append it to MUJOCO_LOG.TXT in the working folder."""
    pytest.importorskip("mujoco")
    done = run_script("ppo_continuous_beta.py", "--env-id", "HalfCheetah-v5", "--total-timesteps", "2048",
                      "--num-envs", "2", "--num-steps", "1024", "--eval-episodes", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "settotalmass" not in done.stdout + done.stderr
    assert not os.path.exists(tmp_path / "MUJOCO_LOG.TXT")
    assert len(list(tmp_path.glob("runs/HalfCheetah-v5__*/summary.json"))) == 1
