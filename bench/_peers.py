"""Install third-party peers into private virtual environments, for benchmarks only.

Peers never enter the project's own environment: two of them even share the import
name ``teleinfo``. Each gets its own venv under ``bench/.peers/<name>`` (git-ignored).
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent / ".peers"


def peer_python(name: str, requirement: str) -> Path | None:
    """Return the python of a venv with ``requirement`` installed, or None if impossible."""
    env_dir = PEERS_DIR / name
    python = env_dir / "bin" / "python"
    stamp = env_dir / ".installed"
    if stamp.exists() and stamp.read_text() == requirement:
        return python
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    # pyteleinfo declares Python >= 3.12 but its code runs on 3.11; the benchmark
    # measures it on the same interpreter as wesh.
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--ignore-requires-python", requirement],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f"bench: could not install {requirement}: {result.stderr[-500:]}", file=sys.stderr)
        return None
    stamp.write_text(requirement)
    return python
