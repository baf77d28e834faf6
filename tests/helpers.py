"""Small environments, readers and runners shared by the tests."""

import glob
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_OF = {"ppo_discrete": "CartPole-v1", "ppo_continuous_beta": "SwingUpPendulum-v0"}  # each script's env in tests
ACTION_OF = {"ppo_discrete": "discrete", "ppo_continuous_beta": "box"}  # ConstantRewardEnv's action for each


def tiny(script, **overrides):
    """Args of a run small enough for a unit test: 4 iterations of 4 environments x 32 steps (batch 128), 2
    evaluation episodes, on the script's test env unless `env_id` is given."""
    settings = dict(env_id=ENV_OF[script.__name__], total_timesteps=512, num_envs=4, num_steps=32, eval_episodes=2)
    return script.Args(**(settings | overrides))


def run_script(script: str, *argv: str, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    """`python SCRIPT ARGV...` from the repository, run in `cwd` by this interpreter."""
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *argv], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


class ConstantRewardEnv(gym.Env):
    """Observation [1], reward 1 every step, never terminates: its value is 1 / (1 - gamma).

    `observation="sequence"` gives a space that cannot be flattened, `"image"`
    an image; `action="multidiscrete"`, `"box"` or `"unbounded"` an action space of another kind,
    to test what the scripts refuse; `reward` replaces the reward (e.g. NaN).
    """

    def __init__(self, observation="box", action="discrete", reward=1.0):
        box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = {"box": box, "sequence": gym.spaces.Sequence(box),
                                  "image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}[observation]
        self.action_space = {"discrete": gym.spaces.Discrete(2),
                             "multidiscrete": gym.spaces.MultiDiscrete([2, 2]),
                             "box": gym.spaces.Box(0.0, 1.0, (1,), np.float32),
                             "unbounded": gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)}[action]
        self.reward = reward

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation(), {}

    def observation(self):
        if isinstance(self.observation_space, gym.spaces.Box):
            return np.ones(self.observation_space.shape, self.observation_space.dtype)
        return (np.ones(1, np.float32),)

    def step(self, action):
        return self.observation(), self.reward, False, False, {}


def register_once(env_id, entry_point, **kwargs):
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=entry_point, **kwargs)


def read_scalars(run_dir: str) -> dict:
    """All scalars of a TensorBoard run as {tag: [(step, value), ...]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    scalars = {}
    for path in sorted(glob.glob(f"{run_dir}/events.out.tfevents.*")):
        accumulator = EventAccumulator(path, size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return scalars


def refused(function, args, capsys) -> str:
    """Run `function(args)` (train or evaluate_saved_agent), expect the one-line refusal with exit status 2,
    return the line."""
    import pytest
    with pytest.raises(SystemExit) as stop:
        function(args)
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message
    return message


class BoundedActionEnv(ConstantRewardEnv):
    """Two action dimensions with asymmetric bounds [-2, 1] x [0, 5]; records every action it gets."""

    received = []

    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))

    def step(self, action):
        BoundedActionEnv.received.append(np.array(action))
        return super().step(action)


class NaNRewardEnv(ConstantRewardEnv):
    """Pays NaN after `nan_after` steps, the kind of bug that should stop training at once."""

    def __init__(self, nan_after=3, **kwargs):
        super().__init__(**kwargs)
        self.nan_after = nan_after

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, (float("nan") if self.steps > self.nan_after else reward), terminated, truncated, info


class SeedRecordingEnv(ConstantRewardEnv):
    """Records the seed of every reset that sets one, to check which starts a script draws."""

    seeds = []

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            SeedRecordingEnv.seeds.append(seed)
        return super().reset(seed=seed, options=options)


class ShiftedActionEnv(ConstantRewardEnv):
    """Actions are Discrete(2, start=5), as some environments number them; records every action it gets."""

    received = []

    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Discrete(2, start=5)

    def step(self, action):
        ShiftedActionEnv.received.append(int(action))
        assert self.action_space.contains(action), f"{action} is not an action of {self.action_space}"
        return super().step(action)


class AlternatingObservationEnv(ConstantRewardEnv):
    """Reward 1 a step; the observation is [-1] at reset and changes sign at every step, so it is [+1] after an odd
    number of steps. Cut by a time limit of 3 steps, an episode ends on [+1] while the next one starts on [-1]:
    V(last observation) and V(reset observation) differ. `terminate_after=k` also terminates it at its k-th step."""

    def __init__(self, terminate_after=None, **kwargs):
        super().__init__(**kwargs)
        self.terminate_after = terminate_after

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        return super().reset(seed=seed, options=options)

    def observation(self):
        return np.array([1.0 if self.steps % 2 else -1.0], np.float32)

    def step(self, action):
        self.steps += 1
        obs, reward, _, truncated, info = super().step(action)
        return obs, reward, self.steps == self.terminate_after, truncated, info


def interrupted_run(script, args, at_iteration: int, monkeypatch) -> str:
    """Run `script.train(args)` and press Ctrl-C during iteration `at_iteration` (when it logs its steps per
    second): the run stops after that iteration with a checkpoint, as on the command line. Returns its path."""
    import signal

    import pytest
    from torch.utils.tensorboard import SummaryWriter
    add_scalar, iterations = SummaryWriter.add_scalar, []

    def counting_add_scalar(writer, tag, *rest, **kwargs):
        if tag == "charts/SPS":
            iterations.append(tag)
            if len(iterations) == at_iteration:
                signal.raise_signal(signal.SIGINT)
        return add_scalar(writer, tag, *rest, **kwargs)

    monkeypatch.setattr(SummaryWriter, "add_scalar", counting_add_scalar)
    with pytest.raises(SystemExit) as stop:
        script.train(args)
    monkeypatch.setattr(SummaryWriter, "add_scalar", add_scalar)
    assert stop.value.code == 128 + signal.SIGINT
    return max(glob.glob("runs/*/checkpoint.pt"), key=os.path.getmtime)  # this run's, the newest


def look_like_a_desktop(monkeypatch) -> list:
    """Make the environment look like a Linux desktop (DISPLAY set, no off-screen SDL driver), so that --play
    starts; but whenever pygame starts its display, SDL is first told to draw into memory (its dummy driver), so
    no window ever opens. Returns a list that gets an entry each time pygame starts its display."""
    import pygame
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    started = []

    def off_screen(init):
        def start(*args, **kwargs):
            monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
            started.append(init)
            return init(*args, **kwargs)
        return start

    monkeypatch.setattr(pygame, "init", off_screen(pygame.init))
    monkeypatch.setattr(pygame.display, "init", off_screen(pygame.display.init))
    return started
