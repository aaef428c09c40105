"""Start-up: `fusebench --help` (and a command's --help) imports neither torch nor the config schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "lightning", "fusebench.config", "scipy", "statsmodels", "matplotlib", "jinja2", "ray")


def _imported_after(args: list[str]) -> set[str]:
    code = (
        "import sys\nfrom fusebench.cli import app\ntry:\n    app(" + repr(args) + ")\nexcept SystemExit:\n"
        "    pass\nprint('@@MODULES@@', ' '.join(sorted(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.rpartition("@@MODULES@@")[2].split())


def test_help_imports_nothing_heavy() -> None:
    for args in (["--help"], ["train", "--help"], ["study", "--help"]):
        modules = _imported_after(args)
        assert not {m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY}, args
