"""Speed benchmark: our PPO scripts side by side with CleanRL's ppo.py and Stable-Baselines3 (SB3) on a CPU.

    python benchmarks/speed.py --side-by-side all --pairs 3 --cleanrl CLEANRL/cleanrl/ppo.py \\
        --cleanrl-python CLEANRL_VENV/bin/python --sb3-python SB3_VENV/bin/python
    python benchmarks/speed.py --side-by-side sb3-cartpole --pairs 1 --sb3-python SB3_VENV/bin/python --no-floor

Match-ups (`--side-by-side`: their names separated by commas, or all):

  cleanrl       ppo_discrete.py at CleanRL's configuration (CartPole-v1, 4 envs x 128 steps, 4 epochs x 4
                mini-batches, learning rate 2.5e-4, 200k steps) against CleanRL's ppo.py for the same steps
  sb3-cartpole  ppo_discrete.py's CartPole-v1 defaults against SB3 with rl-zoo's CartPole-v1 settings,
                20 deterministic evaluation episodes each
  sb3-pendulum  ppo_continuous_beta.py with README's Pendulum-v1 command against SB3 with rl-zoo's
                Pendulum-v1 settings (gSDE), 10 deterministic evaluation episodes each

The anchors are found only where the command line says: CleanRL's source file (`--cleanrl`), run by the
Python of its own virtual environment (`--cleanrl-python`: CleanRL pins gymnasium 0.29.1), and a Python with
stable-baselines3 installed (`--sb3-python`), which runs benchmarks/sb3_driver.py. A missing one is refused
before anything runs.

Pairs. Pair i runs our script and the anchor with seed i, one after the other, each a fresh process in an
empty temporary folder, timed from launch to exit (start-up, imports and evaluation included); who goes
first alternates from pair to pair. Ours run with OMP_NUM_THREADS=1, the anchors with the environment as it
is. The ratio is the anchor's wall time / ours, per pair; the summary gives its min / median / max over the
pairs, and the same of each side's wall times. One unmeasured `import torch, gymnasium, tyro` warms the file
cache first.

The floor (`--no-floor` leaves it out): for each match-up, what our run cannot go below, timed in this
process and multiplied by the run's counts: its environment steps alone (the same vector environment,
random actions), the bare rollout forwards (one `Agent.get_action` per step, one `Agent.get_value` of the
whole rollout per iteration), and per mini-batch update `ppo_loss` + backward + gradient clipping + a fused
Adam step, eager and, where a C++ compiler is found, with `ppo_loss` through torch.compile. Start-up and
evaluation are not in it.

Measure on a quiet machine: whatever else runs on the cores slows down what is timed, and the benchmark
prints a warning when the load average says the machine is busy.
"""

import importlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import tyro

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root, where the PPO scripts are
CLEANRL_ARGS = ("--env-id", "CartPole-v1", "--num-envs", "4", "--num-steps", "128", "--num-minibatches", "4",
                "--update-epochs", "4", "--learning-rate", "2.5e-4")
# README's Pendulum-v1 command
PENDULUM_ARGS = ("--env-id", "Pendulum-v1", "--total-timesteps", "100000", "--num-envs", "8", "--num-steps", "128",
                 "--num-minibatches", "2", "--gamma", "0.95", "--gae-lambda", "0.9", "--activation", "relu")
RUN_TIMEOUT_S = 3600  # one training process; far above any match-up's
OUR_ENV = os.environ | {"OMP_NUM_THREADS": "1"}
EVAL_LINE = re.compile(r"evaluation over (\d+) episodes: (\S+) \+- (\S+)")  # what our scripts and sb3_driver print


@dataclass
class Args:
    """Our PPO scripts against CleanRL's ppo.py and Stable-Baselines3: whole processes alternated in pairs, and
    the floor of our runs. Run it on an otherwise idle machine."""

    side_by_side: str
    """match-ups to run: cleanrl, sb3-cartpole, sb3-pendulum, separated by commas, or all"""
    pairs: int = 3
    """alternating pairs (ours, anchor) per match-up; pair i uses seed i"""
    cleanrl: str | None = None
    """path of CleanRL's cleanrl/ppo.py (for the cleanrl match-up)"""
    cleanrl_python: str | None = None
    """the Python to run CleanRL's ppo.py with (its own environment: CleanRL pins gymnasium 0.29.1)"""
    sb3_python: str | None = None
    """a Python with stable-baselines3 installed (for sb3-cartpole and sb3-pendulum)"""
    floor: bool = True
    """also time the floor of each of our runs (environment steps and the bare network work, eager and compiled)"""


@dataclass
class Matchup:
    """One of our runs against one anchor's, both whole processes from launch to exit."""

    title: str
    script: str
    argv: list[str]
    anchor: str  # "cleanrl" or "sb3"
    anchor_argv: list[str]
    eval_note: str


MATCHUPS = {
    "cleanrl": Matchup(
        "CartPole-v1 at CleanRL's configuration (4 envs x 128 steps, 4 epochs x 4 mini-batches), 200k steps",
        "ppo_discrete.py", [*CLEANRL_ARGS, "--ent-coef", "0.01", "--total-timesteps", "200000"],
        "cleanrl", ["--env-id", "CartPole-v1", "--total-timesteps", "200000", "--no-track", "--no-capture-video"],
        "CleanRL evaluates nothing; ours evaluates 10 episodes at the end (inside its wall time)"),
    "sb3-cartpole": Matchup(
        "CartPole-v1 to a solved, evaluated agent: our defaults against SB3 with rl-zoo's CartPole settings (100k)",
        "ppo_discrete.py", ["--env-id", "CartPole-v1", "--eval-episodes", "20"],
        "sb3", ["--env-id", "CartPole-v1", "--eval-episodes", "20"],
        "both: 20 deterministic episodes"),
    "sb3-pendulum": Matchup(
        "Pendulum-v1: README's command against SB3 with rl-zoo's Pendulum-v1 settings (gSDE, 100k)",
        "ppo_continuous_beta.py", list(PENDULUM_ARGS),
        "sb3", ["--env-id", "Pendulum-v1", "--eval-episodes", "10"],
        "both: 10 deterministic episodes"),
}


def fail(message: str):
    """Stop on bad input with one line naming the problem and the fix (exit status 2)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def say(text: str = ""):
    print(text, flush=True)


# ---------------------------------------------------------------- the pairs: whole processes

@dataclass
class Run:
    """One whole process: whether it succeeded, its wall time and the evaluation mean it printed."""

    ok: bool
    wall: float
    eval_mean: float | None = None
    problem: str = ""


def timed_process(command: list[str], env: dict) -> Run:
    """`command` in a fresh temporary folder, timed from launch to exit."""
    with tempfile.TemporaryDirectory(prefix="speed_") as folder:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        return Run(False, wall, problem=f"exit {done.returncode}: {tail}")
    match = EVAL_LINE.search(done.stdout)
    return Run(True, wall, float(match.group(2)) if match else None)


def our_command(matchup: Matchup, seed: int) -> list[str]:
    return [sys.executable, os.path.join(HERE, matchup.script), *matchup.argv, "--seed", str(seed)]


def anchor_command(matchup: Matchup, args: Args, seed: int) -> list[str]:
    """The anchor's command line for `seed`; refuses a missing --cleanrl, --cleanrl-python or --sb3-python."""
    if matchup.anchor == "cleanrl":
        if not (args.cleanrl and args.cleanrl_python):
            fail("--side-by-side cleanrl needs --cleanrl PATH/cleanrl/ppo.py and --cleanrl-python (CleanRL's own "
                 "Python: it pins gymnasium 0.29.1)")
        return [args.cleanrl_python, os.path.abspath(args.cleanrl), *matchup.anchor_argv, "--seed", str(seed)]
    if not args.sb3_python:
        fail("--side-by-side sb3-cartpole and sb3-pendulum need --sb3-python, a Python with stable-baselines3 "
             "installed")
    driver = os.path.join(HERE, "benchmarks", "sb3_driver.py")
    return [args.sb3_python, driver, *matchup.anchor_argv, "--seed", str(seed)]


def run_pairs(matchup: Matchup, args: Args) -> dict:
    """`args.pairs` pairs, who goes first alternating; the runs of each side and the ratio of each pair
    in which both succeeded."""
    ours, anchors, ratios = [], [], []
    for pair in range(1, args.pairs + 1):
        jobs = [("ours", our_command(matchup, pair), OUR_ENV),
                ("anchor", anchor_command(matchup, args, pair), dict(os.environ))]
        if pair % 2 == 0:
            jobs.reverse()
        results = {who: timed_process(command, env) for who, command, env in jobs}
        for who in ("ours", "anchor"):
            run = results[who]
            shown = f"{run.wall:6.1f} s, eval {run.eval_mean}" if run.ok else f"FAILED: {run.problem}"
            say(f"  pair {pair} {who:>6}: {shown}")
        ours.append(results["ours"])
        anchors.append(results["anchor"])
        if results["ours"].ok and results["anchor"].ok:
            ratios.append(results["anchor"].wall / results["ours"].wall)
    return {"ours": ours, "anchor": anchors, "ratios": ratios}


def spread(values: list[float], form: str) -> str:
    """min / median / max of `values`, each written with the format string `form`."""
    if not values:
        return "n/a"
    return " / ".join(form.format(value) for value in (min(values), statistics.median(values), max(values)))


def summary_line(name: str, result: dict) -> str:
    """A match-up's line of the summary: ratios, both sides' wall times, and the evaluations."""
    ours = [run.wall for run in result["ours"] if run.ok]
    anchors = [run.wall for run in result["anchor"] if run.ok]
    return (f"  {name:<13} ratio {spread(result['ratios'], '{:.2f}x'):<24} ours {spread(ours, '{:.1f} s'):<24} "
            f"anchor {spread(anchors, '{:.1f} s'):<24} evals ours {[run.eval_mean for run in result['ours']]} "
            f"anchor {[run.eval_mean for run in result['anchor']]}")


# ---------------------------------------------------------------- the floor of our run

def seconds_per_call(function, calls: int) -> float:
    """Median over 3 timings of `calls` calls, per call, after one warm-up call."""
    function()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        timings.append((time.perf_counter() - start) / calls)
    return statistics.median(timings)


def floor_of(script: str, argv: list[str], compiled: bool = True) -> dict:
    """Seconds that `python script argv` spends at least in its environment steps, its rollout forwards and
    its updates (eager, and compiled where `compiled` and a C++ compiler is found), with the counts they come
    from. Uses only the script's Args, make_env, Agent and ppo_loss."""
    import torch

    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    module = importlib.import_module(script.removesuffix(".py"))
    run = tyro.cli(module.Args, args=argv)
    torch.set_num_threads(run.torch_threads)
    batch = run.num_envs * run.num_steps
    iterations = run.total_timesteps // batch
    minibatch = batch // run.num_minibatches
    steps = iterations * run.num_steps
    updates = iterations * run.update_epochs * run.num_minibatches

    envs = module.make_env(run.env_id, run.num_envs, run.vectorization_mode, run.env_kwargs)
    envs.reset(seed=0)
    actions = [envs.action_space.sample() for _ in range(64)]
    env_calls = min(steps, 5_000)
    start = time.perf_counter()
    for i in range(env_calls):
        envs.step(actions[i % 64])
    env_seconds = (time.perf_counter() - start) / env_calls * steps
    obs_dim = envs.single_observation_space.shape[0]
    space = envs.single_action_space
    envs.close()

    discrete = hasattr(space, "n")
    width = space.n if discrete else space.shape[0]
    agent = module.Agent(obs_dim, width, run.hidden_size, run.activation)
    step_obs = torch.randn(run.num_envs, obs_dim)
    rollout_obs = torch.randn(batch, obs_dim)

    def rollout_forward():
        with torch.inference_mode():
            agent.get_action(step_obs)

    def rollout_values():
        with torch.inference_mode():
            agent.get_value(rollout_obs)

    forwards = seconds_per_call(rollout_forward, 500) * steps + seconds_per_call(rollout_values, 50) * iterations
    sampled = torch.randint(0, width, (minibatch,)) if discrete else torch.rand(minibatch, width) * 0.98 + 0.01
    minibatch_tensors = (torch.randn(minibatch, obs_dim), sampled, torch.zeros(minibatch), torch.zeros(minibatch),
                         torch.randn(minibatch), torch.randn(minibatch))
    optimizer = torch.optim.Adam(agent.parameters(), lr=run.learning_rate, eps=1e-5, fused=True)
    result = {"steps": steps, "updates": updates, "env": env_seconds, "rollout forward": forwards}
    losses = {"eager": module.ppo_loss}
    if compiled and shutil.which(os.environ.get("CXX", "g++")):
        start = time.perf_counter()
        losses["compiled"] = torch.compile(module.ppo_loss)
        losses["compiled"](agent, *minibatch_tensors, run)[0].backward()
        result["compile seconds"] = time.perf_counter() - start
    for label, loss_function in losses.items():
        def update():
            loss = loss_function(agent, *minibatch_tensors, run)[0]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(agent.parameters(), run.max_grad_norm, foreach=True)
            optimizer.step()

        result[f"updates, {label}"] = seconds_per_call(update, 300) * updates
    return result


def show_floor(floor: dict, our_walls: list[float]):
    eager = floor["env"] + floor["rollout forward"] + floor["updates, eager"]
    line = (f"  floor of our run ({floor['steps']:,} env steps, {floor['updates']:,} updates): environment "
            f"{floor['env']:.1f} s + rollout forwards {floor['rollout forward']:.1f} s + updates "
            f"{floor['updates, eager']:.1f} s eager = {eager:.1f} s")
    if "updates, compiled" in floor:
        compiled = eager - floor["updates, eager"] + floor["updates, compiled"]
        line += (f"; updates compiled {floor['updates, compiled']:.1f} s (+ {floor['compile seconds']:.0f} s to "
                 f"compile) = {compiled:.1f} s")
    say(line)
    if our_walls:
        say(f"  our median run is {statistics.median(our_walls) / eager:.2f}x the eager floor "
            "(the rest: start-up, evaluation, logging, the loop itself)")


# ---------------------------------------------------------------- the command

def machine_report():
    cores = os.cpu_count() or 1
    say(f"python {platform.python_version()} on {platform.machine()}, {cores} CPU cores; our runs use "
        "OMP_NUM_THREADS=1, and every process runs alone, one after the other")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        say(f"warning: the load average is {load:.2f} on {cores} cores: something else is running, "
            "so the timings will be slower than on a quiet machine")


def run_side_by_side(args: Args) -> dict[str, dict]:
    """Every match-up of `args.side_by_side`: its pairs, then its floor; a summary at the end."""
    names = list(MATCHUPS) if args.side_by_side == "all" else [n.strip() for n in args.side_by_side.split(",")]
    if any(name not in MATCHUPS for name in names) or args.pairs <= 0:
        fail(f"--side-by-side {args.side_by_side}: choose from {', '.join(MATCHUPS)} or all, with --pairs >= 1")
    for name in names:
        anchor_command(MATCHUPS[name], args, 1)  # refuse a missing anchor before anything runs
    machine_report()
    # unmeasured: a first start-up warms the file cache for the measured ones
    subprocess.run([sys.executable, "-c", "import torch, gymnasium, tyro, torch.utils.tensorboard"],
                   env=OUR_ENV, capture_output=True)
    results = {}
    for name in names:
        matchup = MATCHUPS[name]
        say(f"\n== {name}: {matchup.title} ==")
        say(f"  ours:   python {matchup.script} {' '.join(matchup.argv)} --seed S")
        say(f"  anchor: {' '.join(anchor_command(matchup, args, 0)[:-2])} --seed S ({matchup.eval_note})")
        results[name] = run_pairs(matchup, args)
        if args.floor:
            show_floor(floor_of(matchup.script, matchup.argv), [run.wall for run in results[name]["ours"] if run.ok])
    say("\n== side by side: anchor wall time / ours, per pair (min / median / max) ==")
    for name, result in results.items():
        say(summary_line(name, result))
    say("(target: >= 3x; our runs use 1 torch thread as their default, the anchors their own defaults)")
    return results


if __name__ == "__main__":
    run_side_by_side(tyro.cli(Args))
