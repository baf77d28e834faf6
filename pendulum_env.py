"""The swing-up pendulum: a Gymnasium environment, single and natively vectorized.

A motor turns a rigid pendulum about its pivot. The angle is 0 when the pendulum
points straight up; starting anywhere, the agent must swing it up and hold it
there. The motor alone is too weak to lift the pendulum, so it has to swing.
Semi-implicit Euler steps of dt seconds move it:

    observation  [cos(angle), sin(angle), velocity / max_speed], float32 in [-1, 1]
    action       u in [0, 1]; motor control = clip(2u - 1, -1, 1)
    reward       -(angle_weight * wrap(angle)^2 + velocity_weight * velocity^2
                   + control_weight * control^2), from the state before the step
    episode      never terminates; truncated after round(timeout / dt) steps

`SwingUpPendulumEnv` is one pendulum; `SwingUpPendulumVectorEnv` steps many at
once as numpy arrays. Both call the same pure functions below, so they agree
number for number; the physics are keyword arguments (`PendulumConfig`).
Importing this module registers both as `SwingUpPendulum-v0`:

    gym.make("SwingUpPendulum-v0", render_mode="rgb_array")  # frames drawn with pygame
    gym.make_vec("SwingUpPendulum-v0", num_envs=64, vectorization_mode="vector_entry_point")

`python pendulum_env.py` opens a window where the mouse drives the motor
(`--steps N` runs N frames, off-screen where there is no display, to check the
installation). `play(policy)` hands the motor to any function of the observation
while the mouse button is held; `python ppo_continuous_beta.py --eval-model PATH --play`
uses it to let a trained agent drive.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import os
import sys
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

ENV_ID = "SwingUpPendulum-v0"
WINDOW_WIDTH, WINDOW_HEIGHT = 854, 480  # the window, and the size of rgb_array frames
RENDER_FPS = 20


# --------------------------------------------------------------------------- #
# Parameters
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class PendulumConfig:
    """The pendulum's physics and reward weights: the keyword arguments of both environments."""

    length: float = 2.0 / 3.0
    """pendulum length"""
    max_speed: float = 8.0
    """angular speed limit (rad/s)"""
    motor: float = 6.0
    """angular acceleration of the motor at full control (rad/s^2)"""
    gravitation: float = 10.0
    """gravitational acceleration"""
    dt: float = 1.0 / 20.0
    """time step (s)"""
    timeout: float = 10.0
    """episode length (s): truncated after round(timeout / dt) steps"""
    angle_weight: float = 1.0
    """cost of the squared angle from upright"""
    velocity_weight: float = 0.1
    """cost of the squared angular velocity"""
    control_weight: float = 0.0001
    """cost of the squared motor control"""

    def __post_init__(self):
        must_be_positive = {"length", "max_speed", "dt", "timeout"}  # the others may be 0
        for field in dataclasses.fields(self):
            value, positive = getattr(self, field.name), field.name in must_be_positive
            is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not (is_number and math.isfinite(value) and (value > 0 if positive else value >= 0)):
                raise ValueError(
                    f"{field.name}={value!r} is invalid: pass a finite number {'> 0' if positive else '>= 0'} "
                    f"(the default is {field.name}={field.default!r})"
                )
        if self.episode_steps < 1:
            raise ValueError(f"timeout={self.timeout!r} is shorter than one time step dt={self.dt!r}: "
                             "pass timeout >= dt")

    @property
    def episode_steps(self) -> int:
        """Steps per episode; round() because timeout / dt is rarely exact in floating point."""
        return round(self.timeout / self.dt)


def make_observation_space() -> spaces.Box:
    return spaces.Box(-1.0, 1.0, (3,), np.float32)


def make_action_space() -> spaces.Box:
    return spaces.Box(0.0, 1.0, (1,), np.float32)


# --------------------------------------------------------------------------- #
# Physics, observation and reward: pure functions of floats or numpy arrays
# --------------------------------------------------------------------------- #
def action_to_control(action):
    """Map the agent's action u in [0, 1] to the motor control 2u - 1 in [-1, 1]; clip the rest."""
    return np.clip(2.0 * np.asarray(action, dtype=np.float64) - 1.0, -1.0, 1.0)


def wrap_angle(angle):
    """The same angle in [-pi, pi): the signed distance from upright."""
    return np.mod(angle + np.pi, 2.0 * np.pi) - np.pi


def pendulum_step(angle, velocity, control, config: PendulumConfig):
    """Advance one time step with semi-implicit Euler: the new velocity moves the angle."""
    acceleration = config.motor * control + config.gravitation * np.sin(angle) / config.length
    velocity = np.clip(velocity + acceleration * config.dt, -config.max_speed, config.max_speed)
    angle = angle + velocity * config.dt
    return angle, velocity


def pendulum_reward(angle, velocity, control, config: PendulumConfig):
    """Reward for a step taken from (angle, velocity) with this control: 0 is upright, at rest, motor off."""
    # x * x, not x ** 2: pow() may round differently for scalars and arrays, and the
    # single and vector envs must agree to the last bit.
    angle_error = wrap_angle(angle)
    return -(
        config.angle_weight * angle_error * angle_error
        + config.velocity_weight * velocity * velocity
        + config.control_weight * control * control
    )


def observe(angle, velocity, config: PendulumConfig) -> np.ndarray:
    """Observation: cos and sin avoid the jump of the angle at +-pi; velocity is scaled to [-1, 1]."""
    return np.stack(
        [np.cos(angle), np.sin(angle), velocity / config.max_speed], axis=-1
    ).astype(np.float32)


def starting_states(generators, config: PendulumConfig, options: dict | None):
    """Starting angles and velocities, one pendulum per generator, as float64 arrays.

    Each pendulum draws from the whole state space with its own generator, so a
    vector env and single envs seeded alike start alike. Both values are drawn
    even when `options` overrides them, so the generators advance the same way
    whatever the options.
    """
    drawn = [
        (rng.uniform(-np.pi, np.pi), rng.uniform(-config.max_speed, config.max_speed))
        for rng in generators
    ]
    angle, velocity = np.array(drawn, dtype=np.float64).reshape(len(generators), 2).T
    options = options or {}
    unknown = set(options) - {"angle", "velocity"}
    if unknown:
        raise ValueError(f"unknown reset options {sorted(unknown)}: use 'angle' and/or 'velocity'")
    angle = np.broadcast_to(np.asarray(options.get("angle", angle), np.float64), angle.shape)
    velocity = np.broadcast_to(np.asarray(options.get("velocity", velocity), np.float64), velocity.shape)
    if np.any(np.abs(velocity) > config.max_speed):
        raise ValueError(
            f"reset option velocity={options['velocity']!r} is beyond max_speed={config.max_speed}: "
            "pass a velocity within [-max_speed, max_speed]"
        )
    return angle.copy(), velocity.copy()


# --------------------------------------------------------------------------- #
# Drawing with pygame, on the window or on an off-screen surface
# --------------------------------------------------------------------------- #
def _import_pygame():
    try:
        import pygame.gfxdraw
    except ImportError as error:
        raise gym.error.DependencyNotInstalled(
            'pygame is not installed: run "pip install pygame" to render the pendulum or to play'
        ) from error
    return pygame


def draw(surface, angle: float, control: float, length: float):
    """Draw the pendulum and its motor control on a pygame surface (the window, or a frame drawn off-screen).

    The rod and bob hang from the centre; the control is an arc round the pivot,
    open at the top, whose radius (and so length) grows with |control| and whose
    arrow points the way the motor pushes (clockwise on screen for control > 0).
    """
    pygame = _import_pygame()
    width, height = surface.get_size()
    pivot = pygame.Vector2(width - 1, height - 1) / 2  # the centre: pygame puts pixel centres on whole numbers
    bob = pivot + pygame.Vector2(0, -0.5 * height * length).rotate_rad(angle)  # screen y points down
    rod = (bob - pivot).normalize().rotate(90) * 2  # half the rod's width, across it
    surface.fill((255, 255, 255))
    _fill_polygon(surface, [pivot + rod, bob + rod, bob - rod, pivot - rod])
    pygame.draw.circle(surface, (0, 0, 0), pivot, 2)  # the rod's round end
    bob_x, bob_y, bob_radius = round(bob.x), round(bob.y), round(0.025 * height)
    pygame.gfxdraw.filled_circle(surface, bob_x, bob_y, bob_radius, (175, 175, 175))
    pygame.gfxdraw.aacircle(surface, bob_x, bob_y, bob_radius, (0, 0, 0))

    radius = abs(control) * 0.2 * height
    if radius >= 1:
        side = 1 if control > 0 else -1  # the picture for control < 0 is the mirror image
        # The arc: a thin band round the circle from -45 to 225 degrees (screen angles, y down), all but
        # the quarter at the top.
        degrees = np.linspace(-45, 225, 91)
        outer = [pivot + pygame.Vector2(radius + 0.5, 0).rotate(d) for d in degrees]
        inner = [pivot + pygame.Vector2(radius - 0.5, 0).rotate(d) for d in degrees[::-1]]
        _fill_polygon(surface, outer + inner)
        # The arrow sits at the arc's upper end and points along the circle, into the gap.
        end = pivot + pygame.Vector2(-side, -1) * radius / math.sqrt(2)
        ahead, across = pygame.Vector2(side, -1) * 14 / math.sqrt(2), pygame.Vector2(1, side) * 6 / math.sqrt(2)
        _fill_polygon(surface, [end + ahead, end + across, end - across])


def _fill_polygon(surface, points):
    pygame = _import_pygame()
    pygame.draw.polygon(surface, (0, 0, 0), points)
    pygame.draw.aalines(surface, (0, 0, 0), True, points)  # smooth edges


def render_frame(angle: float, control: float, length: float) -> np.ndarray:
    """The picture `draw` makes, as a (480, 854, 3) uint8 RGB array; drawn off-screen, it needs no display."""
    pygame = _import_pygame()
    surface = pygame.Surface((WINDOW_WIDTH, WINDOW_HEIGHT))
    draw(surface, angle, control, length)
    return pygame.surfarray.array3d(surface).transpose(1, 0, 2)  # pygame indexes (x, y)


def _check_render_mode(render_mode, metadata):
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(f"render_mode={render_mode!r} is not supported: "
                         f"pass one of {metadata['render_modes']} or None")


# --------------------------------------------------------------------------- #
# The environments
# --------------------------------------------------------------------------- #
class SwingUpPendulumEnv(gym.Env):
    """One swing-up pendulum. Keyword arguments: `render_mode` and the fields of `PendulumConfig`.

    The float64 state is public for inspection: `angle`, `velocity`, the last
    `control` and `elapsed_steps` of the episode.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": RENDER_FPS}

    def __init__(self, render_mode: str | None = None, **config):
        self.config = PendulumConfig(**config)
        _check_render_mode(render_mode, self.metadata)
        self.metadata = {**self.metadata, "render_fps": 1.0 / self.config.dt}  # videos and the window in real time
        self.render_mode = render_mode
        self.observation_space = make_observation_space()
        self.action_space = make_action_space()
        self.angle, self.velocity, self.control, self.elapsed_steps = math.pi, 0.0, 0.0, 0
        self._window = None  # pygame display and clock, opened by the first human render

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        angle, velocity = starting_states([self.np_random], self.config, options)
        self.angle, self.velocity = float(angle[0]), float(velocity[0])
        self.control, self.elapsed_steps = 0.0, 0
        if self.render_mode == "human":
            self.render()
        return observe(self.angle, self.velocity, self.config), {}

    def step(self, action):
        control = action_to_control(action).item()
        reward = float(pendulum_reward(self.angle, self.velocity, control, self.config))
        angle, velocity = pendulum_step(self.angle, self.velocity, control, self.config)
        self.angle, self.velocity, self.control = float(angle), float(velocity), control
        self.elapsed_steps += 1
        truncated = self.elapsed_steps >= self.config.episode_steps
        if self.render_mode == "human":
            self.render()
        return observe(self.angle, self.velocity, self.config), reward, False, truncated, {}

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(f'render() needs a render_mode: e.g. gym.make("{ENV_ID}", render_mode="rgb_array")')
            return None
        if self.render_mode == "rgb_array":
            return render_frame(self.angle, self.control, self.config.length)
        pygame = _import_pygame()
        if self._window is None:
            pygame.display.init()  # the display alone: pygame.init() would also start audio
            pygame.display.set_caption("Swing-up pendulum")
            self._window = (pygame.display.set_mode((WINDOW_WIDTH, WINDOW_HEIGHT)), pygame.time.Clock())
        screen, clock = self._window
        draw(screen, self.angle, self.control, self.config.length)
        pygame.event.pump()
        pygame.display.flip()
        clock.tick(self.metadata["render_fps"])
        return None

    def close(self):
        if self._window is not None:
            pygame = _import_pygame()
            pygame.display.quit()
            self._window = None


class SwingUpPendulumVectorEnv(VectorEnv):
    """`num_envs` swing-up pendulums stepped together as numpy arrays, following Gymnasium's vector API.

    `autoreset_mode` is `AutoresetMode.NEXT_STEP` (Gymnasium's default) or
    `AutoresetMode.SAME_STEP` (or their string values); in same-step mode the
    step that ends an episode returns the reset observation and puts the last
    one in `infos["final_obs"]`, laid out as `SyncVectorEnv` does.
    Other keyword arguments: `render_mode` ("rgb_array") and the fields of `PendulumConfig`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": RENDER_FPS}

    def __init__(self, num_envs: int = 1, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 render_mode: str | None = None, **config):
        self.config = PendulumConfig(**config)
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: pass a whole number >= 1")
        self.autoreset_mode = AutoresetMode(autoreset_mode)  # Gymnasium refuses an unknown mode
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode=DISABLED is not supported: pass AutoresetMode.NEXT_STEP or .SAME_STEP")
        _check_render_mode(render_mode, self.metadata)
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode, "render_fps": 1.0 / self.config.dt}
        self.single_observation_space = make_observation_space()
        self.single_action_space = make_action_space()
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)

        self.angle = np.full(self.num_envs, math.pi)
        self.velocity = np.zeros(self.num_envs)
        self.control = np.zeros(self.num_envs)
        self.elapsed_steps = np.zeros(self.num_envs, dtype=np.int64)
        self._generators = [None] * self.num_envs  # one per pendulum, as for single envs
        self._ended = np.zeros(self.num_envs, dtype=bool)  # next-step mode: reset at the next step

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset every pendulum, or with `options={"reset_mask": mask}` (Gymnasium's vector API) only those
        where `mask` is True, the others going on as they were. An int seed gives pendulum i the seed seed + i,
        as SyncVectorEnv does."""
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(self.num_envs, dtype=bool)
        elif not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (self.num_envs,)
                  and mask.any()):
            raise ValueError(f"options['reset_mask'] must be a numpy bool array of shape ({self.num_envs},) with "
                             f"at least one True, got {mask!r}")
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for num_envs={self.num_envs}: pass one seed per env")
        chosen = np.flatnonzero(mask)
        for i in chosen:
            if seeds[i] is not None or self._generators[i] is None:
                self._generators[i], _ = seeding.np_random(seeds[i])
        self._restart(mask, options)
        return observe(self.angle, self.velocity, self.config), {}

    def step(self, actions):
        control = action_to_control(actions).reshape(self.num_envs)
        reward = pendulum_reward(self.angle, self.velocity, control, self.config)
        self.angle, self.velocity = pendulum_step(self.angle, self.velocity, control, self.config)
        self.control = control
        self.elapsed_steps += 1
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = self.elapsed_steps >= self.config.episode_steps

        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._ended.any():
            # Pendulums whose episode ended at the last step only restart now: the physics just applied is discarded.
            reward[self._ended], truncated[self._ended] = 0.0, False
            self._restart(self._ended)
        self._ended = truncated.copy()
        observation, infos = observe(self.angle, self.velocity, self.config), {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP and truncated.any():
            infos = _same_step_infos(observation, truncated)
            self._restart(truncated)
            observation = observe(self.angle, self.velocity, self.config)
        return observation, reward, terminated, truncated, infos

    def _restart(self, which: np.ndarray, options: dict | None = None):
        """Start new episodes for the chosen pendulums, each drawing from its own generator."""
        indices = np.flatnonzero(which)
        generators = [self._generators[i] for i in indices]
        self.angle[indices], self.velocity[indices] = starting_states(generators, self.config, options)
        self.control[indices] = 0.0
        self.elapsed_steps[indices] = 0
        self._ended[indices] = False

    def render(self):
        """One frame per pendulum (a tuple, as Gymnasium's vector envs return)."""
        if self.render_mode is None:
            gym.logger.warn('render() needs render_mode="rgb_array"')
            return None
        return tuple(
            render_frame(angle, control, self.config.length) for angle, control in zip(self.angle, self.control)
        )


def _same_step_infos(observation: np.ndarray, ended: np.ndarray) -> dict:
    """The infos SyncVectorEnv gives in same-step mode when episodes end.

    "final_obs" is an object array holding each ended pendulum's last observation
    (None elsewhere), "final_info" its info dict (empty here), and "_final_obs",
    "_final_info" the boolean masks of which pendulums ended.
    """
    final_obs = np.full(len(ended), None, dtype=object)
    for i in np.flatnonzero(ended):
        final_obs[i] = observation[i]
    return {"final_obs": final_obs, "_final_obs": ended.copy(), "final_info": {}, "_final_info": ended.copy()}


if ENV_ID not in gym.registry:  # importing the module twice (or running it as a script) must not re-register
    gym.register(
        id=ENV_ID,
        entry_point="pendulum_env:SwingUpPendulumEnv",
        vector_entry_point="pendulum_env:SwingUpPendulumVectorEnv",
        max_episode_steps=None,  # the env truncates by itself; a TimeLimit wrapper would duplicate that
    )


# --------------------------------------------------------------------------- #
# Playing: the mouse, or a trained agent, drives the motor
# --------------------------------------------------------------------------- #
OFF_SCREEN_DRIVERS = ("dummy", "offscreen")  # SDL video drivers that draw where nobody sees


def has_display() -> bool:
    """Whether a window can be seen: SDL would otherwise fall back to drawing off-screen, silently."""
    if os.environ.get("SDL_VIDEODRIVER") in OFF_SCREEN_DRIVERS:
        return False
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def mouse_control(mouse_x: float, width: int = WINDOW_WIDTH) -> float:
    """Motor control from the mouse: +1 at the window's left edge, 0 in the middle, -1 at the right edge."""
    return float(np.clip(1.0 - mouse_x / (width / 2), -1.0, 1.0))


def play(policy=None, steps: int | None = None, **config) -> np.ndarray:
    """Open a window and let a person drive the motor with the mouse's horizontal position.

    With `policy`, a function from an observation to an action in [0, 1], the
    policy drives while the left mouse button is held. Keyword arguments are the
    pendulum's physics (`PendulumConfig`). The pendulum starts hanging down at rest
    and runs until the window closes (or for `steps` frames); the episode time limit
    is ignored. Returns the reward of each frame played. Where no window can be seen
    it raises RuntimeError (or SDL's pygame.error, a RuntimeError too), unless `steps`
    is given: a fixed number of frames may be drawn off-screen, as a check.
    """
    if steps is None and not has_display():
        driver = os.environ.get("SDL_VIDEODRIVER")
        why = f"SDL_VIDEODRIVER={driver} draws off-screen" if driver in OFF_SCREEN_DRIVERS else None
        raise RuntimeError(f"there is no display ({why or 'neither DISPLAY nor WAYLAND_DISPLAY is set'})")
    pygame = _import_pygame()
    env = SwingUpPendulumEnv(render_mode="human", **config)
    try:
        observation, _ = env.reset(options={"angle": math.pi, "velocity": 0.0})  # opens the window
        if steps is None and pygame.display.get_driver() in OFF_SCREEN_DRIVERS:
            raise RuntimeError("SDL could not open a window on this display and fell back to drawing off-screen")
        rewards = []
        while steps is None or len(rewards) < steps:
            if any(event.type == pygame.QUIT for event in pygame.event.get()):
                break
            if policy is not None and pygame.mouse.get_pressed()[0]:
                action = policy(observation)
            else:
                # Until the mouse is over the window its position means nothing: motor off.
                control = mouse_control(pygame.mouse.get_pos()[0]) if pygame.mouse.get_focused() else 0.0
                action = np.array([(control + 1.0) / 2.0], dtype=np.float32)
            observation, reward, *_ = env.step(action)
            rewards.append(reward)
    finally:
        env.close()
    return np.array(rewards)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Swing-up pendulum: the mouse's horizontal position drives the motor "
        "(left of centre pushes clockwise, right of centre anticlockwise)."
    )
    parser.add_argument("--steps", type=int, metavar="N",
                        help="quit after N frames, drawn off-screen where there is no display: a check that "
                        "everything is installed (default: play until the window closes)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps {args.steps}: pass a number of frames >= 1")
    where = "" if has_display() else " off-screen (no display)"
    if args.steps is not None and not has_display():
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # SDL would otherwise probe for a display, noisily
    try:
        rewards = play(steps=args.steps)
    except gym.error.DependencyNotInstalled as error:
        exit_with_error(str(error))
    except RuntimeError as error:  # pygame.error is one too: SDL could not open the window
        exit_with_error(f"cannot open the window: {error}; run it on a desktop (or over ssh -X), or check the "
                        "installation off-screen with --steps N")
    print(f"{ENV_ID}: played {len(rewards)} frames{where}, the mouse driving the motor: return {rewards.sum():.1f}")


def exit_with_error(message: str):
    """Stop with a one-line message and exit status 2, as argparse does for bad arguments."""
    print(f"pendulum_env.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
