"""README's reader's map must stay true: every name it points to exists in the script it names."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def map_rows():
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## How to read the scripts", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")]
    header, *body = rows
    scripts = [cell.strip(" `") for cell in header.strip("|").split("|")[1:3]]
    return scripts, [[cell.strip() for cell in row.strip("|").split("|")] for row in body]


def test_the_map_covers_every_step_of_ppo():
    scripts, rows = map_rows()
    assert scripts == ["ppo_discrete.py", "ppo_continuous_beta.py"]
    steps = " ".join(row[0] for row in rows)
    for step in ("rollout", "GAE", "clipped surrogate", "value loss", "entropy", "mini-batch epochs",
                 "truncation bootstrapping", "Beta"):
        assert step in steps


def test_every_name_in_the_map_exists_in_its_script():
    scripts, rows = map_rows()
    checked = 0
    for row in rows:
        for script, cell in zip(scripts, row[1:3]):
            source = open(os.path.join(ROOT, script)).read()
            for name in re.findall(r"`([^`]+)`", cell):
                name = name.removeprefix("block ").strip()
                assert name in source, f"{name!r} from README's map is not in {script}"
                checked += 1
    assert checked >= 30


def test_the_lines_readme_gives_for_the_banner_and_the_rollout_are_right():
    readme = open(os.path.join(ROOT, "README.md")).read()
    stated = re.search(r"banner at line (\d+) of `ppo_discrete.py` and (\d+) of `ppo_continuous_beta.py`", readme)
    rollout = re.search(r"rollout loop starts at\s+line (\d+) and\s+(\d+)", readme)
    for i, script in enumerate(("ppo_discrete.py", "ppo_continuous_beta.py")):
        lines = open(os.path.join(ROOT, script)).read().splitlines()
        assert lines[int(stated[i + 1]) - 1].startswith("# ---") and "Below:" in lines[int(stated[i + 1]) - 1]
        assert "for step in range(" in lines[int(rollout[i + 1]) - 1]


def test_every_environment_readme_names_exists_in_this_gymnasium():
    import gymnasium as gym
    import pendulum_env  # noqa: F401  registers SwingUpPendulum-v0
    readme = open(os.path.join(ROOT, "README.md")).read()
    named = set(re.findall(r"\b([A-Z][A-Za-z0-9]+-v\d+)\b", readme))
    assert {"CartPole-v1", "SwingUpPendulum-v0", "Taxi-v4"} <= named
    assert sorted(named - set(gym.registry)) == []
