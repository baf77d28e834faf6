"""Behaviour both PPO scripts must keep through a refactor, each as a worked example with its numbers.

1. `ppo_loss` on a batch of four, computed by hand: clipped surrogate, clipped value loss, entropy bonus.
2. A truncated step is bootstrapped from `infos["final_obs"]`, not from the reset observation; a step that is
   both terminated and truncated is not bootstrapped.
3. The categorical sampler draws each action with its probability and returns its log-probability.
4. Resuming restores exactly what the checkpoint saved, and resuming one checkpoint twice gives one run.
5. A standard `torch.optim.lr_scheduler` can drive the optimizer that `train()` builds.
"""

import math
import os
import shutil
import types
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers.utils import RunningMeanStd

import ppo_continuous_beta
import ppo_discrete
from tests.helpers import ACTION_OF, AlternatingObservationEnv, interrupted_run, read_scalars, register_once, tiny

SCRIPTS = [ppo_discrete, ppo_continuous_beta]


@pytest.fixture(params=SCRIPTS, ids=lambda script: script.__name__)
def script(request):
    return request.param


# 1. ppo_loss, by hand

# Four samples whose new policy has moved by the ratios r = 0.5, 0.9, 1.1, 1.5 (clip 0.2: r is kept in [0.8, 1.2]),
# with advantages A = -1, 2, 0, 3 and entropies 0.5, 1.0, 1.5, 2.0 (mean 1.25). The critic predicted V_old and now
# predicts V_new for the returns R:
#   V_old  0    0    1    1
#   V_new  1   -1    1.1  0.5     moved +1, -1 (both beyond the clip of 0.2), +0.1 (within), -0.5 (beyond)
#   R      2   -3    0    1
# float64 throughout, so the only rounding is float64's.
RATIOS = [0.5, 0.9, 1.1, 1.5]
OLD_LOGPROBS = torch.tensor([-1.0, -0.5, -2.0, -0.3], dtype=torch.float64)
ADVANTAGES = torch.tensor([-1.0, 2.0, 0.0, 3.0], dtype=torch.float64)
ENTROPIES = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64)
OLD_VALUES = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
NEW_VALUES = torch.tensor([1.0, -1.0, 1.1, 0.5], dtype=torch.float64)
RETURNS = torch.tensor([2.0, -3.0, 0.0, 1.0], dtype=torch.float64)


def worked_example_loss(script, norm_adv: bool, clip_vloss: bool):
    """ppo_loss on the four samples above, through a stub agent whose evaluate_actions returns the chosen
    log pi_new = log pi_old + log r, the entropies and V_new; ent_coef 0.1, vf_coef 0.5. Returns
    (loss, pg_loss, v_loss, entropy)."""
    new_logprobs = OLD_LOGPROBS + torch.tensor(RATIOS, dtype=torch.float64).log()
    agent = types.SimpleNamespace(evaluate_actions=lambda obs, actions: (new_logprobs, ENTROPIES, NEW_VALUES))
    args = types.SimpleNamespace(norm_adv=norm_adv, clip_coef=0.2, clip_vloss=clip_vloss, ent_coef=0.1, vf_coef=0.5)
    obs, actions = torch.zeros(4, 1), torch.zeros(4, dtype=torch.long)
    outputs = script.ppo_loss(agent, obs, actions, OLD_LOGPROBS, OLD_VALUES, ADVANTAGES, RETURNS, args)
    return [output.item() for output in outputs[:4]]


def test_ppo_loss_with_normalized_advantages_and_clipped_values(script):
    loss, pg_loss, v_loss, entropy = worked_example_loss(script, norm_adv=True, clip_vloss=True)

    # Advantages normalized: mean (-1 + 2 + 0 + 3) / 4 = 1, deviations -2, 1, -1, 2;
    # std with Bessel's correction sqrt((4 + 1 + 1 + 4) / 3) = sqrt(10/3) = s ~ 1.8257;
    # A_hat = (-2, 1, -1, 2) / (s + 1e-8): the 0 became negative, the signs are -, +, -, +.
    s = math.sqrt(10 / 3) + 1e-8
    # min(r A_hat, clip(r, 0.8, 1.2) A_hat), in units of 1/s:
    #   r 0.5, A_hat -2: min(-1.0, 0.8 * -2 = -1.6) = -1.6   clipped (the pessimistic side of a fall in r)
    #   r 0.9, A_hat  1: 0.9                                  inside the clip range
    #   r 1.1, A_hat -1: -1.1                                 inside the clip range
    #   r 1.5, A_hat  2: min(3.0, 1.2 * 2 = 2.4) = 2.4       clipped (no credit beyond 1 + eps)
    # pg_loss = -mean = -(-1.6 + 0.9 - 1.1 + 2.4) / 4 / s = -0.15 / s ~ -0.082158
    assert pg_loss == pytest.approx(-0.15 / s, abs=1e-6)

    # Value loss, clipped: V_clip = V_old + clip(V_new - V_old, -0.2, 0.2) = 0.2, -0.2, 1.1, 0.8;
    # per sample max((V_new - R)^2, (V_clip - R)^2):
    #   max((1 - 2)^2 = 1,       (0.2 - 2)^2 = 3.24)  = 3.24
    #   max((-1 + 3)^2 = 4,      (-0.2 + 3)^2 = 7.84) = 7.84
    #   max((1.1 - 0)^2 = 1.21,  1.21)                = 1.21
    #   max((0.5 - 1)^2 = 0.25,  (0.8 - 1)^2 = 0.04)  = 0.25
    # v_loss = 0.5 * (3.24 + 7.84 + 1.21 + 0.25) / 4 = 0.5 * 3.135 = 1.5675
    assert v_loss == pytest.approx(1.5675, abs=1e-6)

    # Entropy: mean (0.5 + 1.0 + 1.5 + 2.0) / 4 = 1.25, a bonus, so it lowers the loss
    assert entropy == pytest.approx(1.25, abs=1e-6)

    # loss = pg_loss - ent_coef * entropy + vf_coef * v_loss = -0.15 / s - 0.125 + 0.78375 ~ 0.576592
    assert loss == pytest.approx(-0.15 / s - 0.1 * 1.25 + 0.5 * 1.5675, abs=1e-6)


def test_ppo_loss_with_raw_advantages_and_unclipped_values(script):
    loss, pg_loss, v_loss, entropy = worked_example_loss(script, norm_adv=False, clip_vloss=False)

    # min(r A, clip(r, 0.8, 1.2) A) with the raw A = -1, 2, 0, 3:
    #   min(-0.5, -0.8) = -0.8;  0.9 * 2 = 1.8;  1.1 * 0 = 0;  min(4.5, 3.6) = 3.6
    # pg_loss = -(-0.8 + 1.8 + 0 + 3.6) / 4 = -1.15
    assert pg_loss == pytest.approx(-1.15, abs=1e-6)
    # v_loss = 0.5 * mean((V_new - R)^2) = 0.5 * (1 + 4 + 1.21 + 0.25) / 4 = 0.8075
    assert v_loss == pytest.approx(0.8075, abs=1e-6)
    assert entropy == pytest.approx(1.25, abs=1e-6)
    # loss = -1.15 - 0.1 * 1.25 + 0.5 * 0.8075 = -0.87125
    assert loss == pytest.approx(-0.87125, abs=1e-6)


# 2. Time limits: bootstrapping from infos["final_obs"]

def rollout_seen_by_gae(script, monkeypatch, terminate_after=None):
    """One iteration on AlternatingObservationEnv cut at 3 steps (2 envs x 6 steps, gamma 0.5, reward 1 a step):
    the rewards, values and dones that train() hands to compute_gae, as numpy arrays of shape (6, 2)."""
    env_id = f"AlternatingObservation-{ACTION_OF[script.__name__]}-terminate{terminate_after}-v0"
    register_once(env_id, AlternatingObservationEnv, max_episode_steps=3,
                  kwargs={"action": ACTION_OF[script.__name__], "terminate_after": terminate_after})
    seen = []
    original = script.compute_gae

    def recording_gae(rewards, values, dones, last_value, gamma, gae_lambda):
        seen.append([np.array(x, dtype=np.float64) for x in (rewards, values, dones)])  # copies: storage is reused
        return original(rewards, values, dones, last_value, gamma, gae_lambda)

    monkeypatch.setattr(script, "compute_gae", recording_gae)
    extra = {"norm_reward": False} if script is ppo_continuous_beta else {}  # raw rewards, to read them back
    script.train(script.Args(env_id=env_id, num_envs=2, num_steps=6, total_timesteps=12, num_minibatches=2,
                             gamma=0.5, eval_episodes=1, **extra))
    [(rewards, values, dones)] = seen
    return rewards, values, dones


def test_a_truncated_step_is_bootstrapped_from_the_final_observation(script, monkeypatch):
    rewards, values, dones = rollout_seen_by_gae(script, monkeypatch)
    # Stored observations, steps 0..5: -1, +1, -1 | -1, +1, -1. Step 2 takes the episode to its 3rd step, where the
    # time limit cuts it: its true last observation is +1 (infos["final_obs"]), but the env already returns the next
    # episode's first, -1. Same at step 5. So V(final_obs) = V(+1) = values[1], and V(reset) = V(-1) = values[0].
    v_final, v_reset = values[1], values[0]
    assert (np.abs(v_final - v_reset) > 1e-3).all()  # the critic tells them apart, so the test can too
    # reward of a cut step = 1 + gamma * V(final_obs) = 1 + 0.5 * values[1]; every other step keeps its 1
    np.testing.assert_allclose(rewards[[2, 5]], [1 + 0.5 * v_final] * 2, atol=1e-6)
    np.testing.assert_array_equal(rewards[[0, 1, 3, 4]], np.ones((4, 2)))
    # and the cut step is a done for GAE, so nothing flows across it
    np.testing.assert_array_equal(dones, [[0, 0], [0, 0], [1, 1], [0, 0], [0, 0], [1, 1]])


def test_a_step_both_terminated_and_truncated_is_not_bootstrapped(script, monkeypatch):
    # The episode terminates at its 3rd step, the very step where the time limit also cuts it: a real end,
    # so the reward stays 1, with no gamma * V(final_obs) added.
    rewards, _, dones = rollout_seen_by_gae(script, monkeypatch, terminate_after=3)
    np.testing.assert_array_equal(rewards, np.ones((6, 2)))
    np.testing.assert_array_equal(dones, [[0, 0], [0, 0], [1, 1], [0, 0], [0, 0], [1, 1]])


# 3. The categorical sampler

def test_categorical_samples_follow_the_policy_and_carry_their_log_probabilities():
    torch.manual_seed(0)
    agent = ppo_discrete.Agent(obs_dim=1, n_actions=3)
    probabilities = torch.tensor([0.1, 0.2, 0.7])
    with torch.no_grad():  # logits = log p, whatever the observation
        agent.actor[-1].weight.zero_()
        agent.actor[-1].bias.copy_(probabilities.log())
        action, log_prob = agent.get_action(torch.zeros(20_000, 1))
    frequencies = torch.bincount(action, minlength=3) / 20_000
    # standard error of a frequency, sqrt(p (1 - p) / n): 0.0021, 0.0028, 0.0032; allow 4 of them
    standard_errors = (probabilities * (1 - probabilities) / 20_000).sqrt()
    assert ((frequencies - probabilities).abs() < 4 * standard_errors).all(), frequencies
    # log pi(a) of each sample: log 0.1, log 0.2 or log 0.7
    torch.testing.assert_close(log_prob, probabilities.log()[action])


# 4. Resuming

@pytest.fixture
def checkpointed_run(script, monkeypatch):
    """A run of 3 iterations interrupted in iteration 2, so that it checkpointed there (global step 256); the Beta
    run normalizes both observations and rewards, so both running statistics are in the checkpoint. Returns its
    Args and the path."""
    extra = {"norm_obs": True, "norm_reward": True} if script is ppo_continuous_beta else {}
    args = tiny(script, total_timesteps=384, update_epochs=2, **extra)  # 3 iterations, 2 epochs of 4 mini-batches
    return args, interrupted_run(script, args, 2, monkeypatch)


def built_as_train_builds(script, args):
    """The environments, agent, optimizer and observation statistics that train() builds before it restores."""
    envs = script.make_env(args.env_id, args.num_envs, args.vectorization_mode, args.env_kwargs)
    obs_dim, space = envs.single_observation_space.shape[0], envs.single_action_space
    if script is ppo_discrete:
        agent, obs_rms = script.Agent(obs_dim, int(space.n), args.hidden_size, args.activation), None
    else:
        envs = gym.wrappers.vector.NormalizeReward(envs, gamma=args.gamma)
        agent = script.Agent(obs_dim, space.shape[0], args.hidden_size, args.activation, args.deterministic_action)
        obs_rms = RunningMeanStd(shape=(obs_dim,))
    return envs, agent, torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5), obs_rms


def restore(script, checkpoint, envs, agent, optimizer, obs_rms):
    """The scripts' restore, the one call to adapt if its signature changes."""
    if script is ppo_discrete:
        return script.restore(checkpoint, agent, optimizer)
    return script.restore(checkpoint, agent, optimizer, envs, obs_rms)


def test_restore_puts_back_exactly_what_the_checkpoint_saved(script, checkpointed_run):
    args, path = checkpointed_run
    saved = torch.load(path, weights_only=True)
    torch.manual_seed(12345)  # another seed than the run's: fresh weights and another random state
    envs, agent, optimizer, obs_rms = built_as_train_builds(script, args)
    assert not all(torch.equal(agent.state_dict()[k], v) for k, v in saved["agent"].items())
    assert not torch.equal(torch.get_rng_state(), saved["torch_rng"])

    restore(script, saved, envs, agent, optimizer, obs_rms)

    # the weights, tensor by tensor
    assert agent.state_dict().keys() == saved["agent"].keys()
    assert all(torch.equal(agent.state_dict()[k], v) for k, v in saved["agent"].items())
    # Adam's moments and step counts for every parameter, and its settings (learning rate, betas, eps, ...)
    state, saved_state = optimizer.state_dict()["state"], saved["optimizer"]["state"]
    assert state.keys() == saved_state.keys() and len(state) == len(list(agent.parameters()))
    for i in saved_state:
        assert state[i].keys() == saved_state[i].keys() == {"step", "exp_avg", "exp_avg_sq"}
        assert all(torch.equal(state[i][key], saved_state[i][key]) for key in saved_state[i])
    assert float(saved_state[0]["step"]) == 2 * 2 * 4  # 2 iterations x 2 epochs x 4 mini-batches
    assert optimizer.state_dict()["param_groups"] == saved["optimizer"]["param_groups"]
    # the random state, so sampling continues where it stopped
    assert torch.equal(torch.get_rng_state(), saved["torch_rng"])
    # the running statistics of observations and of returns (Beta script)
    if script is ppo_continuous_beta:
        for rms, stats in ((obs_rms, saved["obs_stats"]), (envs.return_rms, saved["reward_stats"])):
            assert stats["count"] > 256 and not np.allclose(stats["var"], 1.0)  # the run did move them
            np.testing.assert_array_equal(rms.mean, stats["mean"])
            np.testing.assert_array_equal(rms.var, stats["var"])
            assert rms.count == stats["count"]
    envs.close()


def test_resuming_one_checkpoint_twice_gives_the_same_run(script, checkpointed_run, tmp_path, monkeypatch):
    path = os.path.abspath(checkpointed_run[1])
    run_name = os.path.basename(os.path.dirname(path))
    scalars, eval_returns = [], []
    for copy in ("first", "second"):  # each resume in a folder of its own holding only the checkpoint
        os.makedirs(tmp_path / copy / "runs" / run_name)
        shutil.copy(path, tmp_path / copy / "runs" / run_name)
        monkeypatch.chdir(tmp_path / copy)
        result = script.train(script.Args(resume=f"runs/{run_name}/checkpoint.pt"))
        scalars.append(read_scalars(f"runs/{run_name}"))
        scalars[-1].pop("charts/SPS")  # wall-clock speed, the one number allowed to differ
        eval_returns.append(result["eval_returns"])
    # the resumed run trained iteration 3 alone: its losses are logged once, at step 3 * 128 = 384
    assert [step for step, _ in scalars[0]["losses/value_loss"]] == [384]
    assert scalars[0] == scalars[1]
    np.testing.assert_array_equal(eval_returns[0], eval_returns[1])


# 5. A learning-rate scheduler on the optimizer train() builds

def test_a_standard_lr_scheduler_drives_the_optimizer_of_a_run(script, monkeypatch):
    built = []

    class RecordingAdam(torch.optim.Adam):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    result = script.train(tiny(script, total_timesteps=128, anneal_lr=False, learning_rate=1e-3))
    [optimizer] = built
    assert optimizer.param_groups[0]["lr"] == 1e-3

    # LinearLR from factor 1 to 0.5 over 2 steps: after one step the factor is 1 + (0.5 - 1) * 1/2 = 0.75
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.5, total_iters=2)
    sum(parameter.square().sum() for parameter in result["agent"].parameters()).backward()
    optimizer.step()
    with warnings.catch_warnings():  # torch warns if the scheduler did not see optimizer.step() happen
        warnings.simplefilter("error")
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.75e-3)
