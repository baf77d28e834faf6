"""benchmarks/sweep.py: a tiny sweep end to end, a failing run, --report-only, the statistics, and the Ray path."""

import contextlib
import glob
import io
import json
import os
import re
import sys

import numpy as np
import pytest

from benchmarks import sweep as sweep_runner

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ppo_discrete.py")
TINY = ["--", "--total-timesteps", "2048", "--num-envs", "4", "--num-steps", "64", "--eval-episodes", "2",
        "--eval-every", "4"]


def table_means(markdown: str) -> dict[str, float]:
    """{env_id: mean} read back from the rows of results.md."""
    return {match[0]: float(match[1]) for match in re.findall(r"^\| (\S+) \| (-?[\d.]+) ± ", markdown, re.M)}


def summaries(env_id: str) -> list[dict]:
    return [json.load(open(path)) | {"run_dir": os.path.dirname(path)}
            for path in sorted(glob.glob(f"runs/{env_id}__*/summary.json"))]


def is_png(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 5000


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One tiny sweep (CartPole-v1 and Acrobot-v1 x 2 seeds), run once for the tests that read it."""
    folder = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            code = sweep_runner.main(["--script", SCRIPT, "--env-ids", "CartPole-v1", "Acrobot-v1", "--seeds", "1",
                                      "2", "--jobs", "2", *TINY])
    return folder, code, output.getvalue()


def test_sweep_writes_table_and_plots(sweep, monkeypatch):
    folder, code, output = sweep
    monkeypatch.chdir(folder)
    assert code == 0
    assert len(os.listdir("runs")) == 4 and len(os.listdir("sweep_results/logs")) == 4
    results = open("sweep_results/results.md").read()
    means = table_means(results)
    assert set(means) == {"CartPole-v1", "Acrobot-v1"}
    for env_id in means:
        runs = summaries(env_id)
        assert len(runs) == 2 and all(run["args"]["exp_name"] == "bench_ppo_discrete" for run in runs)
        assert means[env_id] == pytest.approx(np.mean([run["eval_mean"] for run in runs]), abs=0.051)
        assert is_png(f"sweep_results/{env_id}.png")
        # evaluated at iterations 4 and 8 and after training: plotted against steps and wall time
        assert is_png(f"sweep_results/{sweep_runner.file_name(env_id)}_eval.png")
        for run in runs:
            steps, seconds, values = sweep_runner.evaluation_curve(run)
            assert steps.tolist() == [1024, 2048, 2048] and values[-1] == pytest.approx(run["eval_mean"])
            assert 0 < seconds[0] < seconds[1] <= run["wall_time"] + 1
        # one wall time: the live line of each run gives the summary.json figure the table's median is taken of
        for run in runs:
            assert f"{env_id} seed {run['args']['seed']}: done, eval {run['eval_mean']:.1f}, wall time " \
                   f"{run['wall_time']:.1f} s" in output


def test_report_only_rebuilds_the_same_table(sweep, monkeypatch, capsys):
    folder, _, _ = sweep
    monkeypatch.chdir(folder)
    before = sorted(os.listdir("runs"))
    # the sweep's own command with --report-only
    assert sweep_runner.main(["--script", SCRIPT, "--env-ids", "CartPole-v1", "Acrobot-v1", "--seeds", "1", "2",
                           "--report-only", "--out-dir", "again", *TINY]) == 0
    # no filters: every env id and seed of the sweep's exp name, env ids in alphabetical order
    assert sweep_runner.main(["--script", SCRIPT, "--report-only", "--out-dir", "all"]) == 0
    assert sorted(os.listdir("runs")) == before  # nothing trained
    assert "started" not in capsys.readouterr().out
    table = open("sweep_results/results.md").read()
    assert open("again/results.md").read() == table
    assert table_means(open("all/results.md").read()) == table_means(table)
    assert is_png("again/CartPole-v1.png") and is_png("again/Acrobot-v1.png")


def test_reporting_one_row_keeps_the_other_rows_and_their_plots(sweep, monkeypatch, tmp_path):
    """README's one-row reproduction into the published folder: the other environments' rows stay, in their
    order, with their plots; only the row that was run changes."""
    folder, _, _ = sweep
    monkeypatch.chdir(folder)
    published = os.path.join(os.path.dirname(SCRIPT), "benchmarks", "results", "discrete")
    out = tmp_path / "published"
    out.mkdir()
    for name in ("results.md", "Acrobot-v1.png", "CartPole-v1.png", "LunarLander-v3.png"):
        (out / name).write_bytes(open(os.path.join(published, name), "rb").read())
    before = (out / "results.md").read_text().splitlines()
    assert sweep_runner.main(["--script", SCRIPT, "--env-ids", "CartPole-v1", "--seeds", "1", "2", "--report-only",
                              "--out-dir", str(out)]) == 0
    after = (out / "results.md").read_text().splitlines()
    rows = [line for line in after if line.startswith("| ") and not line.startswith("| environment")]
    assert [row.split(" | ")[0] for row in rows] == ["| Acrobot-v1", "| CartPole-v1", "| LunarLander-v3"]
    assert rows[0] in before and rows[2] in before and rows[1] not in before
    cartpole = np.mean([run["eval_mean"] for run in summaries("CartPole-v1")])
    assert table_means("\n".join(after))["CartPole-v1"] == pytest.approx(cartpole, abs=0.051)
    for env_id in ("Acrobot-v1", "LunarLander-v3"):
        assert f"![{env_id}]({env_id}.png)" in after
        assert (out / f"{env_id}.png").read_bytes() == open(os.path.join(published, f"{env_id}.png"), "rb").read()
    assert (out / "CartPole-v1.png").read_bytes() != open(os.path.join(published, "CartPole-v1.png"), "rb").read()
    assert is_png(out / "CartPole-v1.png") and "![CartPole-v1 evaluations](CartPole-v1_eval.png)" in after
    # the title names the tags of the runs the table may hold; the explanation stays
    assert after[0] == "# Benchmark of ppo_discrete.py (runs tagged results_discrete, bench_ppo_discrete)"
    assert after[1:3] == before[1:3]


def test_report_only_without_runs_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        sweep_runner.main(["--report-only", "--exp-name", "nothing_here"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("error: no finished runs tagged nothing_here")


def test_failed_run_is_reported_and_the_others_go_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = sweep_runner.main(["--script", SCRIPT, "--env-ids", "NoSuchEnv-v0", "CartPole-v1", "--seeds", "1",
                           "--jobs", "2", *TINY])
    out = capsys.readouterr().out
    assert code == 1
    log = os.path.join("sweep_results", "logs", "NoSuchEnv-v0__1.log")
    assert f"NoSuchEnv-v0 seed 1: FAILED (exit 2), see {log}" in out
    assert "1 run(s) failed" in out and "CartPole-v1 seed 1: done, eval " in out
    assert open(log).read().startswith("error: ")
    assert set(table_means(open("sweep_results/results.md").read())) == {"CartPole-v1"}


def test_bad_input_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["--script", "no_such_script.py"], ["--solved", "CartPole-v1"],
                 ["--script", SCRIPT, "--", "--seed", "4"]):
        with pytest.raises(SystemExit) as stop:
            sweep_runner.main(argv)
        assert stop.value.code == 2
        assert capsys.readouterr().err.startswith("error: ")


def fake_run(env_id, seed, eval_mean, wall_time=10.0, sps=1000.0, global_step=1000):
    return {"env_id": env_id, "seed": seed, "eval_mean": eval_mean, "wall_time": wall_time, "sps": sps,
            "global_step": global_step, "args": {"env_kwargs": []}}


def test_summarize_statistics():
    runs = [fake_run("CartPole-v1", 1, 500.0, wall_time=10.0, sps=900.0),
            fake_run("CartPole-v1", 2, 400.0, wall_time=30.0, sps=1100.0),
            fake_run("CartPole-v1", 3, 480.0, wall_time=20.0, sps=1000.0),
            fake_run("Made-up-v0", 1, -5.0)]
    cartpole, made_up = sweep_runner.summarize(runs, sweep_runner.parse_solved(("Made-up-v0=-1",)))
    assert cartpole["mean"] == pytest.approx(460.0)
    assert cartpole["std"] == pytest.approx(np.std([500.0, 400.0, 480.0]))
    assert (cartpole["seeds"], cartpole["wall_time"], cartpole["sps"]) == (3, 20.0, 1000.0)
    assert (cartpole["threshold"], cartpole["solved"]) == (475.0, 2)
    assert (made_up["threshold"], made_up["solved"]) == (-1.0, 0)
    table = sweep_runner.markdown_table([cartpole, made_up])
    assert ("| CartPole-v1 | 460.0 ± 43.2 | 500.0, 400.0, 480.0 | 3 | 1,000 | 20.0 s | 1,000 | 2/3 (≥ 475) | "
            "n/a |") in table  # these made-up runs never evaluated during training
    assert sweep_runner.summarize(runs[3:], {})[0]["solved"] is None
    assert "| n/a |" in sweep_runner.markdown_table(sweep_runner.summarize(runs[3:], {}))


def test_a_changed_physics_has_no_built_in_threshold():
    """-122 is a swing-up within 10% of the optimum of the default pendulum; a weaker motor has an optimum of its own,
    so its runs are judged only against a threshold the user gives."""
    default, weak = fake_run("SwingUpPendulum-v0", 1, -125.0), fake_run("SwingUpPendulum-v0", 1, -180.0)
    weak["args"] = {"env_kwargs": ["motor=3.0"]}
    assert sweep_runner.parse_solved((), [default])["SwingUpPendulum-v0"] == -122.0
    assert "SwingUpPendulum-v0" not in sweep_runner.parse_solved((), [weak])
    assert sweep_runner.parse_solved(("SwingUpPendulum-v0=-190",), [weak])["SwingUpPendulum-v0"] == -190.0
    [row] = sweep_runner.summarize([weak], sweep_runner.parse_solved((), [weak]))
    assert (row["threshold"], row["solved"]) == (None, None)


def test_smoothed_curve():
    grid = np.linspace(0, 40, 5)
    # episodes end at steps 10, 20, 30 with returns 1, 2, 3, given out of order
    curve = sweep_runner.smoothed_curve([30, 10, 20], [3.0, 1.0, 2.0], grid, window=2)
    # rolling means of the last two episodes: 1, 1.5, 2.5; held before the first and after the last
    np.testing.assert_allclose(curve, [1.0, 1.0, 1.5, 2.5, 2.5])
    halfway = sweep_runner.smoothed_curve([0, 100], [0.0, 10.0], np.array([50.0]), window=1)
    np.testing.assert_allclose(halfway, [5.0])


def test_plot_curves_writes_a_small_png(tmp_path):
    grid = np.linspace(0, 100, 100)
    path = str(tmp_path / "curve.png")
    sweep_runner.plot_curves("CartPole-v1", grid, [grid, grid * 2], 475.0, path)
    assert is_png(path) and os.path.getsize(path) < 100_000


def test_ray_sweep_brings_the_runs_home(tmp_path, monkeypatch, capsys):
    ray = pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    try:
        # `local` starts a Ray instance for this sweep; main shuts it down again
        code = sweep_runner.main(["--script", SCRIPT, "--env-ids", "CartPole-v1", "--seeds", "1", "2",
                               "--ray-address", "local", *TINY])
        assert not ray.is_initialized()
    finally:
        ray.shutdown()
    assert code == 0
    assert "CartPole-v1 seed 2: sent to Ray" in capsys.readouterr().out
    run_dirs = sorted(os.listdir("runs"))
    assert [name.split("__")[:3] for name in run_dirs] == [["CartPole-v1", "bench_ppo_discrete", "1"],
                                                            ["CartPole-v1", "bench_ppo_discrete", "2"]]
    for name in run_dirs:
        assert os.path.isfile(f"runs/{name}/summary.json")
        assert any(file.startswith("events.out.tfevents") for file in os.listdir(f"runs/{name}"))
    assert open("sweep_results/logs/CartPole-v1__1.log").read().count("evaluation over 2 episodes") == 1
    means = table_means(open("sweep_results/results.md").read())
    assert means["CartPole-v1"] == pytest.approx(np.mean([s["eval_mean"] for s in summaries("CartPole-v1")]),
                                                 abs=0.051)


def test_missing_ray_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(SystemExit) as stop:
        sweep_runner.main(["--script", SCRIPT, "--env-ids", "CartPole-v1", "--seeds", "1", "--ray-address", "auto"])
    assert stop.value.code == 2
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err


def test_both_actions_repeats_each_runs_own_evaluation(tmp_path, monkeypatch, capsys):
    """benchmarks/both_actions.py: a run evaluated at the mode and one at the mean; each file line repeats its run's
    own final evaluation at the action its command chose, and the last table averages the lines."""
    import ppo_continuous_beta as beta
    from benchmarks import both_actions

    monkeypatch.chdir(tmp_path)
    summaries = {}
    for seed, action in ((1, "mode"), (2, "mean")):
        result = beta.train(beta.Args(env_id="Pendulum-v1", exp_name="both", seed=seed, total_timesteps=2048,
                                      num_envs=4, num_steps=64, eval_episodes=3, save_model=True,
                                      deterministic_action=action))
        summaries[seed] = (action, json.load(open(f"{result['run_dir']}/summary.json"))["eval_mean"])
    assert both_actions.main(["--exp-name", "both", "--out-dir", "out"]) == 0
    rows = re.findall(r"^\| Pendulum-v1 \| (\d) \| (\w+) \| (-?[\d.]+) \| (-?[\d.]+) \|$",
                      open("out/both_actions.md").read(), re.M)
    assert len(rows) == 2
    for seed, action, at_mode, at_mean in rows:
        assert action == summaries[int(seed)][0]
        chosen = float(at_mode) if action == "mode" else float(at_mean)
        assert chosen == pytest.approx(summaries[int(seed)][1], abs=0.051)
    mean_row = re.search(r"^\| Pendulum-v1 \| 2 \| (-?[\d.]+) \| (-?[\d.]+) \|$", open("out/both_actions.md").read(),
                         re.M)
    assert float(mean_row[1]) == pytest.approx(np.mean([float(row[2]) for row in rows]), abs=0.051)
    assert float(mean_row[2]) == pytest.approx(np.mean([float(row[3]) for row in rows]), abs=0.051)
    # --sampled adds the sampled actions' returns; torch is seeded with the run's seed, so they repeat, and the two
    # deterministic columns are those above
    sampled_rows = []
    for _ in range(2):
        assert both_actions.main(["--exp-name", "both", "--out-dir", "out", "--sampled"]) == 0
        sampled_rows.append(re.findall(r"^\| Pendulum-v1 \| (\d) \| (\w+) \| (-?[\d.]+) \| (-?[\d.]+) \| (-?[\d.]+) \|$",
                                       open("out/both_actions.md").read(), re.M))
    assert sampled_rows[0] == sampled_rows[1] and [row[:4] for row in sampled_rows[0]] == rows
    assert all(-2000 < float(row[4]) < 0 for row in sampled_rows[0])  # Pendulum-v1 returns of 200 steps
    assert all(row[4] not in (row[2], row[3]) for row in sampled_rows[0])  # sampled, not a deterministic action
    # another sweep's environment already in the file keeps its line and its mean; this sweep's lines are replaced,
    # not repeated
    with open("out/both_actions.md", "w") as f:
        f.write("# earlier\n\ntext\n\n| environment | seed | action of the command | at the mode | at the mean |\n"
                "|---|---|---|---|---|\n| Hopper-v5 | 7 | mean | 1000.0 | 3000.0 |\n\n| mean table |\n")
    assert both_actions.main(["--exp-name", "both", "--out-dir", "out"]) == 0
    merged = open("out/both_actions.md").read()
    assert re.search(r"^\| Hopper-v5 \| 7 \| mean \| 1000.0 \| 3000.0 \|$", merged, re.M)
    assert re.search(r"^\| Hopper-v5 \| 1 \| 1000.0 \| 3000.0 \|$", merged, re.M)
    assert len(re.findall(r"^\| Pendulum-v1 \| \d \| \w+ \|", merged, re.M)) == 2
    assert both_actions.main(["--exp-name", "nothing", "--out-dir", "out"]) == 2
    assert "saved its agent" in capsys.readouterr().err
