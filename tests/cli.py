"""Running the installed `promisebot` command as a user would."""

import os
import subprocess
import sys
from pathlib import Path

PROMISEBOT = Path(sys.executable).parent / "promisebot"


def run_validate(*args: str) -> subprocess.CompletedProcess[str]:
    """`promisebot validate ARGS`, output captured as text; never raises on its exit code."""
    return subprocess.run([str(PROMISEBOT), "validate", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
