"""The sandbox: scrubbed environment, limits, group kill, bounded output."""

from __future__ import annotations

import os
import time

import pytest

from rewards.sandbox import Limits, SandboxConfig, Workspace, capabilities


def test_argv_string_is_refused():
    with Workspace({}) as ws, pytest.raises(TypeError):
        ws.run("echo hi", timeout=5)


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("WANDB_API_KEY", "secret2")
    with Workspace({}) as ws:
        result = ws.run(["env"], timeout=10)
    assert result.ok
    assert "secret" not in result.stdout
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert names <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PWD", "SHLVL", "_"}


def test_timeout_kills_the_whole_process_group():
    with Workspace({}) as ws:
        start = time.monotonic()
        result = ws.run(["sh", "-c", "sleep 30 & sleep 30; echo never"], timeout=0.5)
    assert result.timed_out and time.monotonic() - start < 5
    assert "never" not in result.stdout


def test_output_flood_is_cut_and_killed():
    config = SandboxConfig(limits=Limits(output_bytes=4096))
    with Workspace({}, config) as ws:
        start = time.monotonic()
        result = ws.run(["yes"], timeout=10)
    assert result.output_flood and len(result.stdout) <= 4096 and time.monotonic() - start < 5


def test_memory_cap():
    config = SandboxConfig(limits=Limits(memory_mb=64))
    with Workspace({}, config) as ws:
        result = ws.run(["python3", "-c", "x = bytearray(512 * 1024 * 1024)"], timeout=20)
    assert result.returncode != 0
    assert "MemoryError" in result.stderr


def test_file_size_cap():
    config = SandboxConfig(limits=Limits(file_size_mb=1))
    with Workspace({}, config) as ws:
        result = ws.run(["sh", "-c", "head -c 5000000 /dev/zero > big.bin"], timeout=20)
        size = os.path.getsize(os.path.join(ws.path, "big.bin"))
    assert size <= 1024 * 1024 and result.returncode != 0


def test_workspace_is_removed():
    with Workspace({"a.txt": "hello"}) as ws:
        path = ws.path
        assert open(os.path.join(path, "a.txt")).read() == "hello"
    assert not os.path.exists(path)


def test_file_names_must_stay_inside():
    with Workspace({}) as ws:
        for bad in ["/etc/x", "../x", "a/../../x", ""]:
            with pytest.raises(ValueError):
                ws.write(bad, "x")


@pytest.mark.skipif(not capabilities()["drop_privileges"], reason="needs root and setpriv to drop privileges")
def test_tools_run_as_nobody_and_cannot_write_outside():
    with Workspace({}) as ws:
        result = ws.run(["sh", "-c", "id -u; touch /root/verirl_x 2>&1; touch ./inside && echo wrote"], timeout=10)
    assert result.stdout.splitlines()[0] == "65534"
    assert "wrote" in result.stdout
    assert not os.path.exists("/root/verirl_x")


@pytest.mark.skipif(not capabilities()["isolate_network"], reason="needs unshare --net (root or user namespaces)")
def test_no_network():
    with Workspace({}) as ws:
        result = ws.run(["python3", "-c", "import socket; s = socket.socket(); s.settimeout(2); "
                         "print(s.connect_ex(('127.0.0.1', 22)))"], timeout=10)
    # in an empty network namespace even loopback is down: connect fails at once
    assert result.stdout.strip() not in ("0", "")
