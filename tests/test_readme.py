"""The README's results block is what ``benchmarks/readme_results.py`` generates from the results JSON."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_are_generated_from_json():
    proc = subprocess.run([sys.executable, "benchmarks/readme_results.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    import re

    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (ROOT / target).exists(), f"README links to {target}, which is not in the repository"


def test_refusal_is_the_errors_first_sentence():
    sys.path.insert(0, str(ROOT))
    from benchmarks.readme_results import refusal

    tail = "[build 1s] T=9: over budget\nerror: X does not fit (1.5x the\n RAM). Train it with fewer bits"
    assert refusal(tail) == "X does not fit (1.5x the RAM)"
    assert refusal("error: over budget: BRAM36 250 > 180.5") == "over budget: BRAM36 250 > 180.5"
