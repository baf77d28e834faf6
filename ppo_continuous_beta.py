"""PPO with a Beta policy for bounded continuous actions, in one file: `python ppo_continuous_beta.py`.

A Gaussian policy puts probability on actions outside the bounds, which the environment then clips; a Beta
distribution lives on [0, 1] and is mapped onto each action dimension's [low, high], so every sampled action is
legal and its log-probability is that of the action the environment acts on.

Read it top to bottom, in PPO's order: `Args` (every setting; `--help` prints them; the default env is the
swing-up pendulum of pendulum_env.py), `make_env` (vector envs, same-step autoreset), `Agent` (critic and Beta
actor), the pure functions (`compute_gae`, the losses, `ppo_loss`), then `train`: set-up, rollout with truncation
bootstrapping, GAE, the update epochs, logging. PPO ends at the banner "Below: what keeps a run safe and usable";
then come checks, interrupts, checkpoints, evaluation, the policy picture and the summary.
Papers: PPO, Schulman et al. 2017, arXiv:1707.06347; GAE, Schulman et al. 2016, arXiv:1506.02438; the Beta
policy, Chou et al. 2017, ICML.
"""

import ast
import difflib
import glob
import functools
import inspect
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Annotated, Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from gymnasium.wrappers.utils import RunningMeanStd
from torch.utils.tensorboard import SummaryWriter

try:  # registers SwingUpPendulum-v0; without pendulum_env.py beside it the script trains every other env
    import pendulum_env
except ModuleNotFoundError:  # (what pendulum_env imports, this script has imported already)
    pendulum_env = None


@dataclass
class Args:
    exp_name: str = "ppo_continuous_beta"
    """name of this experiment, part of the run name"""
    seed: int = 1
    """seed of the experiment (environments, network initialisation, sampling)"""
    torch_deterministic: bool = True
    """if toggled, `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = False
    """if toggled, use CUDA when available (small networks run faster on the CPU)"""
    torch_threads: int = 1
    """number of CPU threads torch may use; small networks run fastest on one"""
    compile: bool = False
    """if toggled, compile the mini-batch loss with torch.compile: 5-15 s once, then each update ~30% faster; for long runs"""
    capture_video: bool = False
    """if toggled, record a video of the first evaluation episode under `videos/{run_name}`"""
    heatmap_every: int = 0
    """also draw the policy picture every this many iterations (0: only at the end)"""
    save_model: bool = False
    """if toggled, save the trained agent to `runs/{run_name}/agent.pt`"""
    eval_model: str | None = None
    """path of a saved agent: skip training, load it and only evaluate it"""
    play: bool = False
    """with --eval-model: show the agent acting in a window for --eval-episodes episodes instead"""
    checkpoint_every: int = 0
    """save a resumable checkpoint every this many iterations (0: only on interrupt)"""
    resume: str | None = None
    """path of a checkpoint to continue training from (same run directory)"""

    # Algorithm
    env_kwargs: tuple[str, ...] = ()
    """constructor keywords of the environment as KEY=VALUE, values read as Python literals (e.g. length=1.0)"""
    env_id: str = "SwingUpPendulum-v0"
    """id of the Gymnasium environment"""
    total_timesteps: "StepCount" = 2_000_000
    """total environment steps of training (1e5 and 100_000 are read as 100000)"""
    learning_rate: float = 1e-3
    """learning rate of the Adam optimizer"""
    num_envs: int = 64
    """number of environments stepped together"""
    num_steps: int = 32
    """steps per environment in each rollout"""
    vectorization_mode: Literal["auto", "sync", "async", "vector_entry_point"] = "auto"
    """how environments are vectorized: `auto` takes the env's native vector implementation when it supports same-step autoreset, else `sync`"""
    anneal_lr: bool = True
    """if toggled, anneal the learning rate linearly to zero"""
    gamma: float = 0.99
    """discount factor gamma"""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation"""
    num_minibatches: int = 4
    """number of mini-batches per epoch"""
    update_epochs: int = 10
    """number of passes over the batch per update"""
    norm_adv: bool = True
    """if toggled, normalize advantages per mini-batch"""
    clip_coef: float = 0.2
    """surrogate clipping coefficient epsilon"""
    clip_vloss: bool = False
    """if toggled, clip the value loss as the PPO2 implementation does (off: it slows the critic on large returns)"""
    ent_coef: float = 0.0
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """maximum global norm of the gradient"""
    target_kl: float | None = None
    """stop an update early when the approximate KL exceeds this (None: never)"""
    eval_episodes: int = 10
    """number of deterministic evaluation episodes after training"""
    eval_every: int = 0
    """also evaluate every this many iterations, logging eval/mean_return (0: only after training)"""
    hidden_size: int = 64
    """width of the two hidden layers of the actor and of the critic"""
    activation: Literal["tanh", "relu"] = "tanh"
    """nonlinearity of those hidden layers"""
    deterministic_action: Literal["mode", "mean"] | None = None
    """action of evaluation, play and the policy picture: the Beta's mode (default) or mean; --eval-model: the agent's own unless given"""
    norm_obs: bool = False
    """if toggled, normalize observations by running mean and std (frozen for evaluation)"""
    norm_reward: bool = True
    """if toggled, scale rewards by the running std of the discounted return"""

    # Derived from the above when a run starts (not options)
    batch_size: int = field(default=0, init=False)
    """num_envs * num_steps"""
    minibatch_size: int = field(default=0, init=False)
    """batch_size // num_minibatches"""
    num_iterations: int = field(default=0, init=False)
    """total_timesteps // batch_size"""


# Environments
def make_env(env_id: str, num_envs: int, mode: str, env_kwargs=(), video_folder=None) -> gym.vector.VectorEnv:
    """`num_envs` copies of `env_id` stepped together (mode: "auto", "sync", "async", or "vector_entry_point",
    the env's own vectorized version, which "auto" takes when it has same-step autoreset).

    Same-step autoreset: the step that ends an episode returns the next episode's first observation and
    keeps the true last one in `infos["final_obs"]`, so a truncated episode can be bootstrapped from it.
    """
    same_step, mode = gym.vector.AutoresetMode.SAME_STEP, vectorization_mode(env_id, mode, env_kwargs)
    if mode == "vector_entry_point":
        envs = gym.make_vec(env_id, num_envs, mode, autoreset_mode=same_step, **keywords(env_kwargs))
    else:
        vector_class = gym.vector.SyncVectorEnv if mode == "sync" else gym.vector.AsyncVectorEnv
        envs = vector_class([functools.partial(make_one_env, env_id, env_kwargs, video_folder=video_folder if i == 0
                                               else None) for i in range(num_envs)], autoreset_mode=same_step)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


# The network
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate critic and Beta actor MLPs (2 hidden layers of `hidden` units, tanh or ReLU). Two linear heads per
    action dimension give alpha = 1 + softplus(a), beta = 1 + softplus(b): both above 1, the density unimodal."""

    sample_eps = 1e-6  # samples stay in [eps, 1 - eps], where log-probabilities are finite

    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 64, activation: str = "tanh",
                 deterministic_action: str = "mode"):
        super().__init__()
        self.deterministic_action = deterministic_action
        Activation = nn.ReLU if activation == "relu" else nn.Tanh
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), Activation(),
            layer_init(nn.Linear(hidden, hidden)), Activation(),
            layer_init(nn.Linear(hidden, 1), std=1.0),
        )
        self.actor_body = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), Activation(),
            layer_init(nn.Linear(hidden, hidden)), Activation(),
        )
        self.alpha_head = layer_init(nn.Linear(hidden, action_dim), std=0.01)
        self.beta_head = layer_init(nn.Linear(hidden, action_dim), std=0.01)

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def get_alpha_beta(self, obs: torch.Tensor):
        hidden = self.actor_body(obs)
        alpha = 1.0 + nn.functional.softplus(self.alpha_head(hidden))
        beta = 1.0 + nn.functional.softplus(self.beta_head(hidden))
        return alpha, beta

    def get_action(self, obs: torch.Tensor):
        """Rollout: sample u in [0, 1]^d; u and log pi(u|s) (V(s) after the rollout, the entropy in the update)."""
        distribution = torch.distributions.Beta(*self.get_alpha_beta(obs), validate_args=False)
        action = distribution.sample().clamp(self.sample_eps, 1.0 - self.sample_eps)
        return action, distribution.log_prob(action).sum(-1)

    def evaluate_actions(self, obs: torch.Tensor, action: torch.Tensor):
        """Update: log pi(u|s) and entropy of stored samples under the current policy (sums over dimensions), V(s)."""
        distribution = torch.distributions.Beta(*self.get_alpha_beta(obs), validate_args=False)
        return distribution.log_prob(action).sum(-1), distribution.entropy().sum(-1), self.get_value(obs)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The mode (alpha - 1) / (alpha + beta - 2), the most likely u as argmax is for a categorical policy;
        with deterministic_action="mean", the mean alpha / (alpha + beta), which stays short of the bounds."""
        alpha, beta = self.get_alpha_beta(obs)
        if self.deterministic_action == "mean":
            return alpha / (alpha + beta)
        return torch.where(alpha + beta > 2, (alpha - 1) / (alpha + beta - 2), 0.5)  # alpha = beta = 1: flat


def to_env_action(u: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map u in [0, 1]^d affinely onto each dimension's [low, high]."""
    return (low + u * (high - low)).astype(np.float32)


# The algorithm's pure functions
def compute_gae(rewards, values, dones, last_value, gamma: float, gae_lambda: float):
    """Generalized advantage estimation over a rollout of shape (T, N).

    delta_t = r_t + gamma * (1 - d_t) * V_{t+1} - V_t, with V_T = last_value;
    A_t = delta_t + gamma * lambda * (1 - d_t) * A_{t+1}; returns = A + V.
    `dones[t]` marks that the episode ended with step t (truncation already
    bootstrapped into `rewards[t]`). Works on torch tensors and numpy arrays.
    """
    advantages, dones = rewards * 0.0, dones * 1.0  # floating point, whatever the input's type, shape and device
    next_value, next_advantage = last_value, 0.0
    for t in reversed(range(len(rewards))):
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * not_done * next_value - values[t]
        next_advantage = delta + gamma * gae_lambda * not_done * next_advantage
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages, advantages + values


def clipped_surrogate_loss(ratio: torch.Tensor, advantages: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """L^CLIP negated for gradient descent: -E[min(r_t A_t, clip(r_t, 1-eps, 1+eps) A_t)]."""
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef) * advantages
    return -torch.min(unclipped, clipped).mean()


def value_loss(new_values, old_values, returns, clip_coef: float, clip_vloss: bool) -> torch.Tensor:
    """0.5 * squared error; with clipping, the worse of the raw and the clipped prediction."""
    unclipped = (new_values - returns) ** 2
    if not clip_vloss:
        return 0.5 * unclipped.mean()
    clipped_values = old_values + torch.clamp(new_values - old_values, -clip_coef, clip_coef)
    clipped = (clipped_values - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped).mean()


def ppo_loss(agent, obs, actions, old_logprobs, old_values, advantages, returns, args):
    """One mini-batch's loss to minimise, -(L^CLIP - c1 L^VF + c2 S), and its parts for logging."""
    newlogprob, entropy, newvalue = agent.evaluate_actions(obs, actions)
    logratio = newlogprob - old_logprobs
    ratio = logratio.exp()  # r_t(theta)
    if args.norm_adv:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    pg_loss = clipped_surrogate_loss(ratio, advantages, args.clip_coef)
    v_loss = value_loss(newvalue, old_values, returns, args.clip_coef, args.clip_vloss)
    entropy_loss = entropy.mean()
    loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
    return loss, pg_loss, v_loss, entropy_loss, logratio, ratio


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - Var[target - prediction] / Var[target]: 1 is perfect, 0 is no better than a constant."""
    variance = targets.var()
    return float("nan") if variance == 0 else float(1 - (targets - predictions).var() / variance)


def train(args: Args) -> dict:
    # checks every setting, seeds Python, numpy and torch, picks the device; a resumed run keeps its settings
    args, checkpoint, device = start_run(args)
    if args.eval_model is not None:
        return evaluate_saved_agent(args, device)

    # Set-up: environments, agent, optimizer, logger
    run_name = checkpoint["run_name"] if checkpoint else new_run_name(args)
    run_dir = f"runs/{run_name}"
    envs = make_env(args.env_id, args.num_envs, args.vectorization_mode, args.env_kwargs)
    obs_dim, action_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    action_low, action_high = envs.single_action_space.low, envs.single_action_space.high
    envs = gym.wrappers.vector.NormalizeReward(envs, gamma=args.gamma) if args.norm_reward else envs
    obs_rms = RunningMeanStd(shape=(obs_dim,)) if args.norm_obs else None  # saved with the agent, frozen to evaluate
    agent = Agent(obs_dim, action_dim, args.hidden_size, args.activation, args.deterministic_action).to(device)
    # fused: one kernel for all parameters, the fastest Adam here on a CPU; eager_step: no torch._dynamo import (3 s)
    optimizer = eager_step(torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True))
    policy = deterministic_policy(agent, device, obs_rms, action_low, action_high)  # for evaluation and pictures
    loss_function = torch.compile(ppo_loss) if args.compile else ppo_loss  # compiling pays off only on long runs
    global_step, start_iteration = restore(checkpoint, agent, optimizer, envs, obs_rms) if checkpoint else (0, 1)
    writer = SummaryWriter(run_dir, purge_step=global_step + 1 if checkpoint else None)  # drop what came after it
    writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" +
                    "\n".join(f"|{key}|{value}|" for key, value in vars(args).items()))

    # Rollout storage, allocated once; actions are the Beta samples u in [0, 1]^d
    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim), device=device)
    actions = torch.zeros((args.num_steps, args.num_envs, action_dim), device=device)
    logprobs = torch.zeros((args.num_steps, args.num_envs), device=device)
    rewards = np.zeros((args.num_steps, args.num_envs), dtype=np.float32)  # numpy: filled from the env's arrays
    dones = np.zeros((args.num_steps, args.num_envs), dtype=np.float32)

    start_time, start_step = time.time(), global_step
    env_obs, _ = envs.reset(seed=training_seeds(args, start_iteration))
    next_obs = torch.as_tensor(normalize_obs(env_obs, obs_rms, update=True), dtype=torch.float32, device=device)
    with RunGuard(args, run_dir, envs, writer) as guard:  # Ctrl-C: stop after this iteration, with a checkpoint
        for iteration in range(start_iteration, args.num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / args.num_iterations)

            # Rollout: step the policy in all environments for num_steps
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs
                with torch.inference_mode():
                    action, logprob = agent.get_action(next_obs)
                actions[step], logprobs[step] = action, logprob
                env_obs, reward, terminations, truncations, infos = envs.step(
                    to_env_action(action.cpu().numpy(), action_low, action_high))
                check_env_output(env_obs, reward, args.env_id, global_step)

                rewards[step], dones[step] = reward, terminations | truncations
                # A time limit is not a terminal state: bootstrap gamma * V(final_obs) into the reward
                truncated_only = truncations & ~terminations
                if truncated_only.any():
                    final_obs = normalize_obs(np.stack(infos["final_obs"][truncated_only]), obs_rms)
                    with torch.inference_mode():
                        final_values = agent.get_value(torch.as_tensor(final_obs, dtype=torch.float32, device=device))
                    rewards[step, truncated_only] += args.gamma * final_values.cpu().numpy()
                next_obs = torch.as_tensor(normalize_obs(env_obs, obs_rms, update=True), dtype=torch.float32,
                                           device=device)

                if "episode" in infos:
                    for i in np.flatnonzero(infos["_episode"]):
                        writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
                        writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)
                        guard.recent_returns.append(float(infos["episode"]["r"][i]))

            # GAE: advantages and value targets for the whole rollout
            with torch.inference_mode():  # V(s_t) of every stored state in one forward: the critic was fixed meanwhile
                values, next_value = agent.get_value(obs), agent.get_value(next_obs)
            check_network_output(values, logprobs, iteration)
            # in numpy: over arrays this small, its step-by-step loop runs about 4x faster than in torch
            advantages, returns = compute_gae(rewards, values.cpu().numpy(), dones, next_value.cpu().numpy(),
                                              args.gamma, args.gae_lambda)

            # Update: update_epochs passes over the batch in shuffled mini-batches
            b_obs, b_actions = obs.reshape((-1, obs_dim)), actions.reshape((-1, action_dim))
            b_logprobs = logprobs.reshape(-1)
            b_advantages, b_returns = (torch.as_tensor(x.reshape(-1), device=device) for x in (advantages, returns))
            b_values = values.reshape(-1)
            clipfracs = []
            for epoch in range(args.update_epochs):
                b_inds = torch.randperm(args.batch_size, device=device)
                for start in range(0, args.batch_size, args.minibatch_size):
                    mb_inds = b_inds[start:start + args.minibatch_size]
                    loss, pg_loss, v_loss, entropy_loss, logratio, ratio = loss_function(
                        agent, b_obs[mb_inds], b_actions[mb_inds], b_logprobs[mb_inds], b_values[mb_inds],
                        b_advantages[mb_inds], b_returns[mb_inds], args)
                    with torch.no_grad():
                        clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean())

                    optimizer.zero_grad()
                    loss.backward()
                    # foreach: the norms of all parameters in one call, ~5x faster on the CPU than one at a time
                    grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm, foreach=True)
                    check_update(loss, grad_norm, iteration)
                    optimizer.step()

                with torch.no_grad():  # KL estimators, on the epoch's last mini-batch: joschu.net/blog/kl-approx.html
                    old_approx_kl, approx_kl = (-logratio).mean(), ((ratio - 1) - logratio).mean()
                if args.target_kl is not None and approx_kl > args.target_kl:
                    break

            # Logging, once per iteration
            sps = int((global_step - start_step) / (time.time() - start_time))
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
            writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
            writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
            writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
            writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
            writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
            writer.add_scalar("losses/clipfrac", torch.stack(clipfracs).mean().item(), global_step)
            writer.add_scalar("losses/explained_variance", explained_variance(b_values, b_returns), global_step)
            writer.add_scalar("charts/SPS", sps, global_step)
            if args.heatmap_every and iteration % args.heatmap_every == 0:
                log_policy_picture(writer, run_dir, policy, args, global_step)
            if args.eval_every and iteration % args.eval_every == 0:
                log_evaluation(writer, policy, args, global_step)
            guard.show_progress(global_step, sps, final=iteration == args.num_iterations)

            if guard.stop_signal or args.checkpoint_every and iteration % args.checkpoint_every == 0:
                save_checkpoint(saved_agent(args, run_name, agent, envs, obs_rms), optimizer, global_step, iteration)
            guard.exit_if_stopped(global_step)
    train_time = time.time() - start_time

    # Evaluation of the deterministic policy on fresh environments, then saving
    log_policy_picture(writer, run_dir, policy, args, global_step)  # pendulums only
    video_folder = f"videos/{run_name}" if args.capture_video else None
    eval_returns = log_evaluation(writer, policy, args, global_step, video_folder)
    if args.save_model:
        save_atomically(saved_agent(args, run_name, agent, envs, obs_rms), f"{run_dir}/agent.pt")
    finish_run(args, run_dir, writer, eval_returns, global_step, start_step, start_time, train_time)
    return {"eval_returns": eval_returns, "run_dir": run_dir, "global_step": global_step, "agent": agent}


# ---------------------------------------------------- Below: what keeps a run safe and usable, not PPO itself

SCRIPT = "ppo_continuous_beta"  # the name saved agents and checkpoints carry


def whole_number(text: str) -> int:
    """`--total-timesteps 1e5` and `100_000` as 100000; a fraction is refused."""
    value = float(text.replace("_", ""))
    if value != int(value):
        raise ValueError(f"{text} is not a whole number of steps")
    return int(value)


# the type of Args.total_timesteps: an int that the command line may write as 1e5
StepCount = Annotated[int, tyro.constructors.PrimitiveConstructorSpec(
    nargs=1, metavar="INT", instance_from_str=lambda strings: whole_number(strings[0]),
    is_instance=lambda value: isinstance(value, int), str_from_instance=lambda value: [str(value)])]


def fail(message: str):
    """Stop on bad input with one line naming the problem and the fix (exit status 2)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def start_run(args: Args) -> tuple[Args, dict | None, torch.device]:
    """Check the settings and the environment, load the checkpoint to resume from, seed, pick the device."""
    check_args(args)
    checkpoint = None
    if args.resume:
        checkpoint = load_checkpoint(args.resume)
        if "optimizer" not in checkpoint:
            fail(f"{args.resume} is a saved agent, not a checkpoint; resume from runs/{{run_name}}/checkpoint.pt")
        given, args = args, args_from_saved(checkpoint["args"], resume=args.resume)  # a resumed run keeps its settings
        warn_overridden(given, args)
    check_env(args.env_id, args.env_kwargs)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    if not args.compile:
        skip_dynamo_import()
    torch.set_num_threads(args.torch_threads)
    if args.cuda and not torch.cuda.is_available():
        # warn rather than refuse: the run still works, only slower (and for these small nets often not)
        print("warning: --cuda asked for but no CUDA device is available; training on the CPU", file=sys.stderr)
        args.cuda = False  # so summary.json and the checkpoint record the device actually used
    return args, checkpoint, torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")


def skip_dynamo_import():
    """Let torch.optim's optimizers work without importing torch._dynamo: 1.5 s, and about 1 s more at exit, a
    sixth of a short run. Optimizer's state_dict, load_state_dict, zero_grad and add_param_group import it at their
    first call, to wrap themselves in torch._dynamo.disable, which matters only inside torch.compile. Each is marked
    as wrapped already (the attribute where that wrapper is cached), by itself; `eager_step` keeps step from it."""
    for name in ("state_dict", "load_state_dict", "zero_grad", "add_param_group"):
        method = inspect.unwrap(getattr(torch.optim.Optimizer, name))
        setattr(method, "__dynamo_disable", method)


def eager_step(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """`optimizer`, its step called directly under no_grad. torch.optim wraps step to import torch._dynamo at every
    call (for graph breaks under torch.compile) and to run step hooks, of which we register none; results are equal."""
    step = inspect.unwrap(type(optimizer).step)
    optimizer.step = functools.partial(torch.no_grad()(step), optimizer)
    return optimizer


def warn_overridden(given: Args, resumed: Args):
    """One line naming the flags given with --resume that the checkpoint's settings replace."""
    default = Args()
    ignored = [f"--{f.name.replace('_', '-')} {getattr(given, f.name)}" for f in fields(Args)
               if f.init and f.name != "resume" and getattr(given, f.name) != getattr(default, f.name)
               and getattr(given, f.name) != getattr(resumed, f.name)]
    if ignored:
        print(f"warning: --resume continues with the checkpoint's settings; ignored: {', '.join(ignored)}",
              file=sys.stderr)


def this_command() -> str:
    """How to run this script again: the Python running it (relative if under the current folder), the script."""
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd() + os.sep) else sys.executable
    invoked = sys.argv[0] if os.path.basename(sys.argv[0]) == os.path.basename(__file__) else __file__
    return f"{python} {invoked}"


def args_from_saved(saved: dict, **overrides) -> Args:
    """The Args a checkpoint was saved with (derived fields are computed again)."""
    settings = {f.name: saved[f.name] for f in fields(Args) if f.init and f.name in saved} | overrides
    args = Args(**settings)
    check_args(args)
    return args


def check_args(args: Args):
    """Catch bad settings before anything is built, and derive the batch sizes."""
    for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches",
                 "update_epochs", "eval_episodes", "torch_threads", "hidden_size"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} is {getattr(args, name)}; it must be a positive integer")
    for name in ("learning_rate", "max_grad_norm"):
        if not getattr(args, name) > 0:
            fail(f"--{name.replace('_', '-')} is {getattr(args, name)}; it must be positive")
    for name in ("gamma", "gae_lambda"):
        if not 0 <= getattr(args, name) <= 1:
            fail(f"--{name.replace('_', '-')} is {getattr(args, name)}; it must lie in [0, 1]")
    if not args.clip_coef > 0:
        fail(f"--clip-coef is {args.clip_coef}; it must be positive (0.1 to 0.3 is usual)")
    if args.heatmap_every < 0:
        fail(f"--heatmap-every is {args.heatmap_every}; use 0 (only at the end) or a positive number of iterations")
    if args.eval_every < 0:
        fail(f"--eval-every is {args.eval_every}; use 0 (only after training) or a positive number of iterations")
    if args.checkpoint_every < 0:
        fail(f"--checkpoint-every is {args.checkpoint_every}; use 0 (off) or a positive number of iterations")
    if args.seed < 0:
        fail(f"--seed is {args.seed}; Gymnasium seeds must be non-negative integers")
    if args.play and args.eval_model is None:
        fail("--play shows a saved agent; give it one with --eval-model PATH")
    if args.deterministic_action is None and not (args.eval_model or args.resume):  # saved ones keep their own
        args.deterministic_action = "mode"
    compiler = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")  # what torch.compile calls
    if args.compile and shutil.which(compiler) is None:
        fail(f"--compile needs the C++ compiler {compiler} to build its kernels; install it, name another in $CXX, "
             "or drop --compile")
    args.batch_size = args.num_envs * args.num_steps
    if args.batch_size % args.num_minibatches:
        fail(f"num_envs * num_steps = {args.batch_size} is not divisible by --num-minibatches {args.num_minibatches}; "
             f"pick a divisor of {args.batch_size}")
    args.minibatch_size = args.batch_size // args.num_minibatches
    if args.norm_adv and args.minibatch_size < 2:
        fail(f"mini-batches of {args.minibatch_size} sample cannot be normalized (std of one number); "
             "use fewer --num-minibatches or --no-norm-adv")
    args.num_iterations = args.total_timesteps // args.batch_size
    if args.num_iterations == 0 and args.eval_model is None:
        fail(f"--total-timesteps {args.total_timesteps} is smaller than one batch (num_envs * num_steps = "
             f"{args.batch_size}); raise it or shrink the batch")
    for name in ("eval_model", "resume"):
        path = getattr(args, name)
        if path is not None and not os.path.isfile(path):
            fail(f"--{name.replace('_', '-')} {path}: no such file; give the path of a .pt file saved by this script")


def check_env(env_id: str, env_kwargs=()):
    """Refuse an unknown id, a missing optional dependency, and spaces this script cannot handle."""
    if env_id == "SwingUpPendulum-v0" and pendulum_env is None:
        fail("SwingUpPendulum-v0 is defined in pendulum_env.py; put pendulum_env.py beside ppo_continuous_beta.py")
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, gym.registry.keys(), n=3)
        fail(f"unknown environment id {env_id!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                                       "; see gymnasium.pprint_registry() for the ids"))
    try:
        env = make_one_env(env_id, env_kwargs)
    except gym.error.DependencyNotInstalled as error:
        hint = 'pip install "gymnasium[box2d]"' if "box2d" in str(error).lower() else \
            'pip install "gymnasium[mujoco]"' if "mujoco" in str(error).lower() else "install what it names"
        fail(f"{env_id} needs a package that is not installed ({str(error).splitlines()[0]}); run: {hint}")
    except (TypeError, ValueError) as error:
        reason = str(error).split(" was raised from")[0].splitlines()[0]
        if env_kwargs:  # an unknown keyword (TypeError) or a value the environment rejects
            fail(f"--env-kwargs {' '.join(env_kwargs)}: {env_id} refused them ({reason})")
        if isinstance(error, TypeError):
            raise
        fail(f"the observation space of {env_id} cannot be flattened to a vector ({reason}); "
             "this script needs a flat Box")
    env.close()
    action_space, observation_space = env.action_space, env.observation_space
    if isinstance(action_space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        fail(f"the action space is discrete ({action_space}); use ppo_discrete.py")
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        fail(f"the action space {action_space} is not a flat Box; this script handles Box actions only")
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        fail(f"the action space {action_space} has infinite bounds; a Beta policy needs finite [low, high] "
             "(wrap the env with gymnasium.wrappers.ClipAction after giving it finite bounds)")
    if not isinstance(observation_space, gym.spaces.Box):
        fail(f"the observation space {observation_space} cannot be flattened to a vector")
    if len(observation_space.shape) != 1:
        fail(f"the observation space {observation_space} is an image or other array, not a vector; "
             "this script's MLP needs a flat Box (use a CNN-based PPO for pixels)")


def make_one_env(env_id: str, env_kwargs=(), render_mode: str | None = None, video_folder=None) -> gym.Env:
    """One environment; observations that are not a Box (Discrete, Dict, ...) are flattened to a vector."""
    if multiprocessing.parent_process() is not None:  # an async worker: Ctrl-C is for the main process to handle
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if video_folder:  # frames are drawn off-screen: without this, SDL probes for a display and complains
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    render_mode = "rgb_array" if video_folder else render_mode
    render = {"render_mode": render_mode} if render_mode else {}  # some envs take no render_mode keyword
    env = gym.make(env_id, **render, **keywords(env_kwargs))
    if video_folder:
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode == 0,
                                       disable_logger=True)
    if not isinstance(env.observation_space, gym.spaces.Box):
        env = gym.wrappers.FlattenObservation(env)
    return env


def vectorization_mode(env_id: str, mode: str, env_kwargs=()) -> str:
    """Resolve `auto`: the env's own vector implementation when it steps with same-step autoreset, else sync."""
    if mode not in ("auto", "vector_entry_point"):
        return mode
    same_step, native = gym.vector.AutoresetMode.SAME_STEP, None
    if gym.spec(env_id).vector_entry_point is not None:
        try:
            native = gym.make_vec(env_id, 1, "vector_entry_point", autoreset_mode=same_step, **keywords(env_kwargs))
        except TypeError:  # its constructor takes no autoreset mode
            pass
    if native is not None:
        # its metadata, not its constructor, says how it resets: one taking **kwargs would accept the keyword
        native.close()
        if native.metadata.get("autoreset_mode") == same_step:
            return "vector_entry_point"
    if mode == "auto":
        return "sync"
    fail(f"{env_id} has no native vector implementation with same-step autoreset; "
         "use --vectorization-mode sync (or auto)")


def training_seeds(args: Args, start_iteration: int) -> list[int]:
    """One seed per training environment, from numpy's SeedSequence keyed by run seed and start iteration.

    No two run seeds share a random stream (as they would with seeds s + i), and a resumed run meets new
    episodes; 64-bit seeds make a repeat between any two runs' or evaluation's seeds a 1-in-10^17 event.
    """
    sequence = np.random.SeedSequence(args.seed, spawn_key=(0, start_iteration))
    return sequence.generate_state(args.num_envs, np.uint64).tolist()


def evaluation_seeds(seed: int, episodes: int) -> list[int]:
    """One seed per evaluation episode of run seed `seed`: a stream of its own, apart from every training one."""
    return np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(episodes, np.uint64).tolist()


def keywords(env_kwargs) -> dict:
    """--env-kwargs length=1.0 motor=4.0 as {"length": 1.0, "motor": 4.0}; a value that is no Python literal
    stays a string."""
    parsed = {}
    for item in env_kwargs:
        key, equals, value = item.partition("=")
        if not equals or not key.isidentifier():
            fail(f"--env-kwargs {item}: write KEY=VALUE, for example length=1.0")
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = value
    return parsed


def new_run_name(args: Args) -> str:
    """`{env_id}__{exp_name}__{seed}__{unix_time}`, a second later if that run directory exists already."""
    unix_time = int(time.time())
    while os.path.exists(f"runs/{args.env_id}__{args.exp_name}__{args.seed}__{unix_time}"):
        unix_time += 1
    return f"{args.env_id}__{args.exp_name}__{args.seed}__{unix_time}"


# Numerical guards: stop at the first non-finite number, naming where it appeared
def check_env_output(env_obs: np.ndarray, reward: np.ndarray, env_id: str, global_step: int):
    if not (np.isfinite(reward).all() and np.isfinite(env_obs).all()):
        bad = "reward" if not np.isfinite(reward).all() else "observation"
        raise FloatingPointError(f"{env_id} returned a non-finite {bad} at step {global_step:,}; "
                                 "the environment is at fault, check its dynamics and reward")


def check_network_output(values: torch.Tensor, logprobs: torch.Tensor, iteration: int):
    if not (torch.isfinite(values).all() and torch.isfinite(logprobs).all()):
        raise FloatingPointError(f"the network output became non-finite at iteration {iteration}; "
                                 "try a lower --learning-rate")


def check_update(loss: torch.Tensor, grad_norm: torch.Tensor, iteration: int):
    if not (np.isfinite(loss.item()) and np.isfinite(grad_norm.item())):  # .item(): cheaper than torch.isfinite
        quantity, value = ("loss", loss.item()) if not torch.isfinite(loss) else ("gradient norm", grad_norm.item())
        raise FloatingPointError(f"the {quantity} became {value} at iteration {iteration}; "
                                 "try a lower --learning-rate")


class RunGuard:
    """Keeps a training run safe: Ctrl-C or SIGTERM stop it after the current iteration with a
    checkpoint (a second signal quits at once), a numerical blow-up ends it with one line naming
    the last good checkpoint, and the environments are closed whatever happens. It also prints
    the progress line."""

    def __init__(self, args: Args, run_dir: str, envs, writer: SummaryWriter):
        self.args, self.run_dir, self.envs, self.writer = args, run_dir, envs, writer
        self.stop_signal, self.closing = None, False
        self.last_print = 0.0
        self.recent_returns = deque(maxlen=20)  # returns of the latest episodes, for the progress line

    def __enter__(self):
        self.previous_handlers = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        print(f"run directory: {self.run_dir} (watch it with: tensorboard --logdir runs)", flush=True)
        return self

    def request_stop(self, signum, frame):
        if self.closing:
            return
        if self.stop_signal:  # a second signal quits at once
            print("\nquitting without a checkpoint", file=sys.stderr)
            raise SystemExit(130 if signum == signal.SIGINT else 143)
        self.stop_signal = signum
        again = "Ctrl-C again" if signum == signal.SIGINT else "SIGTERM again (or Ctrl-C)"
        print(f"\n{signal.Signals(signum).name} received: stopping after this iteration ({again} to quit at once)",
              file=sys.stderr)

    def show_progress(self, global_step: int, sps: int, final: bool):
        """Steps done, steps per second, recent mean return and time left, at most once a second."""
        if time.time() - self.last_print < 1.0 and not final:
            return
        self.last_print = time.time()
        total = self.args.num_iterations * self.args.batch_size
        mean_return = f"{np.mean(self.recent_returns):8.2f}" if self.recent_returns else "     n/a"
        line = (f"step {global_step:>9,}/{total:,} | {sps:>6,} steps/s | return {mean_return} | "
                f"{(total - global_step) / max(sps, 1):5.0f} s left")
        # on a terminal the line rewrites itself; in a log file it is one line each time
        print(f"\r{line}" if sys.stdout.isatty() else line, end="" if sys.stdout.isatty() else "\n", flush=True)

    def exit_if_stopped(self, global_step: int):
        if self.stop_signal:
            self.closing = True  # the checkpoint is saved: stop now, whatever signal comes next
            path = f"{self.run_dir}/checkpoint.pt"
            print(f"\ninterrupted at step {global_step:,}; checkpoint saved to {path}\n"
                  f"resume with: {this_command()} --resume {path}")
            raise SystemExit(130 if self.stop_signal == signal.SIGINT else 143)

    def __exit__(self, kind, error, traceback):
        self.closing = True  # from here a further signal changes nothing: the run is ending either way
        # after an interrupt or an error, async workers are stopped rather than asked, which could wait or fail
        stop_workers = kind is not None and isinstance(self.envs.unwrapped, gym.vector.AsyncVectorEnv)
        with warnings.catch_warnings():  # Gymnasium warns that a step was still pending: it was, and is dropped
            warnings.simplefilter("ignore")
            self.envs.close(**({"terminate": True} if stop_workers else {}))
        if sys.stdout.isatty():
            print()
        if kind is not None:
            self.writer.close()
        # run as a script and stopped by a signal, the process is exiting: one forwarded again (by `timeout`, say)
        # must not cut that short; called from Python, the caller gets its own handlers back
        exiting = self.stop_signal is not None and __name__ == "__main__"
        for s, handler in self.previous_handlers.items():
            signal.signal(s, signal.SIG_IGN if exiting else handler)
        if kind is FloatingPointError:
            last_good = f"{self.run_dir}/checkpoint.pt"
            fail(f"{error}. Training stopped" + (f"; the last good checkpoint is {last_good}"
                                                 if os.path.exists(last_good) else ""))


# Saving and loading
def saved_agent(args: Args, run_name: str, agent: Agent, envs, obs_rms: RunningMeanStd | None) -> dict:
    """What `--save-model` writes and a checkpoint starts from: settings, weights, action bounds and the
    running statistics of observations and returns."""
    return {"script": SCRIPT, "args": asdict(args), "run_name": run_name, "obs_dim": agent.critic[0].in_features,
            "action_dim": agent.alpha_head.out_features, "agent": agent.state_dict(),
            "action_low": torch.as_tensor(envs.single_action_space.low),
            "action_high": torch.as_tensor(envs.single_action_space.high),
            "obs_stats": running_stats(obs_rms), "reward_stats": running_stats(getattr(envs, "return_rms", None))}


def running_stats(rms: RunningMeanStd | None) -> dict | None:
    """Running mean, variance and count as plain numbers, so weights_only loading accepts them."""
    return None if rms is None else {"mean": np.asarray(rms.mean).tolist(), "var": np.asarray(rms.var).tolist(),
                                     "count": float(rms.count)}


def set_running_stats(rms: RunningMeanStd, stats: dict):
    rms.mean, rms.var, rms.count = (np.asarray(stats[key], dtype=np.float64) for key in ("mean", "var", "count"))


def save_checkpoint(saved: dict, optimizer: torch.optim.Optimizer, global_step: int, iteration: int) -> str:
    """A resumable checkpoint: the saved agent plus the optimizer, the step count and the CPU and CUDA RNGs."""
    path = f"runs/{saved['run_name']}/checkpoint.pt"
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    save_atomically(saved | {"optimizer": optimizer.state_dict(), "global_step": global_step, "iteration": iteration,
                             "torch_rng": torch.get_rng_state(), "cuda_rng": cuda_rng}, path)
    return path


def restore(checkpoint: dict, agent: Agent, optimizer: torch.optim.Optimizer, envs,
            obs_rms: RunningMeanStd | None) -> tuple[int, int]:
    """Continue from a checkpoint: weights, optimizer, RNG and running statistics; returns the step count and
    the next iteration."""
    agent.load_state_dict(checkpoint["agent"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["torch_rng"])
    if checkpoint.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
    if obs_rms is not None:
        set_running_stats(obs_rms, checkpoint["obs_stats"])
    if hasattr(envs, "return_rms"):
        set_running_stats(envs.return_rms, checkpoint["reward_stats"])
    return checkpoint["global_step"], checkpoint["iteration"] + 1


def save_atomically(payload: dict, path: str):
    """Write to a temporary file and rename it, so a crash never leaves a half-written file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    torch.save(payload, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(path: str, env_id: str | None = None) -> dict:
    """Load a file saved by this script, refusing code-carrying pickles and other files."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if "GLOBAL" in str(error):  # the pickle names a callable or class to import: refused
            fail(f"{path} carries Python objects that could run code when loaded, so it is refused "
                 f"(torch.load with weights_only=True); pass a .pt file written by {SCRIPT}.py --save-model")
        fail(f"{path} is not a checkpoint saved by {SCRIPT}.py ({type(error).__name__}: "
             f"{str(error).splitlines()[0][:160]}); pass a .pt file written by --save-model")
    if not isinstance(payload, dict) or payload.get("script") != SCRIPT:
        fail(f"{path} is not a checkpoint saved by {SCRIPT}.py; pass a .pt file written by --save-model")
    if env_id is not None and payload["args"]["env_id"] != env_id:
        fail(f"{path} was saved for {payload['args']['env_id']}, not {env_id}; pass --env-id "
             f"{payload['args']['env_id']}")
    return payload


def load_agent(saved: dict, path: str, device: torch.device) -> Agent:
    """The network of a saved agent, with the width and activation it was trained with."""
    agent = Agent(saved["obs_dim"], saved["action_dim"], saved["args"]["hidden_size"],
                  saved["args"].get("activation", "tanh"), saved["args"].get("deterministic_action", "mean")).to(device)
    try:
        agent.load_state_dict(saved["agent"])
    except RuntimeError:
        fail(f"{path} holds a network of another shape than {saved['args']['env_id']} needs; "
             "pass a checkpoint saved for this environment")
    return agent


# Evaluation
def deterministic_policy(agent: Agent, device: torch.device, obs_rms: RunningMeanStd | None,
                         low: np.ndarray, high: np.ndarray):
    """The agent's deterministic action, in the env's units, as a function of a batch of numpy observations."""
    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            u = agent.act_deterministic(torch.as_tensor(normalize_obs(obs, obs_rms), dtype=torch.float32,
                                                        device=device))
        return to_env_action(u.cpu().numpy(), low, high)
    return policy


def saved_policy(saved: dict, path: str, device: torch.device):
    """The deterministic policy of a saved agent, with its frozen observation statistics."""
    obs_rms = None
    if saved["obs_stats"] is not None:
        obs_rms = RunningMeanStd(shape=(saved["obs_dim"],))
        set_running_stats(obs_rms, saved["obs_stats"])
    return deterministic_policy(load_agent(saved, path, device), device, obs_rms, saved["action_low"].numpy(),
                                saved["action_high"].numpy())


def normalize_obs(obs: np.ndarray, obs_rms: RunningMeanStd | None, update: bool = False) -> np.ndarray:
    """(obs - mean) / sqrt(var + eps) with the running statistics, first merging `obs` into them if `update`;
    unchanged without statistics (--no-norm-obs).

    Applied here rather than by Gymnasium's vector NormalizeObservation, which refuses
    same-step autoreset (it could not normalize infos["final_obs"]).
    """
    if obs_rms is None:
        return obs
    if update:
        obs_rms.update(obs)
    return (obs - obs_rms.mean) / np.sqrt(obs_rms.var + 1e-8)


def evaluate(policy, args: Args, video_folder: str | None = None) -> np.ndarray:
    """Returns of --eval-episodes fresh episodes of `policy`, one per environment, all run together."""
    episodes = args.eval_episodes
    envs = make_env(args.env_id, episodes, "sync" if video_folder else "auto", args.env_kwargs, video_folder)
    obs, _ = envs.reset(seed=evaluation_seeds(args.seed, episodes))
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    while running.any():
        obs, reward, terminated, truncated, _ = envs.step(policy(obs))
        returns += reward * running
        running &= ~(terminated | truncated)
    envs.close()
    return returns


def log_evaluation(writer: SummaryWriter, policy, args: Args, global_step: int, video_folder=None) -> np.ndarray:
    """Evaluate and log eval/mean_return and eval/std_return at this step (the sweep runner plots them against
    steps and wall time)."""
    returns = evaluate(policy, args, video_folder)
    writer.add_scalar("eval/mean_return", returns.mean(), global_step)
    writer.add_scalar("eval/std_return", returns.std(), global_step)
    return returns


def evaluate_saved_agent(args: Args, device: torch.device) -> dict:
    """--eval-model: load a saved agent and evaluate its deterministic policy (or, with --play, show it)."""
    saved = load_checkpoint(args.eval_model, args.env_id)
    if args.deterministic_action:  # evaluate at the mode or the mean as asked, not as the agent was saved
        saved["args"]["deterministic_action"] = args.deterministic_action
    policy = saved_policy(saved, args.eval_model, device)
    args.env_kwargs = args.env_kwargs or tuple(saved["args"].get("env_kwargs", ()))  # the agent's own env, unless given
    if args.play:
        return {"eval_returns": play(policy, args), "run_dir": None}
    run_name = f"{args.env_id}__{args.exp_name}__eval__{args.seed}__{int(time.time())}"
    returns = evaluate(policy, args, f"videos/{run_name}" if args.capture_video else None)
    print(f"evaluation over {len(returns)} episodes: {returns.mean():.2f} +- {returns.std():.2f}")
    return {"eval_returns": returns, "run_dir": None}


def play(policy, args: Args) -> np.ndarray:
    """Show --eval-episodes episodes of `policy` in a window, from evaluation's starts, and print each return.

    The swing-up pendulum opens its own window instead, where the mouse drives the motor
    and the agent takes over while the left button is held, until the window is closed.
    """
    if args.env_id == "SwingUpPendulum-v0":
        if not pendulum_env.has_display():
            fail("--play opens a window, and there is no display here (no DISPLAY or WAYLAND_DISPLAY, or "
                 "SDL_VIDEODRIVER=dummy); run it on a desktop")
        pendulum_env.play(lambda obs: policy(obs[None])[0], **keywords(args.env_kwargs))
        return np.zeros(0)
    env = make_one_env(args.env_id, args.env_kwargs, render_mode="human")
    returns = np.zeros(args.eval_episodes)
    try:
        for episode, episode_seed in enumerate(evaluation_seeds(args.seed, args.eval_episodes)):
            obs, _ = env.reset(seed=episode_seed)
            done = False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(policy(obs[None])[0])
                returns[episode] += reward
                done = terminated or truncated
            print(f"episode {episode + 1}: return {returns[episode]:.2f}")
    finally:
        env.close()
    return returns


# The policy picture of a pendulum: the deterministic action over angle and angular velocity
@functools.cache
def pendulum_picture_axes(env_id: str, env_kwargs=()) -> dict | None:
    """For observations (cos angle, sin angle, velocity) and one action dimension: the velocity range and its
    rad/s per observation unit; None for any other environment."""
    env = make_one_env(env_id, env_kwargs)
    space, actions = env.observation_space, env.action_space
    env.close()
    if not (space.shape == (3,) and actions.shape == (1,) and np.allclose(space.low[:2], -1)
            and np.allclose(space.high[:2], 1) and np.isfinite(space.low[2]) and np.isfinite(space.high[2])):
        return None
    max_speed = getattr(env.unwrapped, "max_speed", None) or getattr(getattr(env.unwrapped, "config", None),
                                                                     "max_speed", None)
    return {"velocity_low": float(space.low[2]), "velocity_high": float(space.high[2]),
            "rad_per_s": max_speed / float(space.high[2]) if max_speed else None,
            "action_low": float(actions.low[0]), "action_high": float(actions.high[0])}


def policy_grid(policy, axes: dict, width: int = 256, height: int = 144) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angles (-pi..pi, left to right), velocities in observation units (high..low, top to bottom), and the
    policy's action at each point of that grid, shape (height, width)."""
    angle = np.linspace(-np.pi, np.pi, width)
    velocity = np.linspace(axes["velocity_high"], axes["velocity_low"], height)
    grid_velocity, grid_angle = np.meshgrid(velocity, angle, indexing="ij")
    obs = np.stack([np.cos(grid_angle), np.sin(grid_angle), grid_velocity], axis=-1).reshape(-1, 3)
    return angle, velocity, policy(obs).reshape(height, width)


def policy_figure(policy, axes: dict):
    """A matplotlib figure of the deterministic action: blue lowest, white middle, red highest."""
    from matplotlib.figure import Figure  # imported here: only runs that draw the picture pay for it
    angle, velocity, action = policy_grid(policy, axes)
    scale, unit = (axes["rad_per_s"], "rad/s") if axes["rad_per_s"] else (1.0, "observation units")
    low, high = axes["action_low"], axes["action_high"]
    figure = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(action, cmap="bwr", vmin=low, vmax=high, aspect="auto", interpolation="nearest",
                      extent=(angle[0], angle[-1], velocity[-1] * scale, velocity[0] * scale))
    ax.set_xlabel("angle (rad, 0 = upright)")
    ax.set_ylabel(f"angular velocity ({unit})")
    ax.set_xticks([-np.pi, -np.pi / 2, 0, np.pi / 2, np.pi], ["$-\\pi$", "$-\\pi/2$", "0", "$\\pi/2$", "$\\pi$"])
    ax.set_title("deterministic action of the policy")
    colorbar = figure.colorbar(image, ax=ax)
    colorbar.set_ticks([low, (low + high) / 2, high],
                       labels=[f"{low:g} lowest", f"{(low + high) / 2:g} middle", f"{high:g} highest"])
    colorbar.set_label("action")
    return figure


def log_policy_picture(writer: SummaryWriter, run_dir: str, policy, args: Args, global_step: int):
    """For a pendulum, draw the policy picture into TensorBoard (charts/policy) and run_dir/policy.png."""
    axes = pendulum_picture_axes(args.env_id, args.env_kwargs)
    if axes is None:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imsave
    canvas = FigureCanvasAgg(policy_figure(policy, axes))
    canvas.draw()  # once for both (savefig and add_figure would each render it again: 0.3 s a picture)
    image = np.asarray(canvas.buffer_rgba())[..., :3]
    imsave(f"{run_dir}/policy.png", image)
    writer.add_image("charts/policy", image, global_step, dataformats="HWC")


def finish_run(args: Args, run_dir: str, writer: SummaryWriter, eval_returns: np.ndarray, global_step: int,
               start_step: int, start_time: float, train_time: float):
    """Print the evaluation and where things went, and write summary.json."""
    wall_time = time.time() - start_time
    print(f"evaluation over {args.eval_episodes} episodes: {eval_returns.mean():.2f} +- {eval_returns.std():.2f}"
          f" ({global_step:,} steps, {wall_time:.1f} s)")
    written = [f"{run_dir}/summary.json"] + [f"{run_dir}/agent.pt"] * args.save_model
    written += glob.glob(f"{run_dir}/policy.png") + glob.glob(f"videos/{os.path.basename(run_dir)}/*.mp4")
    summary = {"env_id": args.env_id, "eval_mean": float(eval_returns.mean()), "eval_std": float(eval_returns.std()),
               "eval_returns": eval_returns.tolist(), "global_step": global_step, "wall_time": wall_time,
               "start_time": start_time,
               "sps": (global_step - start_step) / train_time, "args": asdict(args)}
    with open(f"{run_dir}/summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    writer.close()
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    train(tyro.cli(Args))
