"""README's reader's map must stay true, README must stay short, and benchmarks/README.md's pictures must exist."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BENCHMARKS_README = os.path.join(ROOT, "benchmarks", "README.md")


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def map_rows():
    section = read(README).split("## How to read a script", 1)[1].split("\n## ", 1)[0]
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
            source = read(os.path.join(ROOT, script))
            for name in re.findall(r"`([^`]+)`", cell):
                name = name.removeprefix("block ").strip()
                assert name in source, f"{name!r} from README's map is not in {script}"
                checked += 1
    assert checked >= 30


def test_readme_is_short_and_gives_no_line_numbers_of_the_scripts():
    readme = read(README)
    assert len(readme.splitlines()) <= 250, "README.md is for a newcomer: at most 250 lines; move detail to benchmarks/README.md"
    assert not re.search(r"\blines? \d+", readme), "line numbers of the scripts go stale; name the function or block instead"


def test_every_environment_the_readmes_name_exists_in_this_gymnasium():
    import gymnasium as gym
    import pendulum_env  # noqa: F401  registers SwingUpPendulum-v0
    for path in (README, BENCHMARKS_README):
        text = read(path)
        named = set(re.findall(r"\b([A-Z][A-Za-z0-9]+-v\d+)\b", text))
        # an id that the text also gives as `module:id` is registered by that module (an example of one's own env)
        own = set(re.findall(r"\w:([A-Z][A-Za-z0-9]+-v\d+)\b", text))
        if path == README:
            assert {"CartPole-v1", "SwingUpPendulum-v0", "Taxi-v4"} <= named
        assert sorted(named - own - set(gym.registry)) == [], path


def test_benchmarks_readme_exists_and_every_picture_it_links_exists():
    text = read(BENCHMARKS_README)
    pictures = re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", text)
    assert len(pictures) >= 10
    for picture in pictures:
        assert os.path.isfile(os.path.join(ROOT, "benchmarks", picture)), f"benchmarks/README.md links {picture}, which is missing"


def test_readme_links_to_the_full_report_and_it_links_back():
    assert "benchmarks/README.md" in read(README)
    assert "../README.md" in read(BENCHMARKS_README)
