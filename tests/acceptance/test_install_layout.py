"""A run inside the repository writes its default --out under results/DATASET-BACKBONE:
git ignores it, while the published leaderboards stay tracked (.gitignore)."""

import shutil
import subprocess

import pytest
from conftest import REPO


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(),
                    reason="not a git checkout")
def test_default_outputs_are_ignored_and_published_results_are_not():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0
    assert ignored("results/digits-smallcnn/records/x.json")     # a run's default --out
    assert ignored("results/flowers-resnet18")
    for published in ("results/README.md", "results/digits-quick.md",
                      "results/digits-quick/records/x.json", "results/flowers-quick.md",
                      "results/flowers-quick-accuracy.png"):
        assert not ignored(published), published
