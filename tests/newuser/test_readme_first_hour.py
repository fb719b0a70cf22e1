"""The README's "first hour" runs as written, from a folder laid out like a fresh clone: every `verirl` command of
that section (except the 10-minute quickstart, tested in tests/quickstart, and the real-benchmark line that needs a
VerilogEval checkout) succeeds in order, and each leaves what the README says it leaves."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil

import pytest

from .conftest import ROOT, run_verirl

SECTION = "## Your first hour"


def readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    assert SECTION in text, f"README.md lost its {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("verirl "):
                commands.append(line)
    return commands


def test_the_readme_names_every_step():
    commands = readme_commands()
    for step in ("verirl quickstart", "verirl models tiny", "verirl train --config recipes/tiny/", "verirl eval ",
                 "verirl push ", "--dry-run"):
        assert any(step in c for c in commands), f"the README's first hour lacks {step!r}"


@pytest.mark.slow
@pytest.mark.eda
def test_first_hour_commands_run_from_a_fresh_clone(eda, tmp_path):
    shutil.copytree(os.path.join(ROOT, "recipes"), tmp_path / "recipes")
    ran = []
    for command in readme_commands():
        if command.startswith("verirl quickstart") or "../" in command:
            continue
        args = shlex.split(command)[1:]
        proc = run_verirl(args, cwd=tmp_path, timeout=1800)
        assert proc.returncode == 0, f"`{command}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        ran.append((command, proc))
    assert len(ran) >= 6
    runs = tmp_path / "runs" / "tiny"
    record = json.loads((runs / "grpo" / "verirl_run.json").read_text())
    assert record["recipe_file"] == "recipes/tiny/grpo.yaml" and record["versions"]["trl"]
    overridden = json.loads((runs / "grpo4" / "verirl_run.json").read_text())
    assert overridden["recipe"]["max_steps"] == 4 and overridden["global_step"] == 4
    assert json.loads((runs / "eval" / "summary.json").read_text())["pass_at_k"]
    push = ran[-1][1]
    assert "nothing was uploaded" in push.stdout
    assert "- Base model: a local model folder, `runs/tiny/model`" in push.stdout
    assert "| `loss` |" in push.stdout and "| tasks |" in push.stdout
