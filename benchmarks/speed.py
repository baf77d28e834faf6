"""Speed benchmark: how fast the PPO scripts reach a solved task on a CPU, and where their time goes.

    python benchmarks/speed.py                        # everything below: several minutes (some 15-25 with 5 seeds)
    python benchmarks/speed.py --rows A,B,E --runs 3  # some rows, seeds 1..3
    python benchmarks/speed.py --breakdown            # only the breakdown of one training run
    python benchmarks/speed.py --micro                # only the micro-benchmarks
    python benchmarks/speed.py --quick                # smoke check: tiny runs, 1 seed (its figures mean nothing)

Measure on a quiet machine: NOTHING ELSE MAY RUN while it measures (no other training, test suite,
build, video call, ...). Every training here runs alone, one after the other, with OMP_NUM_THREADS=1,
so any other process on the cores slows down exactly what is being timed. The benchmark prints a
warning when the load average says the machine is busy.

Rows. Each training is a fresh process `python SCRIPT ARGS --seed S` in an empty temporary folder
(so runs/ does not pile up), timed from launch to exit: interpreter start-up and the imports of torch
and gymnasium count. Before the first row one unmeasured `import torch, gymnasium, tyro` warms the
file cache. Each row runs seeds 1..N (`--runs N`, default 5) and gives every figure as
min / median / max over the seeds. "met?" compares the MEDIAN with the target; a count of solved
seeds has to reach every seed.

  A  `ppo_discrete.py --env-id CartPole-v1` (defaults): whole-process wall time, the deterministic
     evaluation mean (10 episodes), and how many seeds reached eval >= 475.
     Target: <= 15 s wall, 5 of 5 solved.
  B  `ppo_discrete.py` at CleanRL's configuration (`--num-envs 4 --num-steps 128 --num-minibatches 4
     --update-epochs 4 --learning-rate 2.5e-4`) for `--total-timesteps T` (`--b-total-timesteps`,
     default 100000; CleanRL's own run is 500000): the training steps/s of summary.json (`sps`,
     which leaves out start-up and evaluation) and total steps / whole-process wall.
     Target: >= 12,000 training steps/s.
  C  `ppo_continuous_beta.py` (defaults: SwingUpPendulum-v0) with `--eval-episodes 100`:
     whole-process wall and evaluation mean. Target: within 10% of -111 (>= -122.1) in <= 180 s.
  D  `ppo_continuous_beta.py` with the project's Pendulum-v1 command (`PENDULUM_ARGS` below):
     whole-process wall, evaluation mean, seeds with eval >= -200. Target: <= 30 s wall.
  E  `ppo_continuous_beta.py --num-envs 4` against `--num-envs 64`, both with the other defaults,
     `--total-timesteps 131072` (`--e-total-timesteps`) and `--eval-episodes 1`: training steps/s of
     each from summary.json, and their ratio, paired per seed (each seed runs both, one after the
     other). Target: 64 environments >= 4x the steps/s of 4.

Breakdown (`--breakdown`). One training of `ppo_discrete.py` (CartPole-v1 defaults) and one of
`ppo_continuous_beta.py` (defaults, shorter `--total-timesteps`) run inside this process, their
functions wrapped with timers at run time (the scripts are not modified), and train()'s wall time is
split into: environment stepping during the rollout (`step` of the vector env that `make_env`
returns), policy forward passes under inference mode (`Agent.get_action` / `get_value`:
the rollout's, the truncation bootstrap's and the values of the whole rollout before GAE), GAE
(`compute_gae`), the update's forward (`evaluate_actions`), its losses
(`clipped_surrogate_loss`, `value_loss`), backward (`torch.Tensor.backward`), the optimizer
(`Adam.step`, `Adam.zero_grad`, `nn.utils.clip_grad_norm_`), logging (the `SummaryWriter` the script
uses: creation, `add_scalar`, `add_text`, `add_image`, `close`, and the policy picture's
`policy_heatmap` / `write_png`), evaluation (`evaluate`, its environment steps included) and
everything else (train()'s wall time minus the sum). Only the outermost timed call counts, so nothing
is counted twice. The import times come from a fresh process (`import torch, gymnasium, tyro`, then
the script's module).

Micro-benchmarks (`--micro`): median time per call of one rollout step's policy forward, one Adam
mini-batch update (256 samples), each with 1 torch thread and with torch's default; Categorical
sampling against the script's Gumbel-max; Beta sampling with `validate_args` on and off.

With none of `--rows`, `--breakdown`, `--micro` it runs all three; with any of them, only those.
"""

import contextlib
import functools
import glob
import importlib
import io
import json
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
from typing import Callable

import tyro

# Row D's arguments to ppo_continuous_beta.py: the project's documented Pendulum-v1 command.
PENDULUM_ARGS = ("--env-id", "Pendulum-v1", "--total-timesteps", "100000", "--num-envs", "8", "--num-steps", "128",
                 "--num-minibatches", "2", "--gamma", "0.95", "--gae-lambda", "0.9", "--activation", "relu")

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root, where the PPO scripts are
ALL_ROWS = "ABCDE"
CLEANRL_ARGS = ("--env-id", "CartPole-v1", "--num-envs", "4", "--num-steps", "128", "--num-minibatches", "4",
                "--update-epochs", "4", "--learning-rate", "2.5e-4")
QUICK_TIMESTEPS = {"A": 2048, "B": 2048, "C": 2048, "D": 2048, "E": 4096}
QUICK_BREAKDOWN_TIMESTEPS = 2048
RUN_TIMEOUT_S = 3600  # one training process; far above any row's target
CHILD_ENV = os.environ | {"OMP_NUM_THREADS": "1"}
EVAL_LINE = re.compile(r"evaluation over (\d+) episodes: (\S+) \+- (\S+)")


@dataclass
class Args:
    """Speed benchmark of the PPO scripts: whole-process wall times, steps/s, a breakdown of one
    training run and micro-benchmarks. Run it on an otherwise idle machine."""

    rows: str | None = None
    """rows to run, letters from A,B,C,D,E separated by commas, e.g. A,B,E (default: all rows, and the breakdown and micro-benchmarks too)"""
    runs: int | None = None
    """seeds per row, 1..N (default 5; 1 with --quick)"""
    breakdown: bool = False
    """if toggled, run the breakdown of one training run (part of the default full run)"""
    micro: bool = False
    """if toggled, run the micro-benchmarks (part of the default full run)"""
    quick: bool = False
    """if toggled, smoke check: tiny --total-timesteps everywhere and 1 seed; its figures are not measurements"""
    b_total_timesteps: int = 100_000
    """row B's --total-timesteps (CleanRL's own run is 500000)"""
    e_total_timesteps: int = 131_072
    """row E's --total-timesteps, the same for 4 and for 64 environments"""
    breakdown_continuous_timesteps: int = 32_768
    """--total-timesteps of the breakdown's ppo_continuous_beta.py run (ppo_discrete.py runs its default)"""
    side_by_side: str | None = None
    """our runs against the anchors', alternating: cleanrl, sb3-cartpole, sb3-pendulum, comma-separated, or all"""
    cleanrl: str | None = None
    """path of CleanRL's cleanrl/ppo.py (for --side-by-side cleanrl)"""
    cleanrl_python: str | None = None
    """the Python to run CleanRL's ppo.py with (its own environment: CleanRL pins gymnasium 0.29.1)"""
    sb3_python: str | None = None
    """a Python with stable-baselines3 installed (for --side-by-side sb3-cartpole, sb3-pendulum)"""
    pairs: int = 3
    """alternating pairs (ours, anchor) per match-up; pair i uses seed i"""
    floor: bool = True
    """with --side-by-side: also time the floor of each of our runs (environment stepping plus the bare network
    work it performs, eager and compiled)"""


def fail(message: str):
    """Stop on bad input with one line naming the problem and the fix (exit status 2)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def say(text: str = ""):
    print(text, flush=True)


def parse_rows(text: str) -> str:
    letters = [part.strip().upper() for part in re.split(r"[,\s]+", text) if part.strip()]
    letters = [letter for part in letters for letter in (part if part.isalpha() else [part])]
    bad = [letter for letter in letters if letter not in ALL_ROWS]
    if bad or not letters:
        fail(f"--rows {text!r}: give row letters from {','.join(ALL_ROWS)} separated by commas, e.g. --rows A,B,E")
    return "".join(letter for letter in ALL_ROWS if letter in letters)


def with_flag(argv: tuple[str, ...] | list[str], flag: str, value) -> list[str]:
    """`argv` with `flag`'s value replaced (`--flag V` or `--flag=V`), or with `flag value` appended."""
    argv, value = list(argv), str(value)
    for i, item in enumerate(argv):
        if item == flag and i + 1 < len(argv):
            return argv[:i + 1] + [value] + argv[i + 2:]
        if item.startswith(flag + "="):
            return argv[:i] + [f"{flag}={value}"] + argv[i + 1:]
    return argv + [flag, value]


# ---------------------------------------------------------------- rows: one training process per seed

@dataclass
class Run:
    """One training process: its exit status, whole-process wall time and what its summary says."""
    ok: bool
    wall: float
    eval_mean: float | None = None
    sps: float | None = None
    global_step: int | None = None
    problem: str = ""


def run_training(script: str, argv: list[str]) -> Run:
    """`python script argv` in a fresh temporary folder, timed from launch to exit."""
    with tempfile.TemporaryDirectory(prefix="speed_") as folder:
        command = [sys.executable, os.path.join(HERE, script), *argv]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=folder, env=CHILD_ENV, capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Run(False, time.perf_counter() - start, problem=f"killed after {RUN_TIMEOUT_S} s")
        wall = time.perf_counter() - start
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            return Run(False, wall, problem=f"exit status {done.returncode}: " + " | ".join(tail))
        summaries = glob.glob(os.path.join(folder, "runs", "*", "summary.json"))
        if len(summaries) == 1:
            with open(summaries[0]) as f:
                summary = json.load(f)
            return Run(True, wall, summary["eval_mean"], summary["sps"], summary["global_step"])
        match = EVAL_LINE.search(done.stdout)  # no summary.json: fall back on the printed line
        if match:
            return Run(True, wall, float(match.group(2)))
        return Run(False, wall, problem="neither summary.json nor an evaluation line in its output")


def seed_runs(row: str, script: str, argv: list[str], seeds: range, label: str = "",
              last: int | None = None) -> list[Run]:
    """Run `script argv --seed S` for every seed, one at a time, printing a line per run."""
    results, last = [], last or seeds[-1]
    for seed in seeds:
        if seed == 1:
            say(f"  $ python {script} {' '.join(with_flag(argv, '--seed', seed))}")
        result = run_training(script, with_flag(argv, "--seed", seed))
        name = f"{row}{' ' + label if label else ''} seed {seed}/{last}"
        if result.ok:
            extra = f", {result.sps:,.0f} training steps/s" if result.sps is not None else ""
            say(f"  {name}: {result.wall:6.2f} s wall, eval {result.eval_mean:9.2f}{extra}")
        else:
            say(f"  {name}: FAILED after {result.wall:.1f} s ({result.problem})")
        results.append(result)
    return results


@dataclass
class Figure:
    """One line of the final table: its values over the seeds and the target they are held to."""
    row: str
    what: str
    target: str
    values: list[float]
    show: Callable[[float], str]
    meets: Callable[[float], bool] | None = None  # applied to the median
    text: str | None = None  # instead of min / median / max (counts)
    met: bool | None = None  # instead of meets(median)
    failures: int = 0


def seconds(x: float) -> str:
    return f"{x:.1f} s"


def per_second(x: float) -> str:
    return f"{x:,.0f}"


def score(x: float) -> str:
    return f"{x:.1f}"


def times(x: float) -> str:
    return f"{x:.2f}x"


def count_figure(row: str, what: str, results: list[Run], threshold: float) -> Figure:
    solved = sum(1 for r in results if r.ok and r.eval_mean >= threshold)
    return Figure(row, what, f"{len(results)} of {len(results)}", [], str, text=f"{solved} of {len(results)}",
                  met=solved == len(results))


def whole_run_figures(row, results, wall_target=None, eval_target=None, solved_at=None, solved_what=""):
    ok = [r for r in results if r.ok]
    failures = len(results) - len(ok)
    figures = [Figure(row, "whole-process wall", f"<= {wall_target:g} s" if wall_target else "",
                      [r.wall for r in ok], seconds, (lambda x: x <= wall_target) if wall_target else None,
                      failures=failures),
               Figure(row, "eval mean", f">= {eval_target:g}" if eval_target is not None else "",
                      [r.eval_mean for r in ok], score,
                      (lambda x: x >= eval_target) if eval_target is not None else None, failures=failures)]
    if solved_at is not None:
        figures.append(count_figure(row, solved_what, results, solved_at))
    return figures


def row_a(args, seeds, quick):
    argv = ["--env-id", "CartPole-v1"] + (["--total-timesteps", str(QUICK_TIMESTEPS["A"])] if quick else [])
    results = seed_runs("A", "ppo_discrete.py", argv, seeds)
    return whole_run_figures("A", results, wall_target=15, solved_at=475, solved_what="seeds with eval >= 475")


def row_b(args, seeds, quick):
    total = QUICK_TIMESTEPS["B"] if quick else args.b_total_timesteps
    results = seed_runs("B", "ppo_discrete.py", [*CLEANRL_ARGS, "--total-timesteps", str(total)], seeds)
    ok = [r for r in results if r.ok]
    failures = len(results) - len(ok)
    return [Figure("B", f"training steps/s (summary sps), T={total:,}", ">= 12,000", [r.sps for r in ok],
                   per_second, lambda x: x >= 12_000, failures=failures),
            Figure("B", "steps / whole-process wall", "", [r.global_step / r.wall for r in ok], per_second,
                   failures=failures)]


def row_c(args, seeds, quick):
    argv = ["--eval-episodes", "100"] + (["--total-timesteps", str(QUICK_TIMESTEPS["C"])] if quick else [])
    results = seed_runs("C", "ppo_continuous_beta.py", argv, seeds)
    return whole_run_figures("C", results, wall_target=180, eval_target=-122.1, solved_at=-122.1,
                             solved_what="seeds with eval >= -122.1")


def row_d(args, seeds, quick):
    argv = list(PENDULUM_ARGS)
    if quick:
        argv = with_flag(argv, "--total-timesteps", QUICK_TIMESTEPS["D"])
    results = seed_runs("D", "ppo_continuous_beta.py", argv, seeds)
    return whole_run_figures("D", results, wall_target=30, solved_at=-200, solved_what="seeds with eval >= -200")


def row_e(args, seeds, quick):
    total = QUICK_TIMESTEPS["E"] if quick else args.e_total_timesteps
    few, many, ratios = [], [], []
    for seed in seeds:  # both settings of a seed back to back, so the ratio compares like with like
        pair = [seed_runs("E", "ppo_continuous_beta.py", ["--num-envs", str(n), "--total-timesteps", str(total),
                                                          "--eval-episodes", "1"], range(seed, seed + 1),
                          label=f"{n:>2} envs", last=seeds[-1])[0] for n in (4, 64)]
        few.append(pair[0])
        many.append(pair[1])
        if pair[0].ok and pair[1].ok and pair[0].sps and pair[1].sps:
            ratios.append(pair[1].sps / pair[0].sps)
    failures = len(seeds) - len(ratios)
    return [Figure("E", f"training steps/s, 4 envs, T={total:,}", "", [r.sps for r in few if r.ok], per_second,
                   failures=sum(not r.ok for r in few)),
            Figure("E", f"training steps/s, 64 envs, T={total:,}", "", [r.sps for r in many if r.ok], per_second,
                   failures=sum(not r.ok for r in many)),
            Figure("E", "ratio 64 envs / 4 envs (per seed)", ">= 4x", ratios, times, lambda x: x >= 4,
                   failures=failures)]


ROWS = {"A": (row_a, "ppo_discrete.py CartPole-v1, defaults"),
        "B": (row_b, "ppo_discrete.py CartPole-v1, CleanRL's configuration"),
        "C": (row_c, "ppo_continuous_beta.py SwingUpPendulum-v0, defaults, --eval-episodes 100"),
        "D": (row_d, "ppo_continuous_beta.py " + " ".join(PENDULUM_ARGS)),
        "E": (row_e, "ppo_continuous_beta.py, --num-envs 4 against --num-envs 64")}


def print_table(figures: list[Figure], quick: bool):
    header = ("row", "what", "target", "min / median / max", "met?")
    lines = []
    for figure in figures:
        if figure.text is not None:
            cells = figure.text
            met = figure.met
        elif figure.values:
            values = sorted(figure.values)
            cells = " / ".join(figure.show(v) for v in (values[0], statistics.median(values), values[-1]))
            met = figure.meets(statistics.median(values)) if figure.meets else None
        else:
            cells, met = "no successful run", False if figure.meets else None
        if figure.failures:
            cells += f" ({figure.failures} failed)"
            met = False if met is not None or figure.meets else None
        shown = "n/a" if quick and (met is not None) else ("-" if met is None else "yes" if met else "no")
        lines.append((figure.row, figure.what, figure.target or "-", cells, shown))
    widths = [max(len(line[i]) for line in [header] + lines) for i in range(len(header))]
    say("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    say("  ".join("-" * w for w in widths))
    for line in lines:
        say("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    if quick:
        say("(--quick: shortened settings and one seed, so the targets are not judged; run without --quick to measure)")
    else:
        say("(met? compares the median with the target; a count of solved seeds must reach every seed)")


# ---------------------------------------------------------------- breakdown: one training, timed in-process

_TORCH_DEFAULT_THREADS = None


def import_torch():
    """Import torch here (not at the top, so --help and the rows stay light) and remember its default threads."""
    global _TORCH_DEFAULT_THREADS
    import torch
    if _TORCH_DEFAULT_THREADS is None:
        _TORCH_DEFAULT_THREADS = torch.get_num_threads()
    return torch


class Clock:
    """Seconds and calls per component. Only the outermost timed call counts: a timed function called
    from inside another one (the env steps of evaluate, the forwards inside evaluate_actions) is run
    untimed, so no time is counted twice."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.nested = 0
        self.active = None

    def wrap(self, function, component):
        """`function` timed into `component` (a name, or a function of no arguments that picks one)."""
        clock, perf_counter, fixed = self, time.perf_counter, isinstance(component, str)

        @functools.wraps(function)
        def timed(*args, **kwargs):
            if clock.active is not None:
                clock.nested += 1
                return function(*args, **kwargs)
            name = component if fixed else component()
            clock.active = name
            start = perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clock.seconds[name] = clock.seconds.get(name, 0.0) + perf_counter() - start
                clock.calls[name] = clock.calls.get(name, 0) + 1
                clock.active = None
        return timed


def wrapper_cost() -> tuple[float, float]:
    """Seconds one timed call and one nested (untimed) call add over a bare call."""
    def bare():
        return None
    clock = Clock()
    timed = clock.wrap(bare, lambda: "x")

    def per_call(function, n=20_000):
        start = time.perf_counter()
        for _ in range(n):
            function()
        return (time.perf_counter() - start) / n

    base = min(per_call(bare) for _ in range(3))
    outer = min(per_call(timed) for _ in range(3)) - base
    clock.active = "y"
    inner = min(per_call(timed) for _ in range(3)) - base
    return max(outer, 0.0), max(inner, 0.0)


class Patches:
    """Attributes replaced for the breakdown, put back by restore()."""

    def __init__(self):
        self.saved = []

    def wrap(self, owner, name: str, clock: Clock, component):
        self.replace(owner, name, clock.wrap(getattr(owner, name), component))

    def replace(self, owner, name: str, value):
        own = vars(owner)
        self.saved.append((owner, name, name in own, own.get(name)))
        setattr(owner, name, value)

    def restore(self):
        for owner, name, had, value in reversed(self.saved):
            if had:
                setattr(owner, name, value)
            else:
                delattr(owner, name)
        self.saved.clear()


COMPONENTS = (
    ("setup_env", "setup: environments (check_env, make_env)"),
    ("setup_optimizer", "setup: torch.optim.Adam(...) creation"),
    ("env", "environment stepping (rollout)"),
    ("rollout_forward", "policy forward, inference mode (rollout)"),
    ("gae", "GAE (compute_gae)"),
    ("update_forward", "update: forward (evaluate_actions)"),
    ("losses", "update: losses (surrogate, value)"),
    ("backward", "update: backward (Tensor.backward)"),
    ("optimizer", "update: optimizer (Adam.step, zero_grad, clip)"),
    ("logging", "logging (SummaryWriter, policy picture)"),
    ("evaluation", "evaluation (evaluate)"),
)


def instrument(module, clock: Clock, torch) -> Patches:
    """Wrap the functions of a PPO script module (and the torch calls it makes) with the clock's timers."""
    patches = Patches()
    original_make_env = module.make_env

    timed_make_env = clock.wrap(original_make_env, "setup_env")  # inside evaluate: evaluation's time

    def make_env(*args, **kwargs):
        envs = timed_make_env(*args, **kwargs)
        # the instance attribute shadows the class's step; inside evaluate the clock is already running
        envs.step = clock.wrap(envs.step, "env")
        return envs

    patches.replace(module, "make_env", make_env)
    patches.wrap(module, "check_env", clock, "setup_env")
    patches.wrap(module, "vectorization_mode", clock, "setup_env")
    # Each new optimizer's zero_grad, and the step the script's eager_step gives it, are timed through
    # instance attributes. (The scripts keep torch._dynamo unimported: see their skip_dynamo_import.)
    timed_init = clock.wrap(torch.optim.Adam.__init__, "setup_optimizer")
    original_eager_step = module.eager_step

    def adam_init(self, *args, **kwargs):
        timed_init(self, *args, **kwargs)
        self.zero_grad = clock.wrap(self.zero_grad, "optimizer")

    def eager_step(optimizer):
        optimizer = original_eager_step(optimizer)
        optimizer.step = clock.wrap(optimizer.step, "optimizer")
        return optimizer

    patches.replace(torch.optim.Adam, "__init__", adam_init)
    patches.replace(module, "eager_step", eager_step)
    forward = lambda: "rollout_forward" if torch.is_inference_mode_enabled() else "update_forward"  # noqa: E731
    patches.wrap(module.Agent, "get_action", clock, "rollout_forward")
    patches.wrap(module.Agent, "evaluate_actions", clock, "update_forward")
    patches.wrap(module.Agent, "get_value", clock, forward)
    patches.wrap(module, "compute_gae", clock, "gae")
    patches.wrap(module, "clipped_surrogate_loss", clock, "losses")
    patches.wrap(module, "value_loss", clock, "losses")
    patches.wrap(torch.Tensor, "backward", clock, "backward")
    patches.wrap(torch.nn.utils, "clip_grad_norm_", clock, "optimizer")  # the scripts call nn.utils.clip_grad_norm_
    for name in ("__init__", "add_scalar", "add_text", "add_image", "close"):
        patches.wrap(module.SummaryWriter, name, clock, "logging")
    if hasattr(module, "log_policy_picture"):  # the Beta script's policy picture
        patches.wrap(module, "log_policy_picture", clock, "logging")
    patches.wrap(module, "evaluate", clock, "evaluation")
    return patches


def import_times(module_name: str, repeats: int) -> tuple[float, float, float, float]:
    """Median over fresh processes of: the whole process, `import torch, gymnasium, tyro`, then the
    module, then a first torch.optim.Adam made and stepped as the script does."""
    code = ("import sys, time\nstart = time.perf_counter()\nimport torch, gymnasium, tyro\n"
            "middle = time.perf_counter()\n"
            f"sys.path.insert(0, {HERE!r})\nimport {module_name}\n"
            "end = time.perf_counter()\n"
            f"{module_name}.skip_dynamo_import()\nparameter = torch.zeros(1, requires_grad=True)\n"
            f"optimizer = {module_name}.eager_step(torch.optim.Adam([parameter], fused=True))\n"
            "parameter.sum().backward()\noptimizer.step()\n"
            "print(middle - start, end - middle, time.perf_counter() - end)\n")
    walls, frameworks, modules, optimizers = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="speed_") as folder:
        for _ in range(repeats):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=CHILD_ENV, capture_output=True,
                                  text=True)
            walls.append(time.perf_counter() - start)
            if done.returncode != 0:
                fail(f"importing {module_name} failed: {done.stderr.strip().splitlines()[-1:]}")
            framework, module, optimizer = map(float, done.stdout.split()[-3:])
            frameworks.append(framework)
            modules.append(module)
            optimizers.append(optimizer)
    return tuple(statistics.median(values) for values in (walls, frameworks, modules, optimizers))


_TRAINED_IN_PROCESS = []  # titles of the trainings this process has run (lazy imports are paid once)


def breakdown_one(module_name: str, overrides: dict, title: str, repeats: int, overhead: tuple[float, float]):
    torch = import_torch()
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    process_wall, framework_import, module_import, first_adam = import_times(module_name, repeats)
    module = importlib.import_module(module_name)
    args = module.Args(**overrides)
    clock = Clock()
    patches = instrument(module, clock, torch)
    output = io.StringIO()
    previous_dir = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="speed_") as folder:
        os.chdir(folder)
        try:
            with contextlib.redirect_stdout(output):
                start = time.perf_counter()
                result = module.train(args)
                wall = time.perf_counter() - start
            with open(os.path.join(result["run_dir"], "summary.json")) as f:
                summary = json.load(f)
        except SystemExit as error:
            say(f"breakdown of {title}: the training stopped (exit status {error.code}); its output:")
            say(output.getvalue()[-2000:])
            return
        finally:
            patches.restore()
            os.chdir(previous_dir)

    say(f"{title}: {summary['global_step']:,} steps, train() {wall:.2f} s in this process "
        f"(its own wall_time {summary['wall_time']:.2f} s, {summary['sps']:,.0f} steps/s, "
        f"eval {summary['eval_mean']:.2f})")
    say(f"  {'component':<48} {'seconds':>8} {'%':>6} {'calls':>9}")
    counted = 0.0
    for key, label in COMPONENTS:
        spent = clock.seconds.get(key, 0.0)
        counted += spent
        say(f"  {label:<48} {spent:8.2f} {100 * spent / wall:5.1f}% {clock.calls.get(key, 0):9,}")
    other = wall - counted
    say(f"  {'everything else (train() minus the above)':<48} {other:8.2f} {100 * other / wall:5.1f}%")
    say(f"  {'train() wall time':<48} {wall:8.2f} {100.0:5.1f}%")
    cost = sum(clock.calls.values()) * overhead[0] + clock.nested * overhead[1]
    say(f"  timer overhead inside these figures: about {cost * 1e3:.1f} ms ({100 * cost / wall:.2f}%) for "
        f"{sum(clock.calls.values()):,} timed and {clock.nested:,} nested calls")
    if _TRAINED_IN_PROCESS:
        say(f"  note: this process ran {_TRAINED_IN_PROCESS[0]} before, so one-off costs such as lazy imports "
            "fell on that run, not on this one")
    _TRAINED_IN_PROCESS.append(title)
    say(f"  start-up of a fresh process (median of {repeats}): import torch, gymnasium, tyro {framework_import:.2f} s, "
        f"then import {module_name} {module_import:.2f} s, then a first torch.optim.Adam made and stepped "
        f"{first_adam:.2f} s; "
        f"the whole process {process_wall:.2f} s")


def run_breakdown(args: Args, quick: bool):
    say("\n== breakdown of one training run (in-process, functions wrapped with timers) ==")
    overhead = wrapper_cost()
    say(f"timer cost per call: {overhead[0] * 1e9:.0f} ns timed, {overhead[1] * 1e9:.0f} ns nested")
    repeats = 1 if quick else 3
    discrete = {"env_id": "CartPole-v1"} | ({"total_timesteps": QUICK_BREAKDOWN_TIMESTEPS} if quick else {})
    breakdown_one("ppo_discrete", discrete, "ppo_discrete.py CartPole-v1 defaults", repeats, overhead)
    continuous_steps = QUICK_BREAKDOWN_TIMESTEPS if quick else args.breakdown_continuous_timesteps
    breakdown_one("ppo_continuous_beta", {"total_timesteps": continuous_steps},
                  f"ppo_continuous_beta.py defaults, --total-timesteps {continuous_steps}", repeats, overhead)


# ---------------------------------------------------------------- micro-benchmarks

def microseconds_per_call(function, budget: float, limit: float = 0.9) -> float:
    """Median over blocks of calls (each block about 2 ms) of the time per call, in microseconds.

    Measures for about `budget` seconds (at least 5 blocks where they fit), and stops before `limit`
    seconds in all, warm-up included, unless a single call takes longer than that."""
    first = time.perf_counter()
    deadline = first + limit
    warm_up, calls = min(0.05, budget / 4), 0
    while calls < 1 or time.perf_counter() < first + warm_up:  # warm-up, and a first guess of a call's cost
        function()
        calls += 1
    block = max(1, int(0.002 * calls / (time.perf_counter() - first)))
    per_call, end, last = [], time.perf_counter() + budget, 0.0
    while not per_call or ((time.perf_counter() < end or len(per_call) < 5)
                           and time.perf_counter() + last < deadline):
        start = time.perf_counter()
        for _ in range(block):
            function()
        last = time.perf_counter() - start
        per_call.append(last / block)
    return statistics.median(per_call) * 1e6


def run_micro(quick: bool):
    torch = import_torch()
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    discrete = importlib.import_module("ppo_discrete")
    default_threads, threads_before = _TORCH_DEFAULT_THREADS, torch.get_num_threads()
    budget = 0.1 if quick else 0.4
    say(f"\n== micro-benchmarks (median per call; torch {torch.__version__}, default threads {default_threads}) ==")

    torch.manual_seed(0)
    agent = discrete.Agent(4, 2)
    step_obs = torch.randn(8, 4)

    def policy_forward():
        with torch.inference_mode():
            agent.get_action(step_obs)
            agent.get_value(step_obs)

    optimizer = torch.optim.Adam(agent.parameters(), lr=2.5e-3, eps=1e-5)
    batch_obs, batch_actions = torch.randn(256, 4), torch.randint(0, 2, (256,))
    with torch.no_grad():
        old_logprobs, _, old_values = agent.evaluate_actions(batch_obs, batch_actions)
    advantages, returns = torch.randn(256), torch.randn(256)
    loss_args = discrete.Args(norm_adv=True, clip_vloss=True, ent_coef=0.0)

    def adam_update(loss_function=discrete.ppo_loss):
        loss = loss_function(agent, batch_obs, batch_actions, old_logprobs, old_values, advantages, returns,
                             loss_args)[0]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
        optimizer.step()

    lines = []
    thread_counts = [1] + ([default_threads] if default_threads != 1 else [])
    try:
        for what, function in (("policy forward, get_action and get_value on (8, 4), inference_mode", policy_forward),
                               ("Adam mini-batch update, 256 samples: forward+backward+clip+step", adam_update)):
            for threads in thread_counts:
                torch.set_num_threads(threads)
                note = "1 thread" if threads == 1 else f"{threads} threads (torch default)"
                lines.append((f"{what}, {note}", microseconds_per_call(function, budget)))
    finally:
        torch.set_num_threads(threads_before)
    if default_threads == 1:
        lines.append(("(torch's default is 1 thread here, so there is no second thread count to compare)", None))

    logits = torch.randn(8, 2)

    def categorical():
        torch.distributions.Categorical(logits=logits).sample()

    def categorical_unvalidated():
        torch.distributions.Categorical(logits=logits, validate_args=False).sample()

    def gumbel_max():  # as ppo_discrete.Agent.get_action samples
        torch.argmax(logits - torch.log(-torch.log(torch.rand_like(logits))), dim=-1)

    alpha = 1.0 + torch.nn.functional.softplus(torch.randn(8, 1))
    beta = 1.0 + torch.nn.functional.softplus(torch.randn(8, 1))

    def beta_step(validate: bool):
        def run():
            distribution = torch.distributions.Beta(alpha, beta, validate_args=validate)
            distribution.log_prob(distribution.sample().clamp(1e-6, 1.0 - 1e-6))
        return run

    with torch.inference_mode():
        for what, function in (("sampling (8, 2) logits: Categorical(logits=...).sample()", categorical),
                               ("sampling (8, 2) logits: Categorical(..., validate_args=False).sample()",
                                categorical_unvalidated),
                               ("sampling (8, 2) logits: Gumbel-max (the script's)", gumbel_max),
                               ("Beta (8, 1): build + sample + log_prob, validate_args=True", beta_step(True)),
                               ("Beta (8, 1): build + sample + log_prob, validate_args=False", beta_step(False))):
            torch.set_num_threads(1)
            try:
                lines.append((what + ", 1 thread", microseconds_per_call(function, budget)))
            finally:
                torch.set_num_threads(threads_before)

    # Adam's implementations: the per-tensor loop (the CPU default), foreach and fused
    torch.set_num_threads(1)
    try:
        for name, options in (("for-loop", {"foreach": False}), ("foreach", {"foreach": True}),
                              ("fused", {"fused": True})):
            optimizer = torch.optim.Adam(agent.parameters(), lr=2.5e-3, eps=1e-5, **options)
            lines.append((f"Adam mini-batch update, 256 samples, Adam {name}, 1 thread",
                          microseconds_per_call(adam_update, budget)))

        # --compile: ppo_loss through torch.compile (the first call compiles, and is not counted here)
        compiled_loss = torch.compile(discrete.ppo_loss)
        start = time.perf_counter()
        adam_update(compiled_loss)
        lines.append((f"(torch.compile of ppo_loss: first call {time.perf_counter() - start:.1f} s, "
                      "less where Inductor's on-disk cache already holds the kernels)", None))
        lines.append(("Adam mini-batch update, 256 samples, Adam fused, ppo_loss compiled, 1 thread",
                      microseconds_per_call(lambda: adam_update(compiled_loss), budget)))

        # GAE over a (128, 4) rollout: the same function on torch tensors and on numpy arrays
        rollout = [torch.rand(128, 4), torch.rand(128, 4), torch.zeros(128, 4), torch.rand(4)]
        lines.append(("compute_gae on (128, 4) torch tensors, 1 thread",
                      microseconds_per_call(lambda: discrete.compute_gae(*rollout, 0.99, 0.95), budget)))
        arrays = [x.numpy() for x in rollout]
        lines.append(("compute_gae on (128, 4) numpy arrays (what the scripts do)",
                      microseconds_per_call(lambda: discrete.compute_gae(*arrays, 0.99, 0.95), budget)))
    finally:
        torch.set_num_threads(threads_before)
    width = max(len(what) for what, _ in lines)
    for what, value in lines:
        say(f"  {what:<{width}}" + (f"  {value:9.1f} us" if value is not None else ""))


# ---------------------------------------------------------------- main

# ---------------------------------------------------------------- side by side: ours against CleanRL and SB3

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
        "sb3", ["--env-id", "CartPole-v1", "--eval-episodes", "20"], "both: 20 deterministic episodes"),
    "sb3-pendulum": Matchup(
        "Pendulum-v1: README's command against SB3 with rl-zoo's Pendulum-v1 settings (gSDE, 100k)",
        "ppo_continuous_beta.py", list(PENDULUM_ARGS), "sb3", ["--env-id", "Pendulum-v1", "--eval-episodes", "10"],
        "both: 10 deterministic episodes"),
}


def timed_process(command: list[str], env: dict) -> Run:
    """A whole process in a fresh temporary folder, timed from launch to exit; its printed evaluation."""
    with tempfile.TemporaryDirectory(prefix="speed_") as folder:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        return Run(False, wall, problem=f"exit {done.returncode}: " + " | ".join(done.stderr.strip().splitlines()[-2:]))
    match = EVAL_LINE.search(done.stdout)
    return Run(True, wall, float(match.group(2)) if match else None)


def anchor_command(matchup: Matchup, args: Args, seed: int) -> list[str]:
    if matchup.anchor == "cleanrl":
        if not (args.cleanrl and args.cleanrl_python):
            fail("--side-by-side cleanrl needs --cleanrl PATH/cleanrl/ppo.py and --cleanrl-python (CleanRL's own "
                 "Python: it pins gymnasium 0.29.1)")
        return [args.cleanrl_python, os.path.abspath(args.cleanrl), *matchup.anchor_argv, "--seed", str(seed)]
    if not args.sb3_python:
        fail(f"--side-by-side {matchup.anchor} needs --sb3-python, a Python with stable-baselines3 installed")
    return [args.sb3_python, os.path.join(HERE, "benchmarks", "sb3_driver.py"), *matchup.anchor_argv,
            "--seed", str(seed)]


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


def floor_of(script: str, argv: list[str]) -> dict:
    """What the run cannot go below: its environment steps alone (random actions, the same vector env) plus
    the bare network work it performs (rollout forwards and the rollout's values, then mini-batch forward + loss +
    backward + gradient clipping + Adam step), eager and with the loss compiled, each timed per call and multiplied
    by the run's counts. Start-up (imports) and evaluation are not in it."""
    torch = import_torch()
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    module = importlib.import_module(script.removesuffix(".py"))
    run_args = tyro.cli(module.Args, args=argv)
    module.check_args(run_args)
    torch.set_num_threads(run_args.torch_threads)
    envs = module.make_env(run_args.env_id, run_args.num_envs, run_args.vectorization_mode, run_args.env_kwargs)
    envs.reset(seed=0)
    space = envs.single_action_space
    discrete = hasattr(space, "n")
    actions = [envs.action_space.sample() for _ in range(64)]
    steps = run_args.num_iterations * run_args.num_steps
    env_calls = min(steps, 5_000)
    start = time.perf_counter()
    for i in range(env_calls):
        envs.step(actions[i % 64])
    env_seconds = (time.perf_counter() - start) / env_calls * steps
    obs_dim = envs.single_observation_space.shape[0]
    envs.close()
    width = space.n if discrete else space.shape[0]
    agent = module.Agent(obs_dim, width, run_args.hidden_size, run_args.activation)
    rollout_obs = torch.randn(run_args.num_envs, obs_dim)

    rollout_states = torch.randn(run_args.num_steps * run_args.num_envs, obs_dim)

    def rollout_forward():
        with torch.inference_mode():
            agent.get_action(rollout_obs)

    def rollout_values():  # once an iteration, for every state the rollout stored
        with torch.inference_mode():
            agent.get_value(rollout_states)

    forward = (seconds_per_call(rollout_forward, 500) * steps
               + seconds_per_call(rollout_values, 50) * run_args.num_iterations)
    size = run_args.minibatch_size
    batch = (torch.randn(size, obs_dim), torch.randint(0, width, (size,)) if discrete else torch.rand(size, width)
             * 0.98 + 0.01, torch.zeros(size), torch.zeros(size), torch.randn(size), torch.randn(size))
    optimizer = module.eager_step(torch.optim.Adam(agent.parameters(), lr=1e-4, eps=1e-5, fused=True))
    updates = run_args.num_iterations * run_args.update_epochs * run_args.num_minibatches
    result = {"env": env_seconds, "rollout forward": forward, "steps": steps, "updates": updates}
    for label, loss_function in (("eager", module.ppo_loss), ("compiled", None)):
        if loss_function is None:
            if shutil.which(os.environ.get("CXX", "g++")) is None:
                continue
            compile_start = time.perf_counter()
            loss_function = torch.compile(module.ppo_loss)
            loss_function(agent, *batch, run_args)[0].backward()
            result["compile seconds"] = time.perf_counter() - compile_start

        def update():
            loss = loss_function(agent, *batch, run_args)[0]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(agent.parameters(), run_args.max_grad_norm, foreach=True)
            optimizer.step()

        result[f"updates, {label}"] = seconds_per_call(update, 300) * updates
    return result


def run_side_by_side(args: Args):
    names = list(MATCHUPS) if args.side_by_side == "all" else [n.strip() for n in args.side_by_side.split(",")]
    unknown = [name for name in names if name not in MATCHUPS]
    if unknown or args.pairs <= 0:
        fail(f"--side-by-side {args.side_by_side}: choose from {', '.join(MATCHUPS)} or all, with --pairs >= 1")
    for name in names:
        anchor_command(MATCHUPS[name], args, 1)  # refuse a missing anchor before anything runs
    subprocess.run([sys.executable, "-c", "import torch, gymnasium, tyro, torch.utils.tensorboard"],
                   env=CHILD_ENV, capture_output=True)  # an unmeasured start-up warms the file cache
    summary = []
    for name in names:
        matchup = MATCHUPS[name]
        say(f"\n== {name}: {matchup.title} ==")
        say(f"  ours:   python {matchup.script} {' '.join(matchup.argv)} --seed S")
        say(f"  anchor: {' '.join(anchor_command(matchup, args, 0)[:-2])} --seed S ({matchup.eval_note})")
        ours, theirs, ratios = [], [], []
        for pair in range(1, args.pairs + 1):
            our_command = [sys.executable, os.path.join(HERE, matchup.script), *matchup.argv, "--seed", str(pair)]
            jobs = [("ours", our_command, CHILD_ENV), ("anchor", anchor_command(matchup, args, pair), os.environ)]
            results = {}
            for who, command, env in (jobs if pair % 2 else jobs[::-1]):  # alternate who goes first
                results[who] = timed_process(command, dict(env))
            for who in ("ours", "anchor"):
                run = results[who]
                shown = f"{run.wall:6.1f} s, eval {run.eval_mean}" if run.ok else f"FAILED: {run.problem}"
                say(f"  pair {pair} {who:>6}: {shown}")
            ours.append(results["ours"])
            theirs.append(results["anchor"])
            if results["ours"].ok and results["anchor"].ok:
                ratios.append(results["anchor"].wall / results["ours"].wall)
        line = {"name": name, "ratios": ratios, "ours": [r.wall for r in ours if r.ok],
                "anchor": [r.wall for r in theirs if r.ok], "our_evals": [r.eval_mean for r in ours],
                "anchor_evals": [r.eval_mean for r in theirs]}
        if args.floor:
            floor = floor_of(matchup.script, matchup.argv)
            eager = floor["env"] + floor["rollout forward"] + floor["updates, eager"]
            say(f"  floor of our run ({floor['steps']:,} env steps, {floor['updates']:,} updates): environment "
                f"{floor['env']:.1f} s + rollout forwards {floor['rollout forward']:.1f} s + updates "
                f"{floor['updates, eager']:.1f} s eager = {eager:.1f} s"
                + (f"; updates compiled {floor['updates, compiled']:.1f} s (+ {floor['compile seconds']:.0f} s to "
                   f"compile) = {eager - floor['updates, eager'] + floor['updates, compiled']:.1f} s"
                   if "updates, compiled" in floor else ""))
            if line["ours"]:
                say(f"  our median run is {statistics.median(line['ours']) / eager:.2f}x the eager floor "
                    "(the rest: start-up, evaluation, logging, the loop itself)")
        summary.append(line)
    say("\n== side by side: anchor wall time / ours, per pair (min / median / max) ==")
    for line in summary:
        spread = lambda values, show: " / ".join(show(v) for v in (min(values), statistics.median(values),  # noqa
                                                                    max(values))) if values else "n/a"
        say(f"  {line['name']:<13} ratio {spread(line['ratios'], times):<24} ours {spread(line['ours'], seconds):<24} "
            f"anchor {spread(line['anchor'], seconds):<24} evals ours {line['our_evals']} anchor {line['anchor_evals']}")
    say("(target: >= 3x; our runs use 1 torch thread as their default, the anchors their own defaults)")


def machine_report():
    cores = os.cpu_count() or 1
    say(f"python {platform.python_version()} on {platform.machine()}, {cores} CPU cores; "
        f"trainings run one at a time with OMP_NUM_THREADS=1")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        if load > 0.5:
            say(f"warning: the load average is {load:.2f} on {cores} cores: something else is running, "
                "so the timings will be slower than on a quiet machine")


def main(args: Args):
    if args.side_by_side:
        machine_report()
        run_side_by_side(args)
        return
    everything = args.rows is None and not args.breakdown and not args.micro
    rows = ALL_ROWS if everything else (parse_rows(args.rows) if args.rows is not None else "")
    runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    if runs <= 0:
        fail(f"--runs is {runs}; it must be a positive number of seeds")
    for name in ("b_total_timesteps", "e_total_timesteps", "breakdown_continuous_timesteps"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} is {getattr(args, name)}; it must be a positive number of steps")
    start = time.perf_counter()
    machine_report()
    if args.quick:
        say("--quick: tiny trainings and 1 seed, a smoke check of the benchmark; the figures are not measurements")
    if everything or args.micro:
        import_torch()  # before any training sets the thread count, so the default is torch's own

    figures = []
    if rows:
        # one unmeasured start-up first, so the first measured run does not pay for a cold file cache
        subprocess.run([sys.executable, "-c", "import torch, gymnasium, tyro, torch.utils.tensorboard"],
                       env=CHILD_ENV, capture_output=True)
        seeds = range(1, runs + 1)
        for row in rows:
            function, title = ROWS[row]
            say(f"\n== row {row}: {title}, seeds 1..{runs} ==")
            figures += function(args, seeds, args.quick)
    if everything or args.breakdown:
        run_breakdown(args, args.quick)
    if everything or args.micro:
        run_micro(args.quick)
    if figures:
        say(f"\n== results over seeds 1..{runs} ==")
        print_table(figures, args.quick)
    say(f"\nbenchmark wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(tyro.cli(Args))
