"""Proximal Policy Optimization with a Beta policy for bounded continuous actions, in one file.

A Gaussian policy puts probability on actions outside the bounds, which the
environment then clips; a Beta distribution lives on [0, 1] and is mapped
affinely onto each action dimension's [low, high], so every sampled action is a
legal one and its log-probability is the one the environment acts on.

Read it top to bottom: arguments, environments, the network, the small pure
functions of the algorithm (GAE, the clipped losses), then `train`, which runs
the rollout / advantage / update loop, evaluates the result and saves it.

    python ppo_continuous_beta.py                      # the swing-up pendulum
    python ppo_continuous_beta.py --env-id Pendulum-v1 --total-timesteps 100000 --num-envs 8 \
        --num-steps 128 --num-minibatches 16 --gamma 0.95 --gae-lambda 0.9 --activation relu

Paper: Schulman et al. 2017, "Proximal Policy Optimization Algorithms"
(arXiv:1707.06347); advantages: Schulman et al. 2016, "High-Dimensional
Continuous Control Using Generalized Advantage Estimation" (arXiv:1506.02438).
"""

import difflib
import json
import struct
import zlib
import os
import random
import shutil
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from torch.utils.tensorboard import SummaryWriter

import pendulum_env  # noqa: F401  registers SwingUpPendulum-v0


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
    checkpoint_every: int = 0
    """save a resumable checkpoint every this many iterations (0: only on interrupt)"""
    resume: str | None = None
    """path of a checkpoint to continue training from (same run directory)"""

    # Algorithm
    env_id: str = "SwingUpPendulum-v0"
    """id of the Gymnasium environment"""
    total_timesteps: int = 2_000_000
    """total environment steps of training"""
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
    gamma: float = 0.98
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
    hidden_size: int = 64
    """width of the two hidden layers of the actor and of the critic"""
    activation: Literal["tanh", "relu"] = "tanh"
    """nonlinearity of those hidden layers"""
    norm_obs: bool = False
    """if toggled, normalize observations by running mean and std (frozen for evaluation)"""
    norm_reward: bool = True
    """if toggled, scale rewards by the running std of the discounted return"""

    # Filled in at run time
    batch_size: int = 0
    """the batch size (num_envs * num_steps)"""
    minibatch_size: int = 0
    """the mini-batch size (batch_size // num_minibatches)"""
    num_iterations: int = 0
    """the number of iterations (total_timesteps // batch_size)"""


def fail(message: str):
    """Stop on bad input with one line naming the problem and the fix (exit status 2)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


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
    if args.checkpoint_every < 0:
        fail(f"--checkpoint-every is {args.checkpoint_every}; use 0 (off) or a positive number of iterations")
    if args.seed < 0:
        fail(f"--seed is {args.seed}; Gymnasium seeds must be non-negative integers")
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


# Environments
def check_env_id(env_id: str):
    """Refuse an unknown id or an environment whose optional dependency is missing."""
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, gym.registry.keys(), n=3)
        fail(f"unknown environment id {env_id!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                                       "; see gymnasium.pprint_registry() for the ids"))
    try:
        gym.make(env_id).close()
    except gym.error.DependencyNotInstalled as error:
        hint = 'pip install "gymnasium[box2d]"' if "box2d" in str(error).lower() else \
            'pip install "gymnasium[mujoco]"' if "mujoco" in str(error).lower() else "install what it names"
        fail(f"{env_id} needs a package that is not installed ({str(error).splitlines()[0]}); run: {hint}")


def make_env(env_id: str, num_envs: int, mode: str = "auto", video_folder: str | None = None):
    """Build `num_envs` copies of `env_id` with same-step autoreset and episode statistics.

    Same-step autoreset returns the first observation of the next episode at the
    step that ends one and keeps the true last observation in `infos["final_obs"]`,
    so every stored transition is real and a truncated one can be bootstrapped.
    """
    same_step = gym.vector.AutoresetMode.SAME_STEP
    spec = gym.spec(env_id)
    if mode == "auto":
        mode = "sync"
        if spec.vector_entry_point is not None and video_folder is None:
            try:  # only natives that honour same-step autoreset qualify
                gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point",
                             autoreset_mode=same_step).close()
                mode = "vector_entry_point"
            except (TypeError, gym.error.Error):
                pass

    def flatten_if_needed(env):
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            try:  # Discrete, Tuple, Dict, ... become one flat vector (one-hot for Discrete)
                env = gym.wrappers.FlattenObservation(env)
            except ValueError:
                fail(f"the observation space {space} cannot be flattened to a vector; this script needs a flat Box")
        return env

    if mode == "vector_entry_point":
        try:
            envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, autoreset_mode=same_step)
        except (TypeError, gym.error.Error):
            fail(f"{env_id} has no native vector implementation with same-step autoreset; "
                 "use --vectorization-mode sync (or auto)")
    else:
        def thunk(index):
            def make():
                if video_folder and index == 0:
                    env = gym.make(env_id, render_mode="rgb_array")
                    env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: episode == 0,
                                                   disable_logger=True)
                else:
                    env = gym.make(env_id)
                return flatten_if_needed(env)
            return make
        vector_class = gym.vector.SyncVectorEnv if mode == "sync" else gym.vector.AsyncVectorEnv
        envs = vector_class([thunk(i) for i in range(num_envs)], autoreset_mode=same_step)
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def check_spaces(envs):
    """Refuse spaces this script cannot handle, with the fix in the message."""
    action_space = envs.single_action_space
    if isinstance(action_space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        fail(f"the action space is discrete ({action_space}); use ppo_discrete.py")
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        fail(f"the action space {action_space} is not a flat Box; this script handles Box actions only")
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        fail(f"the action space {action_space} has infinite bounds; a Beta policy needs finite [low, high] "
             "(wrap the env with gymnasium.wrappers.ClipAction after giving it finite bounds)")
    observation_space = envs.single_observation_space
    if len(observation_space.shape) != 1:
        fail(f"the observation space {observation_space} is an image or other array, not a vector; "
             "this script's MLP needs a flat Box (use a CNN-based PPO for pixels)")


# The network
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate critic and Beta actor MLPs: 2 hidden layers of `hidden` units (64 by default), tanh or ReLU.

    The actor has two linear heads per action dimension; alpha = 1 + softplus(a)
    and beta = 1 + softplus(b) keep both above 1, so the density is unimodal.
    """

    sample_eps = 1e-6  # samples stay in [eps, 1 - eps], where log-probabilities are finite

    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 64, activation: str = "tanh"):
        super().__init__()
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

    def get_action_and_value(self, obs: torch.Tensor, action: torch.Tensor | None = None):
        """Sample u in [0, 1]^d (or score a given one): u, log pi(u|s), entropy, V(s).

        Log-probability and entropy are sums over the action dimensions.
        """
        alpha, beta = self.get_alpha_beta(obs)
        distribution = torch.distributions.Beta(alpha, beta, validate_args=False)
        if action is None:
            action = distribution.sample().clamp(self.sample_eps, 1.0 - self.sample_eps)
        log_prob = distribution.log_prob(action).sum(-1)
        return action, log_prob, distribution.entropy().sum(-1), self.get_value(obs)

    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean of the Beta distribution, alpha / (alpha + beta), in [0, 1]^d."""
        alpha, beta = self.get_alpha_beta(obs)
        return alpha / (alpha + beta)


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
    advantages = rewards * 0.0  # same type, shape and device as the input, floating point
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
    _, newlogprob, entropy, newvalue = agent.get_action_and_value(obs, actions)
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


# Observation normalisation lives here rather than in Gymnasium's vector wrapper, which
# refuses same-step autoreset (it could not normalise infos["final_obs"]).
def update_obs_stats(obs_stats: dict, batch: np.ndarray):
    """Merge a batch of observations into the running mean and variance (Chan et al.'s parallel update)."""
    count, batch_count = obs_stats["count"], len(batch)
    delta = batch.mean(0) - obs_stats["mean"]
    total = count + batch_count
    obs_stats["mean"] = obs_stats["mean"] + delta * batch_count / total
    obs_stats["var"] = (obs_stats["var"] * count + batch.var(0) * batch_count + delta ** 2 * count * batch_count / total) / total
    obs_stats["count"] = total


def normalize_obs(obs: np.ndarray, obs_stats: dict | None) -> np.ndarray:
    """(obs - mean) / sqrt(var + eps) with the running statistics; unchanged when there are none."""
    if obs_stats is None:
        return obs
    return (obs - np.asarray(obs_stats["mean"])) / np.sqrt(np.asarray(obs_stats["var"]) + 1e-8)


# The policy picture of a pendulum: deterministic action over angle and velocity
def is_pendulum_like(envs) -> bool:
    """Observation (cos angle, sin angle, velocity) and one action dimension."""
    space = envs.single_observation_space
    return (space.shape == (3,) and envs.single_action_space.shape == (1,)
            and np.allclose(space.low[:2], -1) and np.allclose(space.high[:2], 1) and np.isfinite(space.low[2]))


def policy_heatmap(agent: Agent, obs_space, obs_stats, device, width=256, height=144) -> np.ndarray:
    """RGB image (H, W, 3): angle -pi..pi left to right, velocity high..low top to bottom.

    Blue is the lowest action, white the middle, red the highest.
    """
    angle = np.linspace(-np.pi, np.pi, width)
    velocity = np.linspace(obs_space.high[2], obs_space.low[2], height)
    grid_velocity, grid_angle = np.meshgrid(velocity, angle, indexing="ij")
    obs = np.stack([np.cos(grid_angle), np.sin(grid_angle), grid_velocity], axis=-1).reshape(-1, 3)
    with torch.inference_mode():
        u = agent.act_deterministic(torch.as_tensor(normalize_obs(obs, obs_stats), dtype=torch.float32,
                                                    device=device)).cpu().numpy()
    level = (2 * u.reshape(height, width) - 1)[..., None]  # -1 lowest action .. 1 highest
    white, blue, red = np.ones(3), np.array([0.2, 0.3, 0.9]), np.array([0.9, 0.2, 0.2])
    image = np.where(level < 0, white + (white - blue) * level, white + (red - white) * level)
    return (image * 255).round().astype(np.uint8)


def write_png(path: str, image: np.ndarray):
    """Save an RGB uint8 image as PNG with the standard library (no imaging dependency)."""
    height, width, _ = image.shape
    rows = b"".join(b"\x00" + image[y].tobytes() for y in range(height))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                + chunk(b"IEND", b""))


# Saving and loading
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
                 f"(torch.load with weights_only=True); pass a .pt file written by ppo_continuous_beta.py --save-model")
        fail(f"{path} is not a checkpoint saved by ppo_continuous_beta.py ({type(error).__name__}: "
             f"{str(error).splitlines()[0][:160]}); pass a .pt file written by --save-model")
    if not isinstance(payload, dict) or payload.get("script") != "ppo_continuous_beta":
        fail(f"{path} is not a checkpoint saved by ppo_continuous_beta.py; pass a .pt file written by --save-model")
    if env_id is not None and payload["args"]["env_id"] != env_id:
        fail(f"{path} was saved for {payload['args']['env_id']}, not {env_id}; pass --env-id "
             f"{payload['args']['env_id']}")
    return payload


def load_agent(saved: dict, path: str, device: torch.device) -> Agent:
    agent = Agent(saved["obs_dim"], saved["action_dim"], saved["args"]["hidden_size"],
                  saved["args"].get("activation", "tanh")).to(device)
    try:
        agent.load_state_dict(saved["agent"])
    except RuntimeError:
        fail(f"{path} holds a network of another shape than {saved['args']['env_id']} needs; "
             "pass a checkpoint saved for this environment")
    return agent


def load_policy(path: str):
    """A saved agent as a function: one observation (numpy) -> its deterministic env action.

    `python pendulum_env.py --policy PATH` uses it to let the agent drive the pendulum.
    """
    saved = load_checkpoint(path)
    agent = load_agent(saved, path, torch.device("cpu"))
    low, high, obs_stats = saved["action_low"].numpy(), saved["action_high"].numpy(), saved["obs_stats"]

    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            u = agent.act_deterministic(torch.as_tensor(normalize_obs(obs, obs_stats), dtype=torch.float32))
        return to_env_action(u.numpy(), low, high)
    return policy


def evaluate(agent: Agent, env_id: str, episodes: int, seed: int, device: torch.device,
             obs_stats: dict | None = None, video_folder: str | None = None) -> np.ndarray:
    """Run the deterministic policy (the Beta mean) for `episodes` fresh episodes, one per environment.

    Episode i of run seed s starts from seed 1_000_000 + s * episodes + i, so the
    starts differ from training's (seeds s + i) and no two run seeds share one.
    """
    envs = make_env(env_id, episodes, video_folder=video_folder)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    obs, _ = envs.reset(seed=1_000_000 + seed * episodes)
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    with torch.inference_mode():
        while running.any():
            obs_tensor = torch.as_tensor(normalize_obs(obs, obs_stats), dtype=torch.float32, device=device)
            u = agent.act_deterministic(obs_tensor).cpu().numpy()
            obs, reward, terminated, truncated, _ = envs.step(to_env_action(u, low, high))
            returns += reward * running
            running &= ~(terminated | truncated)
    envs.close()
    return returns


def new_run_name(args: Args) -> str:
    """`{env_id}__{exp_name}__{seed}__{unix_time}`, a second later if that run directory exists already."""
    unix_time = int(time.time())
    while os.path.exists(f"runs/{args.env_id}__{args.exp_name}__{args.seed}__{unix_time}"):
        unix_time += 1
    return f"{args.env_id}__{args.exp_name}__{args.seed}__{unix_time}"


def train(args: Args) -> dict:
    check_args(args)
    resumed = load_checkpoint(args.resume) if args.resume else None
    if resumed and "optimizer" not in resumed:
        fail(f"{args.resume} is a saved agent, not a checkpoint; resume from runs/{{run_name}}/checkpoint.pt")
    if resumed:  # a resumed run continues with the settings it started with
        args = Args(**resumed["args"] | {"resume": args.resume})
    check_env_id(args.env_id)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.torch_threads)
    if args.cuda and not torch.cuda.is_available():
        # warn rather than refuse: the run still works, only slower (and for these small nets often not)
        print("warning: --cuda asked for but no CUDA device is available; training on the CPU", file=sys.stderr)
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")

    # Evaluation only: load a saved agent and run it
    if args.eval_model is not None:
        saved = load_checkpoint(args.eval_model, args.env_id)
        run_name = f"{args.env_id}__{args.exp_name}__eval__{args.seed}__{int(time.time())}"
        agent = load_agent(saved, args.eval_model, device)
        returns = evaluate(agent, args.env_id, args.eval_episodes, args.seed, device, saved["obs_stats"],
                           f"videos/{run_name}" if args.capture_video else None)
        print(f"evaluation over {len(returns)} episodes: {returns.mean():.2f} +- {returns.std():.2f}")
        return {"eval_returns": returns, "run_dir": None, "agent": agent}

    run_name = resumed["run_name"] if resumed else new_run_name(args)
    run_dir = f"runs/{run_name}"
    env_seed = args.seed + (resumed["iteration"] * args.num_envs if resumed else 0)  # a resumed run meets new episodes
    envs = make_env(args.env_id, args.num_envs, args.vectorization_mode)
    check_spaces(envs)
    pendulum_like = is_pendulum_like(envs)
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    reward_normalizer = None
    if args.norm_reward:
        envs = reward_normalizer = gym.wrappers.vector.NormalizeReward(envs, gamma=args.gamma)
    obs_dim, action_dim = obs_space.shape[0], action_space.shape[0]
    action_low, action_high = action_space.low, action_space.high

    agent = Agent(obs_dim, action_dim, args.hidden_size, args.activation).to(device)
    # fused: one kernel updates every parameter, ~15% faster per step than the default for-loop
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)
    loss_function = torch.compile(ppo_loss) if args.compile else ppo_loss  # compiling pays off only on long runs
    global_step, start_iteration = 0, 1
    if resumed:
        agent.load_state_dict(resumed["agent"])
        optimizer.load_state_dict(resumed["optimizer"])
        global_step, start_iteration = resumed["global_step"], resumed["iteration"] + 1
        torch.set_rng_state(resumed["torch_rng"])
    # running observation statistics, saved with the model and frozen for evaluation
    obs_stats = {"mean": np.zeros(obs_dim), "var": np.ones(obs_dim), "count": 1e-4} if args.norm_obs else None
    if resumed and args.norm_obs:
        obs_stats = {key: np.asarray(value) for key, value in resumed["obs_stats"].items()}
    if resumed and args.norm_reward:
        rms = reward_normalizer.return_rms
        rms.mean, rms.var, rms.count = (np.float64(resumed["reward_stats"][key]) for key in ("mean", "var", "count"))

    writer = SummaryWriter(run_dir, purge_step=global_step + 1 if resumed else None)  # drop what came after the checkpoint
    writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" +
                    "\n".join(f"|{key}|{value}|" for key, value in vars(args).items()))

    def saved_agent() -> dict:
        return {"script": "ppo_continuous_beta", "args": asdict(args), "run_name": run_name,
                "obs_dim": obs_dim, "action_dim": action_dim, "agent": agent.state_dict(),
                "action_low": torch.as_tensor(action_low), "action_high": torch.as_tensor(action_high),
                "obs_stats": None if obs_stats is None else {key: np.asarray(value).tolist()
                                                             for key, value in obs_stats.items()}}

    def checkpoint(iteration: int) -> str:
        path = f"{run_dir}/checkpoint.pt"
        reward_stats = None
        if args.norm_reward:
            rms = reward_normalizer.return_rms
            reward_stats = {"mean": float(rms.mean), "var": float(rms.var), "count": float(rms.count)}
        save_atomically(saved_agent() | {"optimizer": optimizer.state_dict(), "global_step": global_step,
                                         "iteration": iteration, "torch_rng": torch.get_rng_state(),
                                         "reward_stats": reward_stats}, path)
        return path

    def log_heatmap():
        image = policy_heatmap(agent, obs_space, obs_stats, device)
        writer.add_image("charts/policy", image, global_step, dataformats="HWC")
        write_png(f"{run_dir}/policy.png", image)

    # Ctrl-C or SIGTERM: finish the current iteration, checkpoint, then stop
    stop_signal = []

    def request_stop(signum, frame):
        if stop_signal:  # a second Ctrl-C quits at once
            print("\nquitting without a checkpoint", file=sys.stderr)
            raise SystemExit(130)
        stop_signal.append(signum)
        print("\nstopping after this iteration (Ctrl-C again to quit at once)", file=sys.stderr)

    previous_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    # Rollout storage, allocated once; actions are the Beta samples u in [0, 1]^d
    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim), device=device)
    actions = torch.zeros((args.num_steps, args.num_envs, action_dim), device=device)
    logprobs = torch.zeros((args.num_steps, args.num_envs), device=device)
    rewards = np.zeros((args.num_steps, args.num_envs), dtype=np.float32)  # numpy: filled from the env's arrays
    dones = np.zeros((args.num_steps, args.num_envs), dtype=np.float32)
    values = torch.zeros((args.num_steps, args.num_envs), device=device)

    start_time = time.time()
    start_step = global_step
    last_print = 0.0
    recent_returns = deque(maxlen=20)  # for the progress line
    env_obs, _ = envs.reset(seed=env_seed)
    if args.norm_obs:
        update_obs_stats(obs_stats, env_obs)
    next_obs = torch.as_tensor(normalize_obs(env_obs, obs_stats), dtype=torch.float32, device=device)
    iteration = start_iteration - 1
    try:
        for iteration in range(start_iteration, args.num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (iteration - 1.0) / args.num_iterations)

            # Rollout: step the policy in all environments for num_steps
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step] = next_obs
                with torch.inference_mode():
                    action, logprob, _, value = agent.get_action_and_value(next_obs)
                actions[step], logprobs[step], values[step] = action, logprob, value
                env_action = to_env_action(action.cpu().numpy(), action_low, action_high)
                env_obs, reward, terminations, truncations, infos = envs.step(env_action)
                if not (np.isfinite(reward).all() and np.isfinite(env_obs).all()):
                    bad = "reward" if not np.isfinite(reward).all() else "observation"
                    raise FloatingPointError(f"{args.env_id} returned a non-finite {bad} at step {global_step:,}; "
                                             "the environment is at fault, check its dynamics and reward")

                rewards[step], dones[step] = reward, terminations | truncations
                # A time limit is not a terminal state: bootstrap gamma * V(final_obs) into the reward
                truncated_only = truncations & ~terminations
                if truncated_only.any():
                    final_obs = normalize_obs(np.stack(infos["final_obs"][truncated_only]), obs_stats)
                    with torch.inference_mode():
                        final_values = agent.get_value(torch.as_tensor(final_obs, dtype=torch.float32, device=device))
                    rewards[step, truncated_only] += args.gamma * final_values.cpu().numpy()
                if args.norm_obs:
                    update_obs_stats(obs_stats, env_obs)
                next_obs = torch.as_tensor(normalize_obs(env_obs, obs_stats), dtype=torch.float32, device=device)

                if "episode" in infos:
                    for i in np.flatnonzero(infos["_episode"]):
                        episodic_return = float(infos["episode"]["r"][i])
                        writer.add_scalar("charts/episodic_return", episodic_return, global_step)
                        writer.add_scalar("charts/episodic_length", int(infos["episode"]["l"][i]), global_step)
                        recent_returns.append(episodic_return)

            if not (torch.isfinite(values).all() and torch.isfinite(logprobs).all()):
                raise FloatingPointError(f"the network output became non-finite at iteration {iteration}; "
                                         "try a lower --learning-rate")

            # GAE: advantages and value targets for the whole rollout
            with torch.inference_mode():
                next_value = agent.get_value(next_obs)
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
                        # KL estimators from http://joschu.net/blog/kl-approx.html
                        old_approx_kl = (-logratio).mean()
                        approx_kl = ((ratio - 1) - logratio).mean()
                        clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean())

                    optimizer.zero_grad()
                    loss.backward()
                    grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                        quantity = "loss" if not torch.isfinite(loss) else "gradient norm"
                        raise FloatingPointError(
                            f"the {quantity} became {loss.item() if quantity == 'loss' else grad_norm.item()} "
                            f"at iteration {iteration}; try a lower --learning-rate, or --norm-obs")
                    optimizer.step()

                if args.target_kl is not None and approx_kl > args.target_kl:
                    break

            # Logging, once per iteration
            explained_var = explained_variance(b_values, b_returns)
            sps = int((global_step - start_step) / (time.time() - start_time))
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
            writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
            writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
            writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
            writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
            writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
            writer.add_scalar("losses/clipfrac", torch.stack(clipfracs).mean().item(), global_step)
            writer.add_scalar("losses/explained_variance", explained_var, global_step)
            writer.add_scalar("charts/SPS", sps, global_step)
            if pendulum_like and args.heatmap_every and iteration % args.heatmap_every == 0:
                log_heatmap()
            if time.time() - last_print > 1.0 or iteration == args.num_iterations:
                last_print = time.time()
                left = (args.num_iterations * args.batch_size - global_step) / max(sps, 1)
                mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "     n/a"
                line = (f"step {global_step:>9,}/{args.num_iterations * args.batch_size:,} | {sps:>6,} steps/s | "
                        f"return {mean_return} | {left:5.0f} s left")
                # on a terminal the line rewrites itself; in a log file it is one line each time
                print(f"\r{line}" if sys.stdout.isatty() else line, end="" if sys.stdout.isatty() else "\n", flush=True)

            if args.checkpoint_every and iteration % args.checkpoint_every == 0:
                checkpoint(iteration)
            if stop_signal:
                break
    except FloatingPointError as error:
        writer.close()
        last_good = f"{run_dir}/checkpoint.pt"
        fail(f"{error}. Training stopped" + (f"; the last good checkpoint is {last_good}" if os.path.exists(last_good) else ""))
    finally:
        for s, handler in previous_handlers.items():
            signal.signal(s, handler)
        envs.close()
    if sys.stdout.isatty():
        print()

    if stop_signal:
        path = checkpoint(iteration)
        writer.close()
        print(f"interrupted at step {global_step:,}; checkpoint saved to {path}\n"
              f"resume with: python {os.path.basename(__file__)} --env-id {args.env_id} --resume {path}")
        raise SystemExit(130 if stop_signal[0] == signal.SIGINT else 143)

    train_time = time.time() - start_time
    # Evaluation of the deterministic policy (the Beta mean) on fresh environments
    if pendulum_like:
        log_heatmap()
    eval_returns = evaluate(agent, args.env_id, args.eval_episodes, args.seed, device, obs_stats,
                            f"videos/{run_name}" if args.capture_video else None)
    writer.add_scalar("eval/mean_return", eval_returns.mean(), global_step)
    writer.add_scalar("eval/std_return", eval_returns.std(), global_step)
    wall_time = time.time() - start_time
    print(f"evaluation over {args.eval_episodes} episodes: {eval_returns.mean():.2f} +- {eval_returns.std():.2f}"
          f" ({global_step:,} steps, {wall_time:.1f} s)")

    if args.save_model:
        save_atomically(saved_agent(), f"{run_dir}/agent.pt")
        print(f"agent saved to {run_dir}/agent.pt")
    summary = {"env_id": args.env_id, "eval_mean": float(eval_returns.mean()), "eval_std": float(eval_returns.std()),
               "eval_returns": eval_returns.tolist(), "global_step": global_step, "wall_time": wall_time,
               "sps": (global_step - start_step) / train_time, "args": asdict(args)}
    with open(f"{run_dir}/summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    writer.close()
    return {"eval_returns": eval_returns, "run_dir": run_dir, "global_step": global_step, "agent": agent}


if __name__ == "__main__":
    train(tyro.cli(Args))
