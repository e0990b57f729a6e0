"""The set-up promised in the README: two commands, the same pins everywhere, CI calls the tests."""
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def pinned(requirements):
    return {re.split(r"[=<>\[ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in requirements}


def test_environment_yml_has_the_pins_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = pinned(project["dependencies"] + project["optional-dependencies"]["dev"])
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = pinned(line.strip()[2:] for line in pip_section.splitlines()
                    if line.strip().startswith("- ") and not line.strip().startswith("- -e"))
    assert listed == wanted
    assert "python=3.11" in text


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_nbgrader_config_points_at_solutions_and_notebooks():
    config = (ROOT / "nbgrader_config.py").read_text()
    assert 'source_directory = "solutions"' in config and 'release_directory = "notebooks"' in config
