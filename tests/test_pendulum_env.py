"""Worked examples of the swing-up pendulum (pendulum_env.py, SPEC.md).

Defaults: length 2/3, max_speed 8, motor 6, gravitation 10, dt 1/20, so gravity
alone gives an angular acceleration of 15 * sin(angle) and the motor up to 6.
"""

import importlib.util
import math
import os
import runpy
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import pendulum_env
from pendulum_env import (
    ENV_ID,
    SwingUpPendulumEnv,
    SwingUpPendulumVectorEnv,
    action_to_control,
    mouse_control,
    render_frame,
    wrap_angle,
)

PI = math.pi
needs_pygame = pytest.mark.skipif(importlib.util.find_spec("pygame") is None, reason="pygame draws the frames")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# No display at all: neither a screen nor an SDL driver chosen
HEADLESS = {key: value for key, value in os.environ.items()
            if key not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}


def step_from(angle, velocity, action, **config):
    """One step of a fresh env from a chosen state; returns the env and the step's results."""
    env = SwingUpPendulumEnv(**config)
    env.reset(options={"angle": angle, "velocity": velocity})
    return env, env.step(np.array([action], dtype=np.float32))


# --------------------------------------------------------------------------- #
# Physics: SPEC.md's worked examples (control 0 is action 0.5, control 1 is action 1)
# --------------------------------------------------------------------------- #
def test_hanging_down_at_rest_stays_down():
    # sin(pi) is 1.22e-16 in floating point, not 0: a tiny push of 15 * 1.22e-16 * 0.05.
    env, _ = step_from(PI, 0.0, 0.5)
    assert env.angle == pytest.approx(PI, abs=1e-12)
    assert env.velocity == pytest.approx(9.184850993605151e-17, rel=1e-9)


def test_hanging_down_and_turning_keeps_turning():
    env, _ = step_from(PI, 0.1, 0.5)
    assert env.angle == pytest.approx(3.146592653589793, abs=1e-12)  # pi + 0.1 * 0.05
    assert env.velocity == pytest.approx(0.1, abs=1e-12)


def test_horizontal_pendulum_falls_with_gravity():
    env, _ = step_from(PI / 2, 0.0, 0.5)
    assert env.velocity == pytest.approx(0.75, abs=1e-12)  # 10 / (2/3) * 0.05
    assert env.angle == pytest.approx(1.6082963267948966, abs=1e-12)  # pi/2 + 0.75 * 0.05


def test_full_motor_turns_upright_pendulum():
    env, _ = step_from(0.0, 0.0, 1.0)
    assert env.velocity == pytest.approx(0.3, abs=1e-12)  # 6 * 0.05
    assert env.angle == pytest.approx(0.015, abs=1e-12)  # the new velocity moves the angle: 0.3 * 0.05


def test_velocity_is_clipped_at_max_speed():
    env, (observation, *_) = step_from(PI / 2, 7.9, 1.0)  # 7.9 + (6 + 15) * 0.05 = 8.95
    assert env.velocity == 8.0
    assert env.angle == pytest.approx(PI / 2 + 8.0 * 0.05, abs=1e-12)
    assert observation[2] == 1.0
    env, _ = step_from(-PI / 2, -7.9, 0.0)
    assert env.velocity == -8.0


def test_constructor_arguments_change_the_physics():
    config = dict(length=1.0, motor=3.0, gravitation=9.81, max_speed=4.0)
    env, _ = step_from(PI / 2, 0.0, 0.5, **config)  # gravity alone: 9.81 / 1
    assert env.velocity == pytest.approx(0.4905, abs=1e-12)
    assert env.angle == pytest.approx(PI / 2 + 0.4905 * 0.05, abs=1e-12)
    env, _ = step_from(0.0, 0.0, 1.0, **config)  # motor alone: 3
    assert env.velocity == pytest.approx(0.15, abs=1e-12)
    assert env.angle == pytest.approx(0.0075, abs=1e-12)
    env, (observation, *_) = step_from(PI / 2, 3.9, 1.0, **config)  # 3.9 + 12.81 * 0.05 = 4.54 > 4
    assert env.velocity == 4.0
    assert observation[2] == 1.0
    env, _ = step_from(0.0, 0.0, 1.0, dt=0.1)
    assert env.velocity == pytest.approx(0.6, abs=1e-12)
    assert env.angle == pytest.approx(0.06, abs=1e-12)


# --------------------------------------------------------------------------- #
# Observation and action
# --------------------------------------------------------------------------- #
def test_observation_is_cos_sin_and_scaled_velocity():
    env = SwingUpPendulumEnv()
    observation, info = env.reset(options={"angle": 0.0, "velocity": 0.5})
    assert observation.dtype == np.float32
    np.testing.assert_array_equal(observation, [1.0, 0.0, 0.0625])  # 0.5 / 8
    observation, _ = env.reset(options={"angle": PI / 2, "velocity": -8.0})
    np.testing.assert_allclose(observation, [0.0, 1.0, -1.0], atol=1e-7)
    assert info == {}


def test_action_maps_to_control_and_is_clipped():
    np.testing.assert_array_equal(action_to_control([0.0, 0.5, 1.0, -0.3, 1.7]), [-1.0, 0.0, 1.0, -1.0, 1.0])
    env, _ = step_from(0.0, 0.0, -0.3)  # clipped like action 0: control -1
    assert env.control == -1.0
    assert env.velocity == pytest.approx(-0.3, abs=1e-12)


# --------------------------------------------------------------------------- #
# Reward: from the state before the step
# --------------------------------------------------------------------------- #
def test_reward_of_upright_at_rest_is_only_the_control_cost():
    _, (_, reward, *_) = step_from(0.0, 0.0, 1.0)  # control 1: 0.0001 * 1^2
    assert reward == pytest.approx(-0.0001, abs=1e-15)
    _, (_, reward, *_) = step_from(0.0, 0.0, 0.75)  # control 0.5: 0.0001 * 0.25
    assert reward == pytest.approx(-0.000025, abs=1e-15)
    _, (_, reward, *_) = step_from(0.0, 0.0, 0.5)
    assert reward == 0.0


def test_reward_uses_state_before_the_step():
    # Hanging down turning at 2 rad/s: pi^2 + 0.1 * 2^2, whatever the step does next.
    _, (_, reward, *_) = step_from(PI, 2.0, 0.5)
    assert reward == pytest.approx(-(PI**2 + 0.4), abs=1e-12)


def test_angle_cost_wraps_around():
    assert wrap_angle(3 * PI) == pytest.approx(-PI, abs=1e-12)
    assert wrap_angle(2 * PI - 0.1) == pytest.approx(-0.1, abs=1e-12)
    _, (_, reward, *_) = step_from(3 * PI, 0.0, 0.5)
    assert reward == pytest.approx(-(PI**2), abs=1e-12)
    _, (_, reward_wrapped, *_) = step_from(2 * PI - 0.1, 0.0, 0.5)
    _, (_, reward_direct, *_) = step_from(-0.1, 0.0, 0.5)
    assert reward_wrapped == pytest.approx(reward_direct, abs=1e-12)
    assert reward_direct == pytest.approx(-0.01, abs=1e-12)


def test_reward_weights_are_honoured():
    weights = dict(angle_weight=2.0, velocity_weight=0.5, control_weight=3.0)
    _, (_, reward, *_) = step_from(0.5, 2.0, 1.0, **weights)  # 2 * 0.25 + 0.5 * 4 + 3 * 1
    assert reward == pytest.approx(-5.5, abs=1e-12)


# --------------------------------------------------------------------------- #
# Episodes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("config, steps", [({}, 200), ({"dt": 0.1, "timeout": 3.0}, 30)])
def test_episode_truncates_after_timeout_and_never_terminates(config, steps):
    env = SwingUpPendulumEnv(**config)
    env.reset(seed=0)
    ends = [env.step(np.array([1.0], np.float32))[2:4] for _ in range(steps)]
    assert [terminated for terminated, _ in ends] == [False] * steps
    assert [truncated for _, truncated in ends] == [False] * (steps - 1) + [True]


def test_seeded_resets_cover_the_whole_state_space():
    env = SwingUpPendulumEnv()
    env.reset(seed=1)
    states = np.array([(env.angle, env.velocity) for _ in range(2000) if env.reset()])
    angles, velocities = states.T
    assert -PI <= angles.min() < -3.1 and 3.1 < angles.max() < PI
    assert -8.0 <= velocities.min() < -7.9 and 7.9 < velocities.max() < 8.0
    # Uniform: each quarter of each range holds about a quarter of the 2000 draws.
    assert np.all(np.abs(np.histogram(angles, bins=4, range=(-PI, PI))[0] - 500) < 75)
    assert np.all(np.abs(np.histogram(velocities, bins=4, range=(-8, 8))[0] - 500) < 75)


def test_same_seed_same_start_different_seed_different_start():
    first, second = SwingUpPendulumEnv(), SwingUpPendulumEnv()
    np.testing.assert_array_equal(first.reset(seed=42)[0], second.reset(seed=42)[0])
    assert (first.angle, first.velocity) == (second.angle, second.velocity)
    assert not np.array_equal(first.reset(seed=42)[0], second.reset(seed=43)[0])


def test_reset_options_set_angle_or_velocity():
    env = SwingUpPendulumEnv()
    env.reset(seed=3, options={"angle": 1.0})
    assert env.angle == 1.0 and -8.0 <= env.velocity < 8.0
    env.reset(seed=3, options={"velocity": -2.0})
    assert env.velocity == -2.0 and -PI <= env.angle < PI
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"angel": 1.0})
    with pytest.raises(ValueError, match="beyond max_speed"):
        env.reset(options={"velocity": 9.0})


def test_passes_gymnasium_env_checker(monkeypatch):
    pytest.importorskip("pygame")  # the checker also opens the human render mode
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(ENV_ID, render_mode="rgb_array").unwrapped)


@pytest.mark.parametrize(
    "argument, message",
    [
        ({"length": 0.0}, "length=0.0 is invalid: pass a finite number > 0"),
        ({"max_speed": -1.0}, "max_speed=-1.0 is invalid"),
        ({"dt": 0}, "dt=0 is invalid"),
        ({"timeout": float("nan")}, "timeout=nan is invalid"),
        ({"motor": -6.0}, "motor=-6.0 is invalid: pass a finite number >= 0"),
        ({"control_weight": -0.1}, "control_weight=-0.1 is invalid"),
        ({"length": "long"}, "length='long' is invalid"),
        ({"timeout": 0.01}, "shorter than one time step"),
    ],
)
def test_invalid_constructor_arguments_are_refused_clearly(argument, message):
    with pytest.raises(ValueError, match=message):
        SwingUpPendulumEnv(**argument)
    with pytest.raises(ValueError, match=message):
        SwingUpPendulumVectorEnv(num_envs=2, **argument)


def test_invalid_vector_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="num_envs=0 is invalid"):
        SwingUpPendulumVectorEnv(num_envs=0)
    with pytest.raises(ValueError, match="'Sometimes' is not a valid AutoresetMode"):
        SwingUpPendulumVectorEnv(autoreset_mode="Sometimes")
    with pytest.raises(ValueError, match="autoreset_mode=DISABLED is not supported"):
        SwingUpPendulumVectorEnv(autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match="render_mode='human' is not supported"):
        SwingUpPendulumVectorEnv(render_mode="human")


# --------------------------------------------------------------------------- #
# The native vector environment agrees with single environments
# --------------------------------------------------------------------------- #
def random_actions(steps, num_envs, seed=0):
    # Some actions outside [0, 1] check that clipping agrees too.
    return np.random.default_rng(seed).uniform(-0.2, 1.2, (steps, num_envs, 1)).astype(np.float32)


def assert_same_infos(native, sync):
    assert native.keys() == sync.keys()
    if "final_obs" in sync:
        np.testing.assert_array_equal(native["_final_obs"], sync["_final_obs"])
        np.testing.assert_array_equal(native["_final_info"], sync["_final_info"])
        assert native["final_info"] == sync["final_info"] == {}
        for native_obs, sync_obs in zip(native["final_obs"], sync["final_obs"]):
            assert (native_obs is None and sync_obs is None) or np.array_equal(native_obs, sync_obs)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_native_vector_env_matches_sync_vector_env(mode):
    # 450 steps: two truncations at 200 and 400 (next-step mode: resets at 201 and 402).
    config = dict(length=0.8, timeout=10.0)
    native = gym.make_vec(ENV_ID, num_envs=5, vectorization_mode="vector_entry_point", autoreset_mode=mode, **config)
    sync = gym.make_vec(ENV_ID, num_envs=5, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **config)
    native_obs, _ = native.reset(seed=7)
    sync_obs, _ = sync.reset(seed=7)
    np.testing.assert_array_equal(native_obs, sync_obs)
    truncations = 0
    for actions in random_actions(450, 5):
        native_result, sync_result = native.step(actions), sync.step(actions)
        for native_array, sync_array in zip(native_result[:4], sync_result[:4]):
            np.testing.assert_array_equal(native_array, sync_array)
        assert_same_infos(native_result[4], sync_result[4])
        truncations += native_result[3].sum()
    assert truncations == 10


def test_vector_env_is_single_envs_side_by_side():
    # Same-step mode: pendulum i is a single env seeded 7 + i; when its episode
    # ends, final_obs is the single env's last observation and the reset one follows.
    vector = SwingUpPendulumVectorEnv(num_envs=3, autoreset_mode="SameStep")
    singles = [SwingUpPendulumEnv() for _ in range(3)]
    observations, _ = vector.reset(seed=7)
    for i, single in enumerate(singles):
        np.testing.assert_array_equal(observations[i], single.reset(seed=7 + i)[0])
    for t, actions in enumerate(random_actions(250, 3, seed=1)):
        observations, rewards, _, truncated, infos = vector.step(actions)
        for i, single in enumerate(singles):
            observation, reward, _, single_truncated, _ = single.step(actions[i])
            assert rewards[i] == reward and truncated[i] == single_truncated
            if single_truncated:
                assert t == 199
                np.testing.assert_array_equal(infos["final_obs"][i], observation)
                observation, _ = single.reset()
            np.testing.assert_array_equal(observations[i], observation)
            assert (vector.angle[i], vector.velocity[i]) == (single.angle, single.velocity)


def test_next_step_autoreset_returns_reset_observation_with_zero_reward():
    vector = SwingUpPendulumVectorEnv(num_envs=2, dt=0.5, timeout=1.0)  # 2 steps per episode
    vector.reset(seed=0)
    push = np.ones((2, 1), np.float32)
    _, _, _, truncated, _ = vector.step(push)
    assert not truncated.any()
    _, _, _, truncated, infos = vector.step(push)
    assert truncated.all() and infos == {}
    observations, rewards, terminated, truncated, _ = vector.step(push)
    np.testing.assert_array_equal(rewards, [0.0, 0.0])
    assert not terminated.any() and not truncated.any()
    np.testing.assert_array_equal(vector.control, [0.0, 0.0])
    reference = SwingUpPendulumVectorEnv(num_envs=2, dt=0.5, timeout=1.0)
    reference.reset(seed=0)
    reference.step(push)
    reference.step(push)
    reference._restart(np.array([True, True]))  # what the third step does in next-step mode
    expected = pendulum_env.observe(reference.angle, reference.velocity, reference.config)
    np.testing.assert_array_equal(observations, expected)


def test_vector_reset_with_seed_list_and_options():
    vector = SwingUpPendulumVectorEnv(num_envs=3)
    vector.reset(seed=[5, None, 9])
    single = SwingUpPendulumEnv()
    single.reset(seed=9)
    assert (vector.angle[2], vector.velocity[2]) == (single.angle, single.velocity)
    observations, _ = vector.reset(options={"angle": [0.0, PI / 2, PI], "velocity": 4.0})
    np.testing.assert_allclose(observations, [[1, 0, 0.5], [0, 1, 0.5], [-1, 0, 0.5]], atol=1e-7)
    with pytest.raises(ValueError, match="got 2 seeds for num_envs=3"):
        vector.reset(seed=[1, 2])


def test_vector_env_spaces_and_metadata():
    vector = SwingUpPendulumVectorEnv(num_envs=4, autoreset_mode=AutoresetMode.SAME_STEP)
    assert vector.observation_space.shape == (4, 3) and vector.action_space.shape == (4, 1)
    assert vector.single_observation_space == SwingUpPendulumEnv().observation_space
    assert vector.single_action_space == gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    assert vector.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert SwingUpPendulumVectorEnv().metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP


# --------------------------------------------------------------------------- #
# Registration
# --------------------------------------------------------------------------- #
def test_gym_make_passes_arguments_and_adds_no_time_limit():
    env = gym.make(ENV_ID, length=1.0)
    assert env.unwrapped.config.length == 1.0
    assert env.spec.max_episode_steps is None
    wrapper = env
    while wrapper is not env.unwrapped:
        assert not isinstance(wrapper, gym.wrappers.TimeLimit)
        wrapper = wrapper.env


def test_gym_make_vec_passes_arguments_in_both_modes():
    native = gym.make_vec(ENV_ID, num_envs=64, vectorization_mode="vector_entry_point", length=1.0)
    assert isinstance(native, SwingUpPendulumVectorEnv) and native.num_envs == 64
    assert native.config.length == 1.0
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", length=1.0,
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    assert sync.envs[0].unwrapped.config.length == 1.0
    assert sync.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP


def test_running_the_module_again_does_not_register_again():
    # `python pendulum_env.py` runs the file as __main__ and gym.make imports it once more.
    spec = gym.spec(ENV_ID)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is registered twice
        runpy.run_path(pendulum_env.__file__)
    assert gym.spec(ENV_ID) is spec
    assert spec.vector_entry_point == "pendulum_env:SwingUpPendulumVectorEnv"


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #
@needs_pygame
def test_rgb_array_frame_shows_rod_and_bob():
    frame = render_frame(0.0, 0.0, 2 / 3)
    assert frame.shape == (480, 854, 3) and frame.dtype == np.uint8
    # Pivot at the centre (427, 240), rod 0.5 * 480 * 2/3 = 160 px: upright bob at (427, 80).
    np.testing.assert_array_equal(frame[80, 427], [175, 175, 175])  # the grey bob
    np.testing.assert_array_equal(frame[160, 427], [0, 0, 0])  # the black rod
    np.testing.assert_array_equal(frame[400, 427], [255, 255, 255])  # background
    sideways = render_frame(PI / 2, 0.0, 2 / 3)  # bob to the right: (587, 240)
    np.testing.assert_array_equal(sideways[240, 587], [175, 175, 175])
    assert not np.array_equal(frame, sideways)


@needs_pygame
def test_control_arc_radius_and_arrow_direction():
    off, right, left = (render_frame(0.0, control, 2 / 3) for control in (0.0, 1.0, -1.0))
    # The arc's radius is |control| * 0.2 * 480 = 96 px at full control: below the pivot at row 336.
    assert off[336, 427].max() == 255 and right[336, 427].max() < 64 and left[336, 427].max() < 64
    half = render_frame(0.0, 0.5, 2 / 3)
    assert half[288, 427].max() < 64 and half[336, 427].max() == 255
    # Opposite controls draw the arrow at opposite ends of the arc: for control > 0 it sits at the
    # upper-left end, about (362, 168), pointing clockwise; for control < 0 at the mirror point (491, 168).
    assert right[168, 362].max() < 64 and right[168, 491].min() > 192
    assert left[168, 491].max() < 64 and left[168, 362].min() > 192


@needs_pygame
def test_env_render_shows_the_last_control():
    env = SwingUpPendulumEnv(render_mode="rgb_array")
    env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), render_frame(env.angle, 0.0, 2 / 3))
    env.step(np.array([1.0], np.float32))
    np.testing.assert_array_equal(env.render(), render_frame(env.angle, 1.0, 2 / 3))


@needs_pygame
def test_vector_render_gives_one_frame_per_pendulum():
    vector = SwingUpPendulumVectorEnv(num_envs=2, render_mode="rgb_array")
    vector.reset(seed=0)
    vector.step(np.array([[0.0], [1.0]], np.float32))
    frames = vector.render()
    assert isinstance(frames, tuple) and len(frames) == 2
    np.testing.assert_array_equal(frames[0], render_frame(vector.angle[0], -1.0, 2 / 3))
    np.testing.assert_array_equal(frames[1], render_frame(vector.angle[1], 1.0, 2 / 3))


def test_human_mode_opens_a_window(monkeypatch):
    pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = SwingUpPendulumEnv(render_mode="human")
    env.reset(seed=0)
    assert env.step(np.array([0.5], np.float32))[0].shape == (3,)
    assert env._window is not None and env.render() is None
    env.close()
    assert env._window is None


@pytest.mark.parametrize("mode", ["human", "rgb_array"])
def test_rendering_without_pygame_says_how_to_install_it(monkeypatch, mode):
    monkeypatch.setitem(sys.modules, "pygame", None)  # makes `import pygame` fail
    env = SwingUpPendulumEnv(render_mode=mode)
    with pytest.raises(gym.error.DependencyNotInstalled, match='run "pip install pygame"'):
        env.reset(seed=0)  # human mode draws here already
        env.render()
    assert SwingUpPendulumEnv().reset(seed=0)[0].shape == (3,)  # without rendering, pygame is not needed


@needs_pygame
def test_rgb_array_frames_need_no_display():
    """pygame draws on an off-screen surface: no display, no SDL video driver, nothing printed."""
    code = ("import gymnasium as gym, pendulum_env, pygame; env = gym.make('SwingUpPendulum-v0', "
            "render_mode='rgb_array'); env.reset(seed=0); print(env.render().shape, pygame.display.get_init())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=HEADLESS,
                          timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "(480, 854, 3) False\n", "")


# --------------------------------------------------------------------------- #
# Playing
# --------------------------------------------------------------------------- #
def test_mouse_position_sets_the_control():
    assert [mouse_control(x) for x in (0, 213.5, 427, 854, 1000)] == [1.0, 0.5, 0.0, -1.0, -1.0]


def expected_rewards(actions):
    """The rewards of these actions, starting hanging down at rest as the game does."""
    env = SwingUpPendulumEnv()
    env.reset(options={"angle": PI, "velocity": 0.0})
    return [env.step(np.array([action], np.float32))[1] for action in actions]


@pytest.fixture
def headless_pygame(monkeypatch):
    pygame = pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    return pygame


def test_play_with_the_mouse_at_the_left_edge(headless_pygame, monkeypatch):
    monkeypatch.setattr(headless_pygame.mouse, "get_focused", lambda: True)
    monkeypatch.setattr(headless_pygame.mouse, "get_pos", lambda: (0, 240))  # control +1
    np.testing.assert_array_equal(pendulum_env.play(steps=4), expected_rewards([1.0] * 4))


def test_play_hands_over_to_the_policy_while_the_button_is_held(headless_pygame, monkeypatch):
    seen = []

    def policy(observation):
        seen.append(observation)
        return np.array([0.0], np.float32)  # full control one way: not what the mouse (motor off) would give

    monkeypatch.setattr(headless_pygame.mouse, "get_pressed", lambda *args, **kwargs: (True, False, False))
    rewards = pendulum_env.play(policy, steps=3)
    np.testing.assert_array_equal(rewards, expected_rewards([0.0] * 3))
    assert len(seen) == 3 and seen[0].shape == (3,) and seen[0].dtype == np.float32


@needs_pygame
@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="there a display is taken to be there")
def test_the_installation_check_runs_off_screen_without_a_display_and_says_so():
    done = subprocess.run([sys.executable, "pendulum_env.py", "--steps", "10"], capture_output=True, text=True,
                          cwd=ROOT, env=HEADLESS, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    # The mouse is outside the (off-screen) window: motor off, the pendulum hangs at rest, pi^2 a step.
    assert done.stdout == ("SwingUpPendulum-v0: played 10 frames off-screen (no display), the mouse driving the "
                           f"motor: return {-10 * PI**2:.1f}\n")


def test_a_display_that_cannot_be_opened_is_named_in_one_line(headless_pygame, monkeypatch, capsys):
    # DISPLAY names a display SDL cannot reach: SDL opens no window (pygame.error) or, as the dummy driver
    # here, draws off-screen where nobody sees it.
    monkeypatch.setattr(pendulum_env, "has_display", lambda: True)
    with pytest.raises(SystemExit) as stop:
        pendulum_env.main([])
    assert stop.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == ("pendulum_env.py: error: cannot open the window: SDL could not open a window on this display and "
                    "fell back to drawing off-screen; run it on a desktop (or over ssh -X), or check the installation "
                    "off-screen with --steps N")


def test_speed_benchmark_prints_a_row_per_size():
    done = subprocess.run([sys.executable, "benchmarks/pendulum_speed.py", "--env-counts", "1", "4",
                           "--steps-per-env", "3"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    rows = done.stdout.splitlines()
    assert done.returncode == 0 and len(rows) == 4 and rows[2].split()[0] == "1" and rows[3].split()[0] == "4"
    assert rows[3].endswith("x")


def test_reset_mask_resets_only_the_chosen_pendulums():
    """Gymnasium's vector API: reset(options={"reset_mask": mask}) restarts the masked envs, the rest go on."""
    envs = SwingUpPendulumVectorEnv(num_envs=3)
    before, _ = envs.reset(seed=[10, 11, 12])
    moved, *_ = envs.step(np.full((3, 1), 1.0, np.float32))
    after, _ = envs.reset(seed=[20, 21, 22], options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(after[[0, 2]], moved[[0, 2]])  # untouched
    single = SwingUpPendulumEnv()
    np.testing.assert_array_equal(after[1], single.reset(seed=21)[0])  # pendulum 1 starts as seed 21 does
    assert envs.elapsed_steps.tolist() == [1, 0, 1]
    assert not np.allclose(before, moved)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([True, False])})


def test_render_fps_follows_the_time_step():
    """Videos and the window play in real time: dt = 1/20 s gives 20 frames a second, dt = 0.02 s gives 50."""
    assert SwingUpPendulumEnv().metadata["render_fps"] == 20
    assert SwingUpPendulumEnv(dt=0.02).metadata["render_fps"] == 50
    assert SwingUpPendulumVectorEnv(num_envs=2, dt=0.1).metadata["render_fps"] == 10
    assert gym.make("SwingUpPendulum-v0", dt=0.04).metadata["render_fps"] == 25
    assert SwingUpPendulumEnv.metadata["render_fps"] == 20  # the class's own is left alone
