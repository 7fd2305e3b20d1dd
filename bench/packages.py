"""Debian packages the benchmarks drive (InspIRCd, biboumi, wrk), installed when missing.

The test suite does not need them, so `.ci/run` does not install them; a benchmark run on a
fresh machine (as root) fetches what it lacks instead of failing half-way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def ensure_packages(executables: dict[str, str]) -> None:
    """Install, with apt-get, each package (key) whose executable (value) is not found."""
    missing = [
        package
        for package, executable in executables.items()
        if not shutil.which(executable) and not Path(f"/usr/sbin/{executable}").exists()
    ]
    if not missing:
        return
    print(f"installing {' '.join(missing)} (apt-get)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
