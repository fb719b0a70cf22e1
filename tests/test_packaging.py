"""The installed packages are this repository's, and `rewards` stays a light leaf package."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_packages_come_from_this_repository():
    import data_pipeline
    import rewards
    import verirl

    for module in (rewards, data_pipeline, verirl):
        assert os.path.dirname(os.path.dirname(os.path.abspath(module.__file__))) == ROOT, module.__file__


def test_rewards_imports_no_torch_and_no_upper_layers():
    code = ("import sys, rewards, rewards.trl, rewards.pool, rewards.hierarchy, rewards.sandbox; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'trl', 'transformers', 'verirl', "
            "'data_pipeline')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_console_script_is_installed():
    bindir = os.path.dirname(sys.executable)
    assert os.path.exists(os.path.join(bindir, "verirl"))
