"""Proximal Policy Optimization for discrete actions, in one file: `python ppo_discrete.py --env-id CartPole-v1`.

Read it top to bottom, in PPO's order: `Args` (every setting; `--help` prints them), `make_env` (vector envs,
same-step autoreset), `Agent` (actor and critic), the pure functions (`compute_gae`, the losses, `ppo_loss`), then
`train`: set-up, rollout with truncation bootstrapping, GAE, the update epochs, logging. PPO ends at the banner
"Below: what keeps a run safe and usable"; then come checks, interrupts, checkpoints, evaluation and the summary.
Papers: PPO, Schulman et al. 2017, arXiv:1707.06347; GAE, Schulman et al. 2016, arXiv:1506.02438.
"""

import ast
import functools
import glob
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.utils.tensorboard import SummaryWriter


@dataclass
class Args:
    exp_name: str = "ppo_discrete"
    """name of this experiment, part of the run name"""
    seed: int = 1
    """seed of the experiment (environments, network initialisation, sampling)"""
    cuda: bool = False
    """if toggled, use CUDA when available (small networks run faster on the CPU)"""
    torch_threads: int = 1
    """number of CPU threads torch may use; small networks run fastest on one"""
    compile: bool = False
    """if toggled, compile the mini-batch loss with torch.compile (5-15 s once, then faster updates; long runs)"""
    capture_video: bool = False
    """if toggled, record a video of the first evaluation episode under `videos/{run_name}`"""
    save_model: bool = False
    """if toggled, save the trained agent to `runs/{run_name}/agent.pt`"""
    eval_model: str | None = None
    """path of agent.pt or checkpoint.pt: skip training and evaluate it on the env it was trained on"""
    play: bool = False
    """with --eval-model: show the agent acting in a window for --eval-episodes episodes instead"""
    checkpoint_every: int = 0
    """save a resumable checkpoint every this many iterations (0: only on interrupt)"""
    resume: str | None = None
    """path of a checkpoint to continue training from (same run directory)"""

    # Algorithm
    env_kwargs: tuple[str, ...] = ()
    """constructor keywords of the environment as KEY=VALUE, values read as Python literals (e.g. length=1.0)"""
    env_id: str = "CartPole-v1"
    """id of the Gymnasium environment"""
    total_timesteps: int = 100_000
    """total environment steps of training"""
    learning_rate: float = 3.5e-3
    """learning rate of the Adam optimizer"""
    num_envs: int = 16
    """number of environments stepped together"""
    num_steps: int = 16
    """steps per environment in each rollout"""
    vectorization_mode: Literal["auto", "sync", "async", "vector_entry_point"] = "auto"
    """`auto`: the env's native vector implementation if it has same-step autoreset, else `sync`"""
    anneal_lr: bool = True
    """if toggled, anneal the learning rate linearly to zero"""
    gamma: float = 0.99
    """discount factor gamma"""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation"""
    num_minibatches: int = 4
    """number of mini-batches per epoch"""
    update_epochs: int = 2
    """number of passes over the batch per update"""
    norm_adv: bool = True
    """if toggled, normalize advantages per mini-batch"""
    clip_coef: float = 0.2
    """surrogate clipping coefficient epsilon"""
    clip_vloss: bool = True
    """if toggled, clip the value loss as the PPO2 implementation does"""
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

    # Derived from the above when a run starts (not options)
    batch_size: int = field(default=0, init=False)
    """num_envs * num_steps"""
    minibatch_size: int = field(default=0, init=False)
    """batch_size // num_minibatches"""
    num_iterations: int = field(default=0, init=False)
    """total_timesteps // batch_size"""


# Environments
def make_env(env_id: str, num_envs: int, mode: str, env_kwargs=(), render_mode=None, video_folder=None):
    """`num_envs` copies of `env_id` stepped together, with same-step autoreset: the step that ends an episode
    returns the next one's first observation and keeps the true last one in `infos["final_obs"]`, so a truncated
    episode can be bootstrapped from it. Mode: see Args.vectorization_mode."""
    same_step, mode = gym.vector.AutoresetMode.SAME_STEP, vectorization_mode(env_id, mode, env_kwargs)
    if mode == "vector_entry_point":
        envs = gym.make_vec(env_id, num_envs, mode, autoreset_mode=same_step, **keywords(env_kwargs))
    else:
        vector_class = gym.vector.SyncVectorEnv if mode == "sync" else gym.vector.AsyncVectorEnv
        envs = vector_class([functools.partial(make_one_env, env_id, env_kwargs, render_mode, video_folder if i == 0
                                               else None) for i in range(num_envs)], autoreset_mode=same_step)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs, buffer_length=20)  # return_queue: for the progress line


# The network
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate actor and critic MLPs: 2 hidden layers of `hidden` units (64 by default), tanh or ReLU."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, activation: str = "tanh"):
        super().__init__()
        Activation = nn.ReLU if activation == "relu" else nn.Tanh
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), Activation(),
            layer_init(nn.Linear(hidden, hidden)), Activation(),
            layer_init(nn.Linear(hidden, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), Activation(),
            layer_init(nn.Linear(hidden, hidden)), Activation(),
            layer_init(nn.Linear(hidden, n_actions), std=0.01),
        )

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def get_action(self, obs: torch.Tensor):
        """Rollout: sample an action; the action and log pi(a|s) (V(s) after the rollout, the entropy in the update)."""
        distribution = torch.distributions.Categorical(logits=self.actor(obs), validate_args=False)
        action = distribution.sample()
        return action, distribution.log_prob(action)

    def evaluate_actions(self, obs: torch.Tensor, action: torch.Tensor):
        """Update: log pi(a|s) and entropy of the stored actions under the current policy, and V(s)."""
        distribution = torch.distributions.Categorical(logits=self.actor(obs), validate_args=False)
        return distribution.log_prob(action), distribution.entropy(), self.get_value(obs)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The most likely action (argmax of the logits)."""
        return torch.argmax(self.actor(obs), dim=-1)


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
    args, checkpoint, device, run_name = start_run(args)  # checks the settings; a resumed run keeps its checkpoint's
    args.batch_size = args.num_envs * args.num_steps
    args.minibatch_size = args.batch_size // args.num_minibatches
    args.num_iterations = args.total_timesteps // args.batch_size
    # Seeding: Python, numpy and torch here; each environment gets a seed of its own at reset
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    # Set-up: environments, agent, optimizer, logger
    run_dir = f"runs/{run_name}"
    envs = make_env(args.env_id, args.num_envs, args.vectorization_mode, args.env_kwargs)
    obs_dim, n_actions = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    first_action = int(envs.single_action_space.start)  # Discrete(n, start=k) numbers its actions k..k+n-1
    agent = Agent(obs_dim, n_actions, args.hidden_size, args.activation).to(device)
    # fused: one kernel for all parameters, the fastest Adam here on a CPU
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)
    policy = deterministic_policy(agent, device, first_action)  # for evaluation
    loss_function = torch.compile(ppo_loss) if args.compile else ppo_loss  # compiling pays off only on long runs
    global_step, start_iteration = restore(checkpoint, agent, optimizer) if checkpoint else (0, 1)
    writer = SummaryWriter(run_dir, purge_step=global_step + 1 if checkpoint else None)  # drop what came after it
    writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" +
                    "\n".join(f"|{key}|{value}|" for key, value in vars(args).items()))

    # Rollout storage, allocated once
    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim), device=device)
    actions = torch.zeros((args.num_steps, args.num_envs), dtype=torch.long, device=device)
    logprobs = torch.zeros((args.num_steps, args.num_envs), device=device)
    rewards = np.zeros((args.num_steps, args.num_envs), dtype=np.float32)  # numpy: filled from the env's arrays
    dones = np.zeros((args.num_steps, args.num_envs), dtype=np.float32)

    start_time, start_step = time.time(), global_step
    next_obs, _ = envs.reset(seed=env_seeds(args.seed, args.num_envs, stream=(0, start_iteration)))
    next_obs = torch.as_tensor(next_obs, dtype=torch.float32, device=device)
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
                env_obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy() + first_action)
                check_finite(f"at step {global_step:,}", "the env is at fault", reward=reward, obs=env_obs)

                rewards[step], dones[step] = reward, terminations | truncations
                # A time limit is not a terminal state: bootstrap gamma * V(final_obs) into the reward
                truncated_only = truncations & ~terminations
                if truncated_only.any():
                    final_obs = np.stack(infos["final_obs"][truncated_only])
                    with torch.inference_mode():
                        final_values = agent.get_value(torch.as_tensor(final_obs, dtype=torch.float32, device=device))
                    rewards[step, truncated_only] += args.gamma * final_values.cpu().numpy()
                next_obs = torch.as_tensor(env_obs, dtype=torch.float32, device=device)

                if "episode" in infos:
                    for i in np.flatnonzero(infos["_episode"]):
                        writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
                        writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)

            # GAE: advantages and value targets for the whole rollout
            with torch.inference_mode():  # V(s_t) of every stored state in one forward: the critic was fixed meanwhile
                values, next_value = agent.get_value(obs), agent.get_value(next_obs)
            check_finite(f"at iteration {iteration}", "try a lower --learning-rate", values=values, logprobs=logprobs)
            # in numpy: over arrays this small, its step-by-step loop runs about 4x faster than in torch
            advantages, returns = compute_gae(rewards, values.cpu().numpy(), dones, next_value.cpu().numpy(),
                                              args.gamma, args.gae_lambda)

            # Update: update_epochs passes over the batch in shuffled mini-batches
            b_obs = obs.reshape((-1, obs_dim))
            b_actions, b_logprobs = actions.reshape(-1), logprobs.reshape(-1)
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
                    check_finite(f"at iteration {iteration}", "try a lower --learning-rate", loss=loss, grad=grad_norm)
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
            if args.eval_every and iteration % args.eval_every == 0:
                evaluate(policy, args, None, writer, global_step)
            guard.show_progress(global_step, sps, envs.return_queue, final=iteration == args.num_iterations)

            if guard.checkpoint_due(iteration):
                save(guard.checkpoint_path, args, run_name, agent, first_action, optimizer, global_step, iteration)
            guard.exit_if_stopped(global_step)
    train_time = time.time() - start_time

    # Evaluation of the deterministic policy on fresh environments, then saving
    video_folder = f"videos/{run_name}" if args.capture_video else None
    eval_returns = evaluate(policy, args, video_folder, writer, global_step)
    if args.save_model:
        save(f"{run_dir}/agent.pt", args, run_name, agent, first_action)
    finish_run(args, run_dir, writer, eval_returns, global_step, start_step, start_time, train_time)
    return {"eval_returns": eval_returns, "run_dir": run_dir, "global_step": global_step, "agent": agent}


# ---------------------------------------------------- Below: what keeps a run safe and usable, not PPO itself

SCRIPT = "ppo_discrete"  # the name saved agents and checkpoints carry
# What a resumed run takes from the command line (how it runs, what it writes); the rest comes from its checkpoint
OUTPUT_OPTIONS = ("resume", "torch_threads", "cuda", "compile", "capture_video", "save_model", "checkpoint_every",
                  "eval_every", "eval_episodes")
# The range of each numeric setting: the settings, the test, what to tell the user
RANGES = [(("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs", "eval_episodes",
            "torch_threads", "hidden_size"), lambda value: value > 0, "a positive integer"),
          (("learning_rate", "max_grad_norm", "clip_coef"), lambda value: value > 0, "positive"),
          (("gamma", "gae_lambda"), lambda value: 0 <= value <= 1, "in [0, 1]"),
          (("seed", "eval_every", "checkpoint_every"), lambda value: value >= 0, "0 or more")]


def fail(message: str):
    """Stop on bad input with one line naming the problem and the fix (exit status 2)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def start_run(args: Args) -> tuple[Args, dict | None, torch.device, str]:
    """Check the settings and the env, load the checkpoint to resume from, pick the device; name a new run
    `{env_id}__{exp_name}__{seed}__{unix_time}`, a second later if that run directory exists already."""
    check_args(args)
    checkpoint = load_checkpoint(args.resume, refuse=fail) if args.resume else None
    if checkpoint and checkpoint.get("finished", True):  # a saved agent has no "finished": it is no checkpoint
        fail(f"{args.resume} is no checkpoint of an unfinished run; evaluate it with --eval-model {args.resume}")
    if checkpoint:
        resumed = Args(**{f.name: checkpoint["args"][f.name] for f in fields(Args) if f.init})
        ignored = [f"--{name.replace('_', '-')} {value}" for name, value in given(args).items()
                   if name not in OUTPUT_OPTIONS and value != getattr(resumed, name)]
        if ignored:
            print(f"warning: --resume keeps the checkpoint's settings; ignored: {', '.join(ignored)}", file=sys.stderr)
        args = replace(resumed, **{name: value for name, value in given(args).items() if name in OUTPUT_OPTIONS})
        check_args(args)
    check_env(args.env_id, args.env_kwargs)
    torch.set_num_threads(args.torch_threads)
    if args.cuda and not torch.cuda.is_available():  # the run still works, only slower (or, for small nets, not)
        print("warning: --cuda asked for but no CUDA device is available; training on the CPU", file=sys.stderr)
        args.cuda = False  # so summary.json and the checkpoint record the device actually used
    unix_time, env_name = int(time.time()), args.env_id.split(":")[-1]  # module:EnvId is named EnvId
    while os.path.exists(f"runs/{env_name}__{args.exp_name}__{args.seed}__{unix_time}"):
        unix_time += 1
    run_name = checkpoint["run_name"] if checkpoint else f"{env_name}__{args.exp_name}__{args.seed}__{unix_time}"
    return args, checkpoint, torch.device("cuda" if args.cuda else "cpu"), run_name


def given(args: Args) -> dict:
    """The options set to other than their defaults."""
    return {f.name: getattr(args, f.name) for f in fields(Args) if f.init and getattr(args, f.name) != f.default}


def check_args(args: Args):
    """Refuse settings that cannot work before anything is built, each with one line naming the fix."""
    for names, valid, requirement in RANGES:
        for name in names:
            if not valid(getattr(args, name)):
                fail(f"--{name.replace('_', '-')} is {getattr(args, name)}; it must be {requirement}")
    batch_size = args.num_envs * args.num_steps
    if batch_size % args.num_minibatches:
        fail(f"num_envs * num_steps = {batch_size} is not divisible by --num-minibatches {args.num_minibatches}; "
             f"pick a divisor of {batch_size}")
    if args.norm_adv and batch_size == args.num_minibatches:
        fail("mini-batches of 1 sample cannot be normalized; use fewer --num-minibatches or --no-norm-adv")
    if args.total_timesteps < batch_size and not args.eval_model:
        fail(f"--total-timesteps {args.total_timesteps} is smaller than one batch, num_envs * num_steps = {batch_size}")
    if args.play and not args.eval_model:
        fail("--play shows a saved agent; give it one with --eval-model PATH")
    desktop = sys.platform in ("darwin", "win32") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if args.play and (not desktop or os.environ.get("SDL_VIDEODRIVER") in ("dummy", "offscreen")):
        fail("--play opens a window and there is no display here; run it on a desktop (or over ssh -X), "
             "or record a video with --capture-video")
    compiler = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")  # what torch.compile calls
    if args.compile and shutil.which(compiler) is None:
        fail(f"--compile needs the C++ compiler {compiler}; install it, name another in $CXX, or drop --compile")


def check_env(env_id: str, env_kwargs=()):
    """Refuse an env that cannot be made, with Gymnasium's reason, and spaces this script cannot handle."""
    try:
        env = make_one_env(env_id, env_kwargs)
    except (gym.error.Error, ImportError, TypeError, ValueError) as error:  # ImportError: the module of module:EnvId
        if isinstance(error, TypeError) and not env_kwargs:
            raise  # a bug, not bad input
        culprit = f"--env-id {env_id}"
        if env_kwargs and isinstance(error, (TypeError, ValueError)):  # an unknown keyword, a value the env refuses
            culprit = f"--env-kwargs {' '.join(env_kwargs)}"
        fail(f"{culprit}: {type(error).__name__}: {str(error).splitlines()[0]}")
    env.close()
    if isinstance(env.action_space, gym.spaces.Box):
        fail(f"the action space is continuous ({env.action_space}); use ppo_continuous_beta.py")
    if not isinstance(env.action_space, gym.spaces.Discrete):
        fail(f"the action space {env.action_space} is not Discrete; this script handles Discrete actions only")
    if len(env.observation_space.shape or ()) != 1:
        fail(f"the observation space {env.observation_space} cannot be flattened to a vector")
    return env


def make_one_env(env_id: str, env_kwargs=(), render_mode: str | None = None, video_folder=None) -> gym.Env:
    """One environment whose observations are a flat vector (Discrete ones become one-hot)."""
    if multiprocessing.parent_process() is not None:  # an async worker: Ctrl-C is for the main process to handle
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if video_folder:  # frames are drawn off-screen: without this, SDL probes for a display and complains
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    render_mode = "rgb_array" if video_folder else render_mode
    env = gym.make(env_id, **({"render_mode": render_mode} if render_mode else {}), **keywords(env_kwargs))
    if video_folder:
        env = gym.wrappers.RecordVideo(env, video_folder, lambda episode: episode == 0, disable_logger=True)
    if not (isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) == 1):
        env = gym.wrappers.FlattenObservation(env)
    return env


def vectorization_mode(env_id: str, mode: str, env_kwargs=()) -> str:
    """Resolve `auto`: the env's own vector implementation when it steps with same-step autoreset, else sync."""
    if mode not in ("auto", "vector_entry_point"):
        return mode
    same_step = gym.vector.AutoresetMode.SAME_STEP
    try:  # its metadata, not its constructor, says how it resets: one taking **kwargs accepts any keyword
        native = gym.make_vec(env_id, 1, "vector_entry_point", autoreset_mode=same_step, **keywords(env_kwargs))
        native.close()
        if native.metadata.get("autoreset_mode") == same_step:
            return "vector_entry_point"
    except (gym.error.Error, TypeError):  # no vector entry point, or one that takes no autoreset mode
        pass
    if mode == "vector_entry_point":
        fail(f"{env_id} has no native vector implementation with same-step autoreset; use --vectorization-mode sync")
    return "sync"


def env_seeds(seed: int, count: int, stream: tuple) -> list[int]:
    """Env seeds of run seed `seed` from a SeedSequence, stream (0, start iteration) for training and (1,) for
    evaluation: no two runs or streams share one, as seeds s + i would."""
    return np.random.SeedSequence(seed, spawn_key=stream).generate_state(count, np.uint64).tolist()


def keywords(env_kwargs) -> dict:
    """--env-kwargs length=1.0 name=abc as {"length": 1.0, "name": "abc"}: Python literals, else strings."""
    parsed = {}
    for key, equals, value in (item.partition("=") for item in env_kwargs):
        if not equals or not key.isidentifier():
            fail(f"--env-kwargs {key}{equals}{value}: write KEY=VALUE, for example length=1.0")
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = value
    return parsed


def check_finite(where: str, fix: str, **values):
    """Stop at the first non-finite number (a FloatingPointError that RunGuard turns into one line), naming it."""
    for name, value in values.items():
        array = value.detach().cpu().numpy() if torch.is_tensor(value) else value  # numpy: no tensor per step
        if not np.isfinite(array).all():
            raise FloatingPointError(f"non-finite {name} {where}; {fix}")


class RunGuard:
    """Ctrl-C or SIGTERM stop the run after this iteration with a checkpoint (a second quits at once), a blow-up
    ends it in one line naming the last good checkpoint, the envs close whatever happens; and the progress line."""

    def __init__(self, args: Args, run_dir: str, envs, writer: SummaryWriter):
        self.args, self.envs, self.writer, self.checkpoint_path = args, envs, writer, f"{run_dir}/checkpoint.pt"
        self.stop_signal, self.last_print = None, 0.0  # last_print: for the progress line
        # printed commands run as printed: the Python running this one, relative if under the current folder
        here = sys.executable.startswith(os.getcwd() + os.sep)
        self.python = os.path.relpath(sys.executable) if here else sys.executable
        print(f"run directory: {run_dir} (watch it with: {self.python} -m tensorboard.main --logdir runs)")
        if args.total_timesteps % args.batch_size:
            print(f"training {args.num_iterations * args.batch_size:,} steps: whole iterations of {args.batch_size}")

    def __enter__(self):
        self.previous_handlers = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def request_stop(self, signum, frame):
        if self.stop_signal:  # a second signal quits at once
            print("\nquitting without a checkpoint", file=sys.stderr)
            raise SystemExit(128 + signum)
        self.stop_signal = signum
        again = "Ctrl-C again" if signum == signal.SIGINT else "SIGTERM again (or Ctrl-C)"
        print(f"\n{signal.Signals(signum).name} received: stopping after this iteration ({again} to quit at once)",
              file=sys.stderr)

    def show_progress(self, global_step: int, sps: int, recent_returns, final: bool):
        """Steps done, steps per second, mean return of the recent episodes and time left, at most once a second."""
        if time.time() - self.last_print < 1.0 and not final:
            return
        self.last_print, total = time.time(), self.args.num_iterations * self.args.batch_size
        mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "     n/a"
        line = (f"step {global_step:>9,}/{total:,} | {sps:>6,} steps/s | return {mean_return} | "
                f"{(total - global_step) / max(sps, 1):5.0f} s left")
        # on a terminal the line rewrites itself; in a log file it is one line each time
        print(f"\r{line}" if sys.stdout.isatty() else line, end="\n" if final or not sys.stdout.isatty() else "")

    def checkpoint_due(self, iteration: int) -> bool:
        """On a stop signal, every --checkpoint-every iterations, and at the end of a run that has a checkpoint."""
        every, last = self.args.checkpoint_every, iteration == self.args.num_iterations
        due = self.stop_signal or every and iteration % every == 0
        return bool(due or last and os.path.exists(self.checkpoint_path))

    def exit_if_stopped(self, global_step: int):
        if self.stop_signal:
            for s in self.previous_handlers:  # the checkpoint is saved: stop now, whatever signal comes next
                signal.signal(s, signal.SIG_IGN)
            invoked = sys.argv[0] if os.path.basename(sys.argv[0]) == os.path.basename(__file__) else __file__
            print(f"\ninterrupted at step {global_step:,}; checkpoint saved to {self.checkpoint_path}\n"
                  f"resume with: {self.python} {invoked} --resume {self.checkpoint_path}")
            raise SystemExit(128 + self.stop_signal)

    def __exit__(self, kind, error, traceback):
        # a script stopped by a signal is exiting, and one forwarded again (by `timeout`, say) must not cut that
        # short; otherwise the caller gets its own handlers back
        for s, handler in self.previous_handlers.items():
            signal.signal(s, signal.SIG_IGN if self.stop_signal and __name__ == "__main__" else handler)
        # after an interrupt or an error, async workers are stopped rather than asked, which could wait or fail
        stop_workers = kind is not None and isinstance(self.envs.unwrapped, gym.vector.AsyncVectorEnv)
        with warnings.catch_warnings(action="ignore"):  # Gymnasium warns that a step was pending: it is dropped
            self.envs.close(**({"terminate": True} if stop_workers else {}))
        if kind is not None:
            self.writer.close()
        if kind is FloatingPointError:
            fail(f"{error}. Training stopped" + (f"; the last good checkpoint is {self.checkpoint_path}"
                                                 if os.path.exists(self.checkpoint_path) else ""))


# Saving and loading
def save(path: str, args: Args, run_name: str, agent: Agent, first_action: int, optimizer=None, global_step=0,
         iteration=0):
    """An agent (settings, weights) or, given the optimizer, a checkpoint (plus optimizer, step count, RNGs)."""
    payload = {"script": SCRIPT, "args": asdict(args), "run_name": run_name, "obs_dim": agent.actor[0].in_features,
               "n_actions": agent.actor[-1].out_features, "first_action": first_action, "agent": agent.state_dict()}
    if optimizer is not None:
        payload |= {"optimizer": optimizer.state_dict(), "global_step": global_step, "iteration": iteration,
                    "finished": iteration == args.num_iterations, "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    torch.save(payload, path + ".tmp")
    os.replace(path + ".tmp", path)  # whole or not at all


def restore(checkpoint: dict, agent: Agent, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    """Continue from a checkpoint: weights, optimizer and RNG; returns the step count and the next iteration."""
    agent.load_state_dict(checkpoint["agent"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["torch_rng"])
    if checkpoint["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["cuda_rng"])
    return checkpoint["global_step"], checkpoint["iteration"] + 1


def load_checkpoint(path: str, refuse=ValueError) -> dict:
    """A file saved by this script (agent.pt or checkpoint.pt); for another, `refuse` (ValueError, or `fail` on the
    command line). weights_only refuses a pickle that could run code."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise refuse(f"{path}: no such file; give the path of a .pt file saved by {SCRIPT}.py") from None
    except Exception as error:
        danger = ", carrying Python objects that could run code when loaded," if "GLOBAL" in str(error) else ""
        raise refuse(f"{path}{danger} is not a file saved by {SCRIPT}.py ({str(error).splitlines()[0][:100]})")
    if not isinstance(payload, dict) or payload.get("script") != SCRIPT:
        raise refuse(f"{path} is not a file saved by {SCRIPT}.py; pass an agent.pt or checkpoint.pt it wrote")
    return payload


# Evaluation
def load_policy(path: str | dict, device: str | torch.device = "cpu", refuse=ValueError):
    """The deterministic policy of agent.pt or checkpoint.pt (or its contents): a batch of observations (numpy) to
    the actions the env takes. ValueError for another file."""
    saved = load_checkpoint(path, refuse) if isinstance(path, str) else path
    agent = Agent(saved["obs_dim"], saved["n_actions"], saved["args"]["hidden_size"], saved["args"]["activation"])
    try:
        agent.load_state_dict(saved["agent"])
    except RuntimeError:
        raise refuse(f"the network saved by {saved['run_name']} does not fit its settings (a damaged file?)") from None
    return deterministic_policy(agent.to(device), torch.device(device), saved["first_action"])


def deterministic_policy(agent: Agent, device: torch.device, first_action: int = 0):
    """The agent's most likely action, as the env numbers it, as a function of a batch of numpy observations."""
    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            action = agent.act_deterministic(torch.as_tensor(obs, dtype=torch.float32, device=device))
        return action.cpu().numpy() + first_action
    return policy


def evaluate(policy, args: Args, video_folder=None, writer: SummaryWriter | None = None, global_step=0,
             render_mode=None) -> np.ndarray:
    """Returns of --eval-episodes fresh episodes of `policy`, one per env, all together (logged, given a writer);
    or, in a window (render_mode "human"), one after the other, each printed."""
    seeds = env_seeds(args.seed, args.eval_episodes, stream=(1,))
    groups = [[seed] for seed in seeds] if render_mode else [seeds]
    envs = make_env(args.env_id, len(groups[0]), "sync" if video_folder or render_mode else "auto", args.env_kwargs,
                    render_mode, video_folder)
    returns = np.zeros(0)
    for group in groups:
        obs, _ = envs.reset(seed=group)
        group_returns, running = np.zeros(len(group)), np.ones(len(group), dtype=bool)
        while running.any():
            obs, reward, terminated, truncated, _ = envs.step(policy(obs))
            group_returns += reward * running
            running &= ~(terminated | truncated)
        returns = np.append(returns, group_returns)
        if render_mode:
            print(f"episode {len(returns)}: return {returns[-1]:.2f}")
    envs.close()
    if writer is not None:
        writer.add_scalar("eval/mean_return", returns.mean(), global_step)
        writer.add_scalar("eval/std_return", returns.std(), global_step)
    return returns


def evaluate_saved_agent(args: Args) -> dict:
    """--eval-model: evaluate a saved agent (or --play: show it) on its env, but for --env-id and --env-kwargs given."""
    check_args(args)
    saved = load_checkpoint(args.eval_model, refuse=fail)
    args.env_id = given(args).get("env_id", saved["args"]["env_id"])
    env_kwargs = keywords(saved["args"]["env_kwargs"]) | keywords(args.env_kwargs)
    args.env_kwargs = tuple(f"{key}={value!r}" for key, value in env_kwargs.items())
    env, trained = check_env(args.env_id, args.env_kwargs), (saved["obs_dim"], saved["n_actions"])
    if (gym.spaces.flatdim(env.observation_space), gym.spaces.flatdim(env.action_space)) != trained:
        fail(f"{args.eval_model} was trained on {saved['args']['env_id']}, whose spaces {args.env_id} does not share")
    policy = load_policy(saved, "cuda" if args.cuda and torch.cuda.is_available() else "cpu", refuse=fail)
    print(f"evaluating {args.eval_model} on {' '.join((args.env_id, *args.env_kwargs))}")
    video_folder = f"videos/{saved['run_name']}__eval" if args.capture_video and not args.play else None
    returns = evaluate(policy, args, video_folder, render_mode="human" if args.play else None)
    print(f"evaluation over {len(returns)} episodes: {returns.mean():.2f} +- {returns.std():.2f}")
    if video_folder:
        print("wrote " + ", ".join(glob.glob(f"{video_folder}/*.mp4")))
    return {"eval_returns": returns}


def finish_run(args: Args, run_dir: str, writer: SummaryWriter, eval_returns: np.ndarray, global_step: int,
               start_step: int, start_time: float, train_time: float):
    """Print the evaluation and the files the run wrote, and write summary.json."""
    wall_time = time.time() - start_time
    print(f"evaluation over {args.eval_episodes} episodes: {eval_returns.mean():.2f} +- {eval_returns.std():.2f}"
          f" ({global_step:,} steps, {wall_time:.1f} s)")
    summary = {"env_id": args.env_id, "eval_mean": float(eval_returns.mean()), "eval_std": float(eval_returns.std()),
               "eval_returns": eval_returns.tolist(), "global_step": global_step, "wall_time": wall_time,
               "start_time": start_time, "sps": (global_step - start_step) / train_time, "args": asdict(args)}
    with open(f"{run_dir}/summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    writer.close()
    written = [f"{run_dir}/{name}" for name in sorted(os.listdir(run_dir)) if name.endswith((".json", ".pt", ".png"))]
    print("wrote " + ", ".join(written + glob.glob(f"videos/{os.path.basename(run_dir)}/*.mp4")))


if __name__ == "__main__":
    args = tyro.cli(Args)
    evaluate_saved_agent(args) if args.eval_model else train(args)
