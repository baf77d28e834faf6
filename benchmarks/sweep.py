"""Benchmark sweep: run a PPO script on several environments x seeds, then tabulate and plot the results.

    python benchmarks/sweep.py --script ppo_discrete.py --env-ids CartPole-v1 Acrobot-v1 --seeds 1 2 3 -- --total-timesteps 50000
    python benchmarks/sweep.py --script ppo_discrete.py --report-only
    python benchmarks/sweep.py --script ppo_discrete.py --env-ids CartPole-v1 --ray-address auto

Everything after a lone `--` goes to the script unchanged. Each (environment, seed)
pair is one process of the script, `--jobs` of them at a time; its output goes to
`{out_dir}/logs/`. The runs are tagged with `--exp-name`, so the report step finds
them again under `runs/` from their `summary.json` and TensorBoard logs, writes
`{out_dir}/{env_id}.png` (learning curves) and puts one row per environment into
`{out_dir}/results.md`: a row of the same environment is replaced where it stands,
the rows and plots of the other environments already there are kept. With
`--ray-address` the same runs go to a Ray cluster instead and come back into the
local `runs/`, so the report step is the same.
"""

import ast
import glob
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace

import numpy as np
import tyro

# Evaluation return at which an environment counts as solved (Gymnasium's reward thresholds where it has
# one; the pendulums' are this project's choice: a swing-up that reaches the top quickly and stays there).
SOLVED = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -100.0,
    "LunarLander-v3": 200.0,
    "SwingUpPendulum-v0": -122.0,
    "Pendulum-v1": -200.0,
    "LunarLanderContinuous-v3": 200.0,
    "BipedalWalker-v3": 250.0,
    # MuJoCo: CleanRL's ppo_continuous_action.py after 1M steps (its published table, on v4), the row's reference
    "HalfCheetah-v5": 1442.6,
    "Hopper-v5": 2382.9,
    "Walker2d-v5": 2288.0,
    "InvertedPendulum-v5": 963.1,
    "Humanoid-v5": 716.1,
    "Pusher-v5": -40.4,
}
DEFAULT_ENV_IDS = ("CartPole-v1", "Acrobot-v1")
DEFAULT_SEEDS = (1, 2, 3)
RUNS_DIR = "runs"  # where the PPO scripts write, relative to the working directory
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root, where the PPO scripts are


@dataclass
class Args:
    """Run a PPO script over environments x seeds and write a results table and learning curves.
    Arguments after a lone `--` are passed to the script, e.g. `-- --total-timesteps 50000 --num-envs 8`."""

    script: str = "ppo_discrete.py"
    """the PPO script to run (a path, or a file name in the repository root)"""
    env_ids: tuple[str, ...] | None = None
    """environment ids; when not given: CartPole-v1 Acrobot-v1, or with --report-only every one found"""
    seeds: tuple[int, ...] | None = None
    """seeds; when not given: 1 2 3, or with --report-only every one found"""
    jobs: int = os.cpu_count() or 1
    """number of runs at once on this machine; the default is the number of CPU cores"""
    out_dir: str = "sweep_results"
    """folder for results.md, the plots and the runs' logs"""
    exp_name: str | None = None
    """tag of this sweep's runs, passed to the script as --exp-name; when not given: bench_{script name}"""
    solved: tuple[str, ...] = ()
    """solved thresholds as ENV_ID=RETURN, added to or replacing the built-in ones, e.g. Pendulum-v1=-180"""
    report_only: bool = False
    """if toggled, train nothing: rebuild the table and plots from the runs already under runs/"""
    ray_address: str | None = None
    """run on a Ray cluster: `auto` (this machine is in the cluster), `ray://HOST:10001`, or `local` (start one here)"""
    cpus_per_run: float = 1.0
    """CPUs that Ray reserves for each run"""
    script_args: tyro.conf.Suppress[tuple[str, ...]] = ()
    """the arguments after `--`, passed to every run of the script"""


def fail(message: str):
    """Stop on bad input with one line naming the problem and the fix (exit status 2)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_solved(overrides: tuple[str, ...], runs=()) -> dict[str, float]:
    """The built-in thresholds updated with `ENV_ID=RETURN` strings. A built-in one holds for its env's own physics,
    so it is left out for an env of which any of `runs` changed the physics with --env-kwargs."""
    changed = {run["env_id"] for run in runs if run["args"]["env_kwargs"]}
    solved = {env_id: threshold for env_id, threshold in SOLVED.items() if env_id not in changed}
    for item in overrides:
        env_id, _, value = item.rpartition("=")
        try:
            solved[env_id] = float(value)
        except ValueError:
            env_id = ""
        if not env_id:
            fail(f"--solved {item}: write ENV_ID=RETURN, e.g. --solved Pendulum-v1=-180")
    return solved


def resolve_script(script: str) -> str:
    """Absolute path of the script, looked up from the working directory, then beside this file."""
    for path in (script, os.path.join(HERE, script)):
        if os.path.isfile(path):
            return os.path.abspath(path)
    fail(f"--script {script}: no such file; give the path of a PPO script such as ppo_discrete.py")


def file_name(env_id: str) -> str:
    """An env id as a file name (ids such as ALE/Pong-v5 hold a slash)."""
    return env_id.replace("/", "_")


# ---------------------------------------------------------------- running the sweep

def run_script(script: str, argv: list[str], log_path: str, cwd: str | None = None) -> tuple[int, float]:
    """Run `python script argv...` with its output in `log_path`; return its exit status and duration."""
    start = time.time()
    with open(log_path, "w") as log:
        # OMP_NUM_THREADS=1: runs side by side, each with a thread per core, would fight over the cores
        done = subprocess.run([sys.executable, script, *argv], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                              env=os.environ | {"OMP_NUM_THREADS": "1"})
    return done.returncode, time.time() - start


def sweep_locally(script, jobs, args, say):
    """Run the jobs as subprocesses here, `args.jobs` at a time; yield (job, exit status, seconds) as each ends."""
    def run(job):
        say(f"[{job['number']}/{len(jobs)}] {job['env_id']} seed {job['seed']}: started")
        return run_script(script, job["argv"], job["log"])

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], *future.result()


def source_files(script: str) -> dict[str, str]:
    """Text of the script and of the modules beside it that it imports (pendulum_env.py), by file name."""
    folder, name = os.path.split(script)

    def read(file: str) -> str:
        with open(os.path.join(folder, file)) as f:
            return f.read()

    sources = {name: read(name)}
    for node in ast.walk(ast.parse(sources[name])):
        modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                   [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        sources |= {f"{module}.py": read(f"{module}.py") for module in modules
                    if os.path.isfile(os.path.join(folder, f"{module}.py"))}
    return sources


def run_in_temp_dir(sources: dict[str, str], script: str, argv: list[str]) -> tuple[int, float, str, bytes]:
    """The Ray task: write the sources into a fresh folder, run the script there, and return
    its exit status, duration, log text and the run directories it wrote (runs/ as tar.gz bytes)."""
    with tempfile.TemporaryDirectory(prefix="sweep_") as folder:
        for name, text in sources.items():
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        code, seconds = run_script(script, argv, os.path.join(folder, "log.txt"), cwd=folder)
        with open(os.path.join(folder, "log.txt")) as f:
            log = f.read()
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as tar:
            if os.path.isdir(os.path.join(folder, RUNS_DIR)):
                tar.add(os.path.join(folder, RUNS_DIR), arcname=".")
        return code, seconds, log, packed.getvalue()


def import_ray():
    """Ray is optional: import it only for --ray-address."""
    try:
        import ray
    except ImportError:
        fail("--ray-address needs Ray, which is not installed: pip install -r requirements-ray.txt")
    return ray


def sweep_on_ray(script, jobs, args, say):
    """Run each job as a Ray task and unpack its runs into the local runs/; yield (job, exit status, seconds).

    The tasks get the scripts' source text as an argument (put into Ray's object store once) rather than
    a runtime_env working_dir: that would upload the whole project folder, runs/ and .venv included, while
    the text is a few dozen KB and reaches a worker on any machine the same way. The workers need the
    packages of requirements.txt in the Python that runs `ray start`.
    """
    ray = import_ray()
    if __name__ != "__main__":
        # imported (by tests, say) the task would be pickled as a reference to this module, which a
        # worker on another machine cannot import; by value it travels with the task
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=args.ray_address)
    try:
        task = ray.remote(num_cpus=args.cpus_per_run)(run_in_temp_dir)
        sources = ray.put(source_files(script))
        pending = {}
        for job in jobs:
            pending[task.remote(sources, os.path.basename(script), job["argv"])] = job
            say(f"[{job['number']}/{len(jobs)}] {job['env_id']} seed {job['seed']}: sent to Ray")
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready)
            try:
                code, seconds, log, packed = ray.get(ready)
            except ray.exceptions.RayError as error:  # the worker died, the node was lost, ...
                code, seconds, log, packed = -1, 0.0, f"Ray task failed: {error}\n", b""
            with open(job["log"], "w") as f:
                f.write(log)
            if packed:
                with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
                    tar.extractall(RUNS_DIR, filter="data")
            yield job, code, seconds
    finally:
        if started_here:
            ray.shutdown()


# ---------------------------------------------------------------- finding and summarizing runs

def find_runs(exp_name: str, env_ids=None, seeds=None, runs_dir: str = RUNS_DIR) -> list[dict]:
    """Summaries of the runs tagged `exp_name` (all env ids / seeds when None), the newest per
    (env id, seed), each with its `seed` and `run_dir` added; in `env_ids` order, then by seed."""
    newest = {}
    for path in glob.glob(os.path.join(runs_dir, "**", "summary.json"), recursive=True):
        try:
            with open(path) as f:
                summary = json.load(f)
        except (OSError, json.JSONDecodeError):  # being written right now, or not one of ours
            continue
        run_args = summary.get("args", {})
        key = (summary.get("env_id"), run_args.get("seed"))
        if (run_args.get("exp_name") != exp_name or (env_ids and key[0] not in env_ids)
                or (seeds and key[1] not in seeds)):
            continue
        written = os.path.getmtime(path)
        if key not in newest or written > newest[key][0]:
            newest[key] = (written, summary | {"seed": key[1], "run_dir": os.path.dirname(path)})
    order = sorted(newest, key=lambda key: (list(env_ids).index(key[0]) if env_ids else 0, key))
    return [newest[key][1] for key in order]


def summarize(runs: list[dict], solved: dict[str, float]) -> list[dict]:
    """One row per environment: the mean and std (over seeds, ddof 0) of the seeds' evaluation means,
    the number of seeds, the medians of steps, wall time and steps/s, and how many seeds reached `solved`."""
    rows = []
    for env_id in dict.fromkeys(run["env_id"] for run in runs):
        mine = [run for run in runs if run["env_id"] == env_id]
        means = np.array([run["eval_mean"] for run in mine])
        threshold = solved.get(env_id)
        rows.append({"env_id": env_id, "mean": float(means.mean()), "std": float(means.std()), "seeds": len(mine),
                     "per_seed": means.tolist(),
                     "steps": float(np.median([run["global_step"] for run in mine])),
                     "wall_time": float(np.median([run["wall_time"] for run in mine])),
                     "sps": float(np.median([run["sps"] for run in mine])),
                     "threshold": threshold,
                     "solved": None if threshold is None else int((means >= threshold).sum()),
                     # only runs that evaluated during training (--eval-every) say when they first got there
                     "reached": ([first_reached(run, threshold) for run in mine]
                                 if any(len(evaluation_curve(run)[0]) > 1 for run in mine) else None)})
    return rows


TABLE_HEADER = ("| environment | eval return (mean ± std over seeds) | per seed | seeds | steps | "
                "median wall time (training + evaluation) | median steps/s | solved | first reached (steps, s) |\n"
                "|---|---|---|---|---|---|---|---|---|\n")


def table_line(row: dict) -> str:
    """One row of `summarize` as a line of the markdown table."""
    solved = "n/a" if row["threshold"] is None else f"{row['solved']}/{row['seeds']} (≥ {row['threshold']:g})"
    reached = "n/a" if row["reached"] is None else "; ".join(
        "never" if r is None else f"{r[0] / 1e6:.2f}M, {r[1]:,.0f} s" for r in row["reached"])
    return (f"| {row['env_id']} | {row['mean']:.1f} ± {row['std']:.1f} | "
            f"{', '.join(f'{value:.1f}' for value in row['per_seed'])} | {row['seeds']} | "
            f"{row['steps']:,.0f} | {row['wall_time']:.1f} s | {row['sps']:,.0f} | {solved} | "
            f"{reached if row['threshold'] is not None else 'n/a'} |")


def markdown_table(rows: list[dict]) -> str:
    """The rows of `summarize` as a markdown table."""
    return TABLE_HEADER + "".join(table_line(row) + "\n" for row in rows)


# ---------------------------------------------------------------- learning curves

def episodic_returns(run_dir: str, tag: str = "charts/episodic_return") -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of one scalar of a run's TensorBoard logs (empty arrays when it has none)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(run_dir, size_guidance={"scalars": 0})  # 0: keep every point
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return np.zeros(0), np.zeros(0)
    events = accumulator.Scalars(tag)
    return np.array([e.step for e in events], float), np.array([e.value for e in events], float)


def evaluation_curve(run: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, seconds since the run started, and eval/mean_return of each evaluation of a run (--eval-every),
    the final one included."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not os.path.isdir(run.get("run_dir", "")):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    accumulator = EventAccumulator(run["run_dir"], size_guidance={"scalars": 0})
    accumulator.Reload()
    if "eval/mean_return" not in accumulator.Tags()["scalars"]:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    events = accumulator.Scalars("eval/mean_return")
    start = run.get("start_time", events[0].wall_time)
    return (np.array([e.step for e in events], float), np.array([e.wall_time - start for e in events]),
            np.array([e.value for e in events], float))


def first_reached(run: dict, threshold: float | None) -> tuple[float, float] | None:
    """Steps and seconds at the first evaluation whose mean return reached `threshold` (None if none did)."""
    steps, seconds, values = evaluation_curve(run)
    reached = np.flatnonzero(values >= threshold) if threshold is not None else []
    return (steps[reached[0]], seconds[reached[0]]) if len(reached) else None


def smoothed_curve(steps, returns, grid, window: int = 10) -> np.ndarray:
    """A seed's episodic returns as a curve on `grid`: the mean of the last `window` episodes at each
    finished episode, linearly interpolated (held constant before the first and after the last episode)."""
    order = np.argsort(steps, kind="stable")
    steps, returns = np.asarray(steps, float)[order], np.asarray(returns, float)[order]
    sums = np.concatenate([[0.0], np.cumsum(returns)])
    ends = np.arange(1, len(returns) + 1)
    counts = np.minimum(ends, window)
    return np.interp(grid, steps, (sums[ends] - sums[ends - counts]) / counts)


def plot_curves(env_id: str, grid, curves, threshold: float | None, path: str, title: str = ""):
    """Mean of the seeds' curves with a band of +-1 std over seeds, and the solved threshold dashed, as a PNG."""
    from matplotlib.figure import Figure  # a Figure without pyplot draws with Agg and opens no window

    curves = np.asarray(curves)
    mean, std = curves.mean(axis=0), curves.std(axis=0)
    fig = Figure(figsize=(5, 3.2), dpi=80)
    ax = fig.subplots()
    ax.plot(grid, mean, label=f"mean of {len(curves)} seed{'s' * (len(curves) > 1)}")
    ax.fill_between(grid, mean - std, mean + std, alpha=0.3, label="± 1 std over seeds")
    if threshold is not None:
        ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"solved ({threshold:g})")
    ax.set_title(title or env_id, fontsize=10)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episodic return")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)


def plot_evaluations(env_id: str, evaluations, threshold: float | None, path: str, title: str = ""):
    """Each seed's deterministic evaluation return against steps (left) and wall time (right), as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), dpi=80)
    by_steps, by_time = fig.subplots(1, 2, sharey=True)
    for seed, steps, seconds, values in evaluations:
        by_steps.plot(steps, values, marker=".", label=f"seed {seed}")
        by_time.plot(seconds / 60, values, marker=".")
    for ax, label in ((by_steps, "environment steps"), (by_time, "wall time (minutes)")):
        if threshold is not None:
            ax.axhline(threshold, color="gray", linestyle="--", linewidth=1)
        ax.set_xlabel(label)
    by_steps.set_ylabel("evaluation return")
    by_steps.legend(fontsize=7, loc="best")
    fig.suptitle(title or env_id, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


TITLE = re.compile(r"# Benchmark of (.+) \(runs tagged (.+)\)$")


def read_report(path: str) -> tuple[list[str], list[str], dict[str, str], dict[str, list[str]]]:
    """What a results.md written by `write_report` holds: the scripts and tags its title names, and its table
    lines and image lines by env id, in their order (all empty when there is no such file)."""
    scripts, tags, lines, images = [], [], {}, {}
    if not os.path.isfile(path):
        return scripts, tags, lines, images
    with open(path) as f:
        for line in f.read().splitlines():
            title = TITLE.match(line)
            if title:
                scripts, tags = title[1].split(", "), title[2].split(", ")
            elif line.startswith("| ") and line + "\n" not in TABLE_HEADER:
                lines[line[2:].split(" | ")[0]] = line
            elif line.startswith("!["):
                images.setdefault(line[2:].split("]")[0].split(" ")[0], []).append(line)
    return scripts, tags, lines, images


def write_report(runs: list[dict], solved: dict[str, float], out_dir: str, script: str, exp_name: str) -> list[dict]:
    """Write one `{env_id}.png` per environment of `runs` into `out_dir` and merge their rows into its `results.md`:
    a row of the same env id is replaced where it stands, a new one goes at the end, and the rows and plots of
    the other environments already there stay as they are. Return the rows of `runs`."""
    rows = summarize(runs, solved)
    path = os.path.join(out_dir, "results.md")
    scripts, tags, lines, images = read_report(path)
    kept = [env_id for env_id in lines if env_id not in {row["env_id"] for row in rows}]
    for row in rows:
        lines[row["env_id"]] = table_line(row)
        images[row["env_id"]] = []
        mine = [run for run in runs if run["env_id"] == row["env_id"]]
        grid = np.linspace(0, max(run["global_step"] for run in mine), 100)
        # a run too short to finish an episode has no curve; the others still make one
        curves = [smoothed_curve(steps, returns, grid) for steps, returns in
                  (episodic_returns(run["run_dir"]) for run in mine) if len(steps)]
        if curves:
            image = f"{file_name(row['env_id'])}.png"
            plot_curves(row["env_id"], grid, curves, row["threshold"], os.path.join(out_dir, image),
                        f"{row['env_id']}, {script}")
            images[row["env_id"]].append(f"![{row['env_id']}]({image})")
        evaluations = [(run["args"]["seed"], *evaluation_curve(run)) for run in mine]
        if any(len(steps) > 1 for _, steps, _, _ in evaluations):  # evaluated during training (--eval-every)
            image = f"{file_name(row['env_id'])}_eval.png"
            plot_evaluations(row["env_id"], evaluations, row["threshold"], os.path.join(out_dir, image),
                             f"{row['env_id']}, {script}")
            images[row["env_id"]].append(f"![{row['env_id']} evaluations]({image})")
    # the title names every script and tag whose rows the table may still hold
    scripts = list(dict.fromkeys(scripts + [script])) if kept else [script]
    tags = list(dict.fromkeys(tags + [exp_name])) if kept else [exp_name]
    with open(path, "w") as f:
        f.write(f"# Benchmark of {', '.join(scripts)} (runs tagged {', '.join(tags)})\n\n"
                "Evaluation return: the deterministic policy after training, mean ± std over seeds of each "
                "seed's mean evaluation return. Solved: seeds whose evaluation mean reached the threshold. "
                "Curves: mean of the last 10 training episodes, averaged over seeds; where runs evaluated during "
                "training (--eval-every), each seed's evaluation return against steps and wall time, and the "
                "steps and seconds at which it first reached the threshold.\n\n"
                + TABLE_HEADER + "".join(line + "\n" for line in lines.values()) + "\n"
                + "".join(image + "\n" for env_id in lines for image in images.get(env_id, [])))
    return rows


# ---------------------------------------------------------------- the command

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, script_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = replace(tyro.cli(Args, args=ours), script_args=tuple(script_args))
    parse_solved(args.solved)  # bad input is refused before anything runs
    exp_name = args.exp_name or f"bench_{os.path.splitext(os.path.basename(args.script))[0]}"
    env_ids, seeds = args.env_ids, args.seeds
    failures = []
    lock = threading.Lock()

    def say(line: str):
        with lock:  # whole lines, even from several threads
            print(line, flush=True)

    if not args.report_only:
        script = resolve_script(args.script)
        for arg in args.script_args:
            if arg.split("=")[0].replace("_", "-") in ("--env-id", "--seed", "--exp-name"):
                fail(f"{arg} after --: use sweep.py's own --env-ids, --seeds and --exp-name instead")
        if args.jobs <= 0 or args.cpus_per_run <= 0:
            fail("--jobs and --cpus-per-run must be positive")
        env_ids, seeds = env_ids or DEFAULT_ENV_IDS, seeds or DEFAULT_SEEDS
        os.makedirs(os.path.join(args.out_dir, "logs"), exist_ok=True)
        jobs = [{"number": number, "env_id": env_id, "seed": seed,
                 "argv": ["--env-id", env_id, "--seed", str(seed), "--exp-name", exp_name, *args.script_args],
                 "log": os.path.join(args.out_dir, "logs", f"{file_name(env_id)}__{seed}.log")}
                for number, (env_id, seed) in enumerate(((e, s) for e in env_ids for s in seeds), start=1)]
        sweep = sweep_on_ray if args.ray_address else sweep_locally
        for job, code, seconds in sweep(script, jobs, args, say):
            label = f"[{job['number']}/{len(jobs)}] {job['env_id']} seed {job['seed']}"
            if code == 0:
                run = find_runs(exp_name, [job["env_id"]], [job["seed"]])
                # the run's own wall time (training and evaluation, from summary.json), as in the table
                result = (f"eval {run[0]['eval_mean']:.1f}, wall time {run[0]['wall_time']:.1f} s" if run
                          else f"no summary.json written (process {seconds:.1f} s)")
                say(f"{label}: done, {result}")
            else:
                failures.append(f"{job['env_id']} seed {job['seed']} (exit {code}), see {job['log']}")
                say(f"{label}: FAILED (exit {code}), see {job['log']}")

    runs = find_runs(exp_name, env_ids, seeds)
    if runs:
        os.makedirs(args.out_dir, exist_ok=True)
        rows = write_report(runs, parse_solved(args.solved, runs), args.out_dir, os.path.basename(args.script), exp_name)
        print("\n" + markdown_table(rows))
        print(f"wrote the rows above ({len(runs)} run(s)) and their plots into "
              f"{os.path.join(args.out_dir, 'results.md')}; the rows of other environments already there are kept")
    elif args.report_only:
        fail(f"no finished runs tagged {exp_name} under {RUNS_DIR}/; check --exp-name, --env-ids and --seeds, "
             "or run the sweep without --report-only")
    else:
        print("no run finished, so no report was written")
    if failures:
        print(f"{len(failures)} run(s) failed:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
