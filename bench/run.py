"""Run every benchmark of ``bench/`` (``make bench``); pass ``--quick`` for a short run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Run each ``bench/*.py`` script (not starting with ``_``) in turn."""
    failures = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name.startswith("_") or script.name == "run.py":
            continue
        print(f"\n=== {script.name} ===", flush=True)
        rc = subprocess.run([sys.executable, str(script), *sys.argv[1:]], check=False).returncode
        if rc != 0:
            print(f"bench: {script.name} failed with exit code {rc}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
