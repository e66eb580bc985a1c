"""What a user sees of the package on the index: license, links, metadata, install hints."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_license_file_matches_the_declared_license() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_metadata_names_authors_and_urls() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["authors"]
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(project["urls"])
    assert all(url.startswith("https://") for url in project["urls"].values())


def test_readme_links_work_on_the_package_index() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", (ROOT / "README.md").read_text())
    assert links
    assert [link for link in links if not link.startswith("https://")] == []


def test_strategies_without_hypothesis_say_which_extra_to_install() -> None:
    script = (
        "import sys\nsys.modules['hypothesis'] = None\n"
        "try:\n    import harness.strategies\n"
        "except ModuleNotFoundError as error:\n    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == (
        "harness.strategies needs Hypothesis, which comes with the testing extra: "
        "pip install 'direktiv-sdk[testing]'\n"
    )
