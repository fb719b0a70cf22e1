"""The prepared GPU check (scripts/gpu_check.py, gpu_check.sh, prepare_gpu_travel.py) in its CPU forms.

The GPU run itself needs the device machine; here the same script runs in ``--tiny`` mode through its shell
wrapper, its failure handling (a failing phase, a phase past its time box, a run killed from outside) is exercised
with a test hook, the wrapper's private-prefix install is checked on a fake wheel and a fake ``.deb``, and the
travel preparation is checked with mocked downloads (plus a dry run against this machine's apt metadata).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
GPU_CHECK = os.path.join(SCRIPTS, "gpu_check.py")
WRAPPER = os.path.join(SCRIPTS, "gpu_check.sh")


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gpu_check = _load("verirl_gpu_check", GPU_CHECK)
prepare = _load("verirl_prepare_gpu_travel", os.path.join(SCRIPTS, "prepare_gpu_travel.py"))


def _write_ve(root: str) -> str:
    """The evaluation tests' three-problem VerilogEval-shaped checkout (tests/eval/conftest.py), plus a LICENSE."""
    write_ve = _load("verirl_eval_fixtures", os.path.join(ROOT, "tests", "eval", "conftest.py")).write_ve
    write_ve(root)
    with open(os.path.join(root, "LICENSE"), "w") as fh:
        fh.write("MIT License (test fixture)\n")
    return root


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    """A subprocess whose exit status the test checks itself (output captured as text)."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, check=False, **kwargs)


def _read(path) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _strict_json(path: str) -> dict:
    def no_constants(name):
        raise ValueError(f"{path} holds {name}: not strict JSON")

    with open(path, encoding="utf-8") as fh:
        return json.load(fh, parse_constant=no_constants)


def _number(value, positive: bool = False) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return ok and (value > 0 or not positive)


@pytest.fixture
def open_tmp():
    """A scratch folder others may enter (as /tmp/verirl-eda is): the sandbox runs tools as nobody."""
    import tempfile

    path = tempfile.mkdtemp(prefix="verirl-gpu-check-test-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _needs_eda():
    missing = [t for t in ("iverilog", "vvp", "yosys") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install -y iverilog yosys)")


# ------------------------------------------------------------------------------------------ the tiny run


@pytest.mark.slow
def test_tiny_run_through_the_wrapper_writes_sane_figures(tmp_path):
    """Every phase, on CPU, through gpu_check.sh: one strict-JSON report whose figures are sane numbers."""
    _needs_eda()
    travel = tmp_path / "travel"
    _write_ve(str(travel / "verilog-eval"))
    out = tmp_path / "out"
    proc = _run(["bash", WRAPPER, "--tiny", "--work", str(tmp_path / "work")], timeout=600, env=_env(OUT=str(out), VERIRL_TRAVEL=str(travel),
                                                           PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = _strict_json(str(out / "gpu_check.json"))
    assert (out / "gpu_check.log").read_text().count("gpu_check: phase") >= 2 * len(gpu_check.PHASES)
    assert report["schema"] == gpu_check.SCHEMA and report["mode"] == "tiny" and report["status"] == "complete"
    assert list(report["phases"]) == list(gpu_check.PHASES)
    for name, phase in report["phases"].items():
        assert phase["status"] == "ok", (name, phase.get("error"), phase.get("traceback"))
        assert _number(phase["seconds"], positive=True)

    p = report["phases"]
    assert p["environment"]["packages"]["trl"] and p["environment"]["doctor"]["self_test"] == "ok"
    assert p["environment"]["cuda"]["available"] in (True, False) and p["environment"]["cpus"] >= 1
    for batch in p["rewards"]["batches"].values():
        assert batch["completions"] == 2 * 4 and batch["same_verdicts"] is True
        assert all(_number(batch[k], positive=True) for k in ("naive_s", "pool_s", "speedup", "pool_per_s"))
    assert p["model"]["architecture"] == "Qwen2ForCausalLM" and p["model"]["parameters"] > 10_000
    sft = p["sft"]["figures"]
    assert sft["steps"] == 2 and _number(sft["loss_first"], True) and _number(sft["tokens_per_s"], True)
    for name in ("dapo_full", "dapo_lora"):
        f = p[name]["figures"]
        assert f["steps"] == 2, (name, f)
        for key in ("first_step_s", "step_s", "generation_s", "optimization_s", "generation_tokens_per_s",
                    "training_tokens_per_s"):
            assert _number(f[key], positive=True), (name, key, f[key])
        assert _number(f["reward_s"]) and 0.0 <= f["pass_rate"] <= 1.0
        assert f["completions_per_step"] >= 8 and f["mean_completion_tokens"] <= 16
        assert p[name]["rewards"][:2] == ["format", "simulation"] and p[name]["model_source"] == "sft"
    assert 0 < p["dapo_lora"]["trainable_parameters"] < p["model"]["parameters"]
    assert p["dapo_full"]["trainable_parameters"] == p["model"]["parameters"]
    ev = p["eval"]
    assert ev["benchmark"] == "verilog-eval-v2" and ev["problems"] == 3 and ev["samples"] == 3 * 2
    assert 0.0 <= ev["pass_at_1"] <= 1.0 and _number(ev["generation_tokens_per_s"], positive=True)
    assert ev["argv"][ev["argv"].index("--backend") + 1] == "hf"
    s = report["summary"]
    assert s["phases_ok"] == list(gpu_check.PHASES) and not s["phases_not_ok"]
    assert s["versions"]["trl"] and s["versions"]["torch"] and s["versions"]["iverilog"].startswith("Icarus")
    assert s["dapo_full"]["step_s"] == p["dapo_full"]["figures"]["step_s"]
    assert s["dapo_full"]["peak_gpu_gib"] is None and s["eval"]["problems"] == 3  # CPU: no GPU memory figure


def test_a_failing_phase_is_recorded_and_the_next_one_runs(tmp_path):
    """A vocabulary too small for the tokenizer fails `model`; `rewards` still runs; the run says partial."""
    out = tmp_path / "r.json"
    proc = _run([sys.executable, GPU_CHECK, "--tiny", "--phases", "model,rewards,sft", "--set", "vocab=10",
                           "--out", str(out), "--work", str(tmp_path / "w")],
                          timeout=300, env=_env())
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = _strict_json(str(out))
    assert report["status"] == "partial"
    model = report["phases"]["model"]
    assert model["status"] == "failed" and "vocab_size" in model["error"] and "Traceback" in model["traceback"]
    assert report["phases"]["sft"] == {"status": "skipped", "error": "needs the model phase, which did not succeed"}
    if shutil.which("iverilog"):
        assert report["phases"]["rewards"]["status"] == "ok"
    assert report["summary"]["phases_not_ok"] == {"model": "failed", "sft": "skipped"}


def test_a_phase_past_its_time_box_is_stopped_and_the_next_one_runs(tmp_path):
    out = tmp_path / "r.json"
    proc = _run([sys.executable, GPU_CHECK, "--tiny", "--phases", "rewards,environment", "--set",
                           "budgets.rewards=4", "--out", str(out), "--work", str(tmp_path / "w")], timeout=300,
                          env=_env(**{gpu_check.TEST_HANG_ENV: "rewards"}))
    assert proc.returncode == 1
    report = _strict_json(str(out))
    rewards = report["phases"]["rewards"]
    assert rewards["status"] == "timeout" and "4 s time box" in rewards["error"]
    assert report["phases"]["environment"]["status"] in ("ok", "failed")  # it ran (failed only without EDA tools)
    assert "packages" in report["phases"]["environment"]
    if "pid" in rewards:  # the hook wrote it before the box closed: the hung process is gone
        with pytest.raises(ProcessLookupError):
            os.kill(rewards["pid"], 0)


def test_a_run_stopped_from_outside_leaves_its_results(tmp_path):
    """SIGTERM while a phase runs: the finished phases' figures and the phase in flight are in the JSON."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, GPU_CHECK, "--tiny", "--phases", "environment,rewards", "--out",
                             str(out), "--work", str(tmp_path / "w")], env=_env(**{gpu_check.TEST_HANG_ENV:
                                                                                   "rewards"}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        hung = None
        while time.monotonic() < deadline:  # wait for the event: the report shows the hook's hung phase
            rewards = (_strict_json(str(out)) if out.exists() else {}).get("phases", {}).get("rewards", {})
            if rewards.get("hanging"):
                hung = rewards["pid"]
                break
            time.sleep(0.2)
        assert hung, "the rewards phase never reported that it hangs"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    report = _strict_json(str(out))
    assert report["status"] == "terminated" and "SIGTERM" in report["error"]
    assert report["phases"]["environment"]["status"] in ("ok", "failed")
    assert report["phases"]["environment"]["packages"]["torch"]
    assert report["phases"]["rewards"]["status"] == "terminated"
    with pytest.raises(ProcessLookupError):  # the phase in flight did not outlive the run
        os.kill(hung, 0)


# ------------------------------------------------------------------------------------------ pieces


def test_settings_overrides_are_typed_and_checked():
    s = gpu_check.apply_overrides(gpu_check.GPU, ["eval_tokens=64", "device=cpu", "bf16=false", "budgets.eval=9",
                                                  "sft_lr=1e-3"])
    assert (s.eval_tokens, s.device, s.bf16, s.budgets["eval"], s.sft_lr) == (64, "cpu", False, 9.0, 1e-3)
    assert gpu_check.GPU.budgets["eval"] == 100  # the mode's defaults are left alone
    for bad, words in (("nope=1", "KEY=VALUE"), ("layers=two", "takes a int"), ("bf16=maybe", "takes a bool"),
                       ("budgets.train=3", "budgets.PHASE"), ("layers", "KEY=VALUE"), ("device=tpu", "cpu or cuda")):
        with pytest.raises(ValueError, match=words):
            gpu_check.apply_overrides(gpu_check.GPU, [bad])


def test_gpu_settings_fit_the_time_limit_and_the_model_is_about_half_a_billion_parameters():
    s = gpu_check.GPU
    assert sum(s.budgets.values()) <= 480 and set(s.budgets) == set(gpu_check.PHASES)
    assert s.device == "cuda" and s.bf16 and s.eval_problems == 20
    per_layer = 2 * s.hidden * s.hidden + 2 * s.hidden * (s.hidden // s.heads) * s.kv_heads + 3 * s.hidden * s.intermediate
    assert 0.4e9 < s.layers * per_layer + s.vocab * s.hidden < 0.6e9


def test_summarize_rl_reports_the_first_step_apart_and_derives_rates():
    log = [
        {"step_time": 9.0, "timing/generation_s": 5.0, "timing/reward_s": 2.0, "timing/optimization_s": 2.0,
         "num_tokens": 1000.0, "completions/mean_length": 50.0, "dynamic_sampling/groups_generated": 4.0},
        {"step_time": 3.0, "timing/generation_s": 2.0, "timing/reward_s": 0.5, "timing/optimization_s": 0.5,
         "num_tokens": 2200.0, "completions/mean_length": 40.0, "dynamic_sampling/groups_generated": 6.0,
         "simulation/failure/mismatch": 0.25, "reward": 0.5, "pass_rate/all": 0.1},
        {"step_time": 5.0, "timing/generation_s": 2.0, "timing/reward_s": 1.5, "timing/optimization_s": 1.5,
         "num_tokens": 3000.0, "completions/mean_length": 60.0, "simulation/failure/mismatch": 0.75},
        {"train_runtime": 17.0},
    ]
    f = gpu_check.summarize_rl(log, batch=32, generations=8)
    assert f["steps"] == 3 and f["first_step_s"] == 9.0 and f["step_s"] == 4.0
    assert f["generation_s"] == 2.0 and f["reward_s"] == 1.0 and f["optimization_s"] == 1.0
    # completions: 6 groups x 8 and (no dynamic-sampling figure) 32; tokens 48*40 + 32*60 over 4 s of generation
    assert f["completions_per_step"] == (48 + 32) / 2
    assert f["generation_tokens_per_s"] == pytest.approx((48 * 40 + 32 * 60) / 4.0)
    assert f["training_tokens_per_s"] == pytest.approx((1200 + 800) / 2.0)
    assert f["reward_completions_per_s"] == pytest.approx(80 / 2.0)
    assert f["failure_fractions"] == {"simulation/failure/mismatch": 0.5}
    assert gpu_check.summarize_rl([{"loss": 1.0}], 8, 4) == {"steps": 0}


def test_report_json_is_strict():
    assert gpu_check._clean({"a": float("nan"), "b": [float("inf"), 1.0], 3: {"c": -float("inf")}}) == {
        "a": None, "b": [None, 1.0], "3": {"c": None}}


# ------------------------------------------------------------------------------------------ the wrapper


def _fake_wheel(folder) -> str:
    path = os.path.join(folder, "fakepkg-1.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fakepkg/__init__.py", "VALUE = 42\n")
        zf.writestr("fakepkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.0\n")
        zf.writestr("fakepkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                   "Tag: py3-none-any\n")
        zf.writestr("fakepkg-1.0.dist-info/RECORD", "")
    return path


def _fake_deb(folder, tmp) -> str:
    """A .deb shaped like iverilog's: tools that print their arguments and library path, an ivl folder."""
    root = os.path.join(tmp, "debroot")
    os.makedirs(os.path.join(root, "DEBIAN"))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as fh:
        fh.write("Package: fake-eda\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n"
                 "Description: fake tools\n")
    for rel in ("usr/lib/x86_64-linux-gnu/ivl/vvp.tgt", "lib/x86_64-linux-gnu/libfake.so.1"):
        os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
        open(os.path.join(root, rel), "w").close()
    os.makedirs(os.path.join(root, "usr/bin"))
    for tool in ("iverilog", "vvp", "yosys"):
        with open(os.path.join(root, "usr/bin", tool), "w") as fh:
            fh.write(f'#!/bin/sh\necho "{tool} args: $*"\necho "{tool} libs: $LD_LIBRARY_PATH"\n'
                     f'echo "{tool} path: $PATH"\n')
        os.chmod(os.path.join(root, "usr/bin", tool), 0o755)
    path = os.path.join(folder, "fake-eda_1.0_all.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, path], check=True,
                   capture_output=True)
    return path


@pytest.mark.parametrize("unpacker", ["dpkg", "python"])
def test_wrapper_installs_wheels_and_debs_into_private_prefixes(tmp_path, open_tmp, unpacker):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb to build a test .deb (Debian/Ubuntu)")
    if unpacker == "dpkg" and shutil.which("dpkg") is None:
        pytest.skip("needs dpkg")
    travel = tmp_path / "travel"
    (travel / "wheels").mkdir(parents=True)
    (travel / "debs").mkdir()
    _fake_wheel(str(travel / "wheels"))
    _fake_deb(str(travel / "debs"), str(tmp_path))
    prefix, site = os.path.join(open_tmp, "eda"), tmp_path / "site"
    env = _env(OUT=str(tmp_path / "out"), VERIRL_TRAVEL=str(travel), VERIRL_EDA_PREFIX=str(prefix),
               VERIRL_SITE=str(site), PYTHON=sys.executable, GPU_CHECK_SETUP_ONLY="1")
    if unpacker == "python":
        env["GPU_CHECK_NO_DPKG"] = "1"
    proc = _run(["bash", WRAPPER], timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    exports = dict(line[len("export "):].split("=", 1) for line in proc.stdout.splitlines()
                   if line.startswith("export "))
    exports = {k: v.strip("'") for k, v in exports.items()}
    assert exports["PYTHONPATH"].split(":")[:2] == [ROOT, str(site)]  # the repo's packages come first
    check = _run([sys.executable, "-c", "import fakepkg; print(fakepkg.VALUE, fakepkg.__file__)"], env={"PATH": "/usr/bin:/bin",
                                                                "PYTHONPATH": exports["PYTHONPATH"]})
    assert check.stdout.startswith("42 " + str(site))
    ivl = f"{prefix}/usr/lib/x86_64-linux-gnu/ivl"
    libs = f"{prefix}/usr/lib/x86_64-linux-gnu:{prefix}/lib/x86_64-linux-gnu"
    for tool, flag in (("iverilog", f"-B{ivl} "), ("vvp", f"-M{ivl} "), ("yosys", "")):
        wrapper = exports[f"VERIRL_{tool.upper()}"]
        assert wrapper == f"{prefix}/bin/{tool}"
        # run as the sandbox runs tools: a scrubbed environment
        run = _run([wrapper, "-o", "x y.vvp"], env={"PATH": "/usr/bin:/bin"})
        assert run.stdout.splitlines() == [f"{tool} args: {flag}-o x y.vvp", f"{tool} libs: {libs}",
                                           f"{tool} path: {prefix}/usr/bin:/usr/bin:/bin"], run.stdout
        assert os.stat(wrapper).st_mode & 0o005 == 0o005  # others (the sandbox's nobody) may run it


@pytest.mark.parametrize("prefix", ["relative/eda", "/tmp/it's", "PRIVATE"])
def test_wrapper_refuses_a_prefix_its_wrappers_or_the_sandbox_cannot_use(tmp_path, open_tmp, prefix):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb to build a test .deb (Debian/Ubuntu)")
    if prefix == "PRIVATE":
        if os.geteuid() != 0:
            pytest.skip("only as root does the sandbox run tools as nobody")
        prefix = str(tmp_path / "eda")  # pytest's tmp folders are private to their owner
    travel = tmp_path / "travel"
    (travel / "debs").mkdir(parents=True)
    _fake_deb(str(travel / "debs"), str(tmp_path))
    proc = _run(["bash", WRAPPER], timeout=60,
                          env=_env(OUT=str(tmp_path / "out"), VERIRL_TRAVEL=str(travel), VERIRL_EDA_PREFIX=prefix,
                                   GPU_CHECK_SETUP_ONLY="1"))
    assert proc.returncode == 4 and "VERIRL_EDA_PREFIX" in proc.stderr, proc.stderr
    assert "export" not in proc.stdout


def test_wrapper_without_travel_uses_what_is_installed(tmp_path):
    proc = _run(["bash", WRAPPER], timeout=60,
                          env=_env(OUT=str(tmp_path / "out"), VERIRL_TRAVEL=str(tmp_path / "none"),
                                   GPU_CHECK_SETUP_ONLY="1"))
    assert proc.returncode == 0
    assert "using the installed Python packages" in proc.stderr and "using the EDA tools on PATH" in proc.stderr
    assert "VERIRL_IVERILOG" not in proc.stdout


def test_carried_eda_tools_pass_the_doctor_self_test(tmp_path, open_tmp):
    """With a prepared .gpu_travel: the unpacked Icarus and Yosys compile, simulate and synthesize in the sandbox."""
    debs = os.path.join(ROOT, ".gpu_travel", "debs")
    if not os.path.isdir(debs):
        pytest.skip("no .gpu_travel/debs: run scripts/prepare_gpu_travel.py first")
    env = _env(OUT=str(tmp_path / "out"), VERIRL_TRAVEL=str(tmp_path / "travel"),
               VERIRL_EDA_PREFIX=os.path.join(open_tmp, "eda"), GPU_CHECK_SETUP_ONLY="1")
    os.makedirs(tmp_path / "travel")
    os.symlink(debs, tmp_path / "travel" / "debs")
    proc = _run(["bash", WRAPPER], timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    tools = {k: v.strip("'") for k, v in (line[len("export "):].split("=", 1) for line in proc.stdout.splitlines()
                                          if line.startswith("export VERIRL_"))}
    assert set(tools) == {"VERIRL_IVERILOG", "VERIRL_VVP", "VERIRL_YOSYS"}
    doctor = _run([sys.executable, "-m", "verirl.cli", "doctor", "--json"],
                            timeout=120, env=_env(**tools))
    report = json.loads(doctor.stdout)
    assert report["self_test"] == "ok" and report["tools"]["iverilog"].startswith("Icarus Verilog version 11")


# ------------------------------------------------------------------------------------------ preparation


def _stanza(depends: str = "", size: int = 1000, version: str = "1.0") -> dict:
    return {"Version": version, "Size": str(size), "Depends": depends}


FAKE_APT = {
    "iverilog": _stanza("libbz2-1.0, libc6 (>= 2.34), libreadline8 (>= 6.0), libstdc++6 (>= 11), zlib1g", 2000),
    "yosys": _stanza("libc6 (>= 2.35), libffi8 (>= 3.4), libtcl8.6 (>= 8.6.0), python3:any, python3-click, "
                     "berkeley-abc (>= 1.01), xdot", 3000),
    "libbz2-1.0": _stanza("libc6 (>= 2.4)"),
    "libreadline8": _stanza("readline-common, libc6 (>= 2.33), libtinfo6 (>= 6)"),
    "libffi8": _stanza("libc6"),
    "libtcl8.6": _stanza("tzdata, libc6 (>= 2.35), zlib1g (>= 1:1.2.2)"),
    "berkeley-abc": {**_stanza("libbz2-1.0, libreadline8 | libedit2"), "Pre-Depends": "libzstd-fake"},
    "libzstd-fake": _stanza(),
}


def _fake_show(name: str) -> dict:
    if name not in FAKE_APT:
        raise prepare.PrepareError(f"apt-cache knows no package {name!r} (asked by the test)")
    return FAKE_APT[name]


def test_parse_depends_takes_first_alternatives_without_versions_or_qualifiers():
    assert prepare.parse_depends("a (>= 1), b:any | c, d [amd64], e:amd64 (<< 2)") == ["a", "b", "d", "e"]
    assert prepare.parse_depends("") == []


def test_deb_closure_leaves_base_and_unneeded_packages_behind():
    debs = prepare.deb_closure(["iverilog", "yosys"], _fake_show)
    names = [d.package for d in debs]
    assert names[:2] == ["iverilog", "yosys"] and len(names) == len(set(names))
    assert set(names) == {"iverilog", "yosys", "libbz2-1.0", "libreadline8", "libffi8", "libtcl8.6", "berkeley-abc",
                          "libzstd-fake"}
    assert not set(names) & (prepare.BASE_PACKAGES | set(prepare.NOT_NEEDED))
    by_name = {d.package: d for d in debs}
    assert by_name["libzstd-fake"].needed_by == "berkeley-abc" and by_name["iverilog"].size == 2000
    assert [d.package for d in prepare.deb_closure(["iverilog"], _fake_show)] == ["iverilog", "libbz2-1.0",
                                                                                  "libreadline8"]
    FAKE_APT["broken"] = _stanza("no-such-lib")
    try:
        with pytest.raises(prepare.PrepareError, match="no-such-lib"):
            prepare.deb_closure(["broken"], _fake_show)
    finally:
        del FAKE_APT["broken"]


def _wheel_with(folder, name: str, requires: list[str], size: int = 0) -> str:
    path = os.path.join(folder, f"{name}-1.0-py3-none-any.whl")
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", meta)
        zf.writestr("pad.bin", b"\0" * size)
    return path


def test_missing_requirements_checks_every_carried_wheel_against_the_device(tmp_path):
    a = _wheel_with(str(tmp_path), "alpha", ["numpy>=1", "Beta_Pkg (>=2)", "rich; extra == 'fancy'",
                                             "notthere ; python_version >= '3.8'"])
    b = _wheel_with(str(tmp_path), "beta_pkg", ["pyarrow>=24.0.0", "zzz-missing"])
    assert prepare.wheel_requirements(a) == ["numpy", "beta-pkg", "notthere"]
    assert prepare.missing_requirements([a, b]) == {os.path.basename(a): ["notthere"],
                                                    os.path.basename(b): ["zzz-missing"]}


def _git_repo(path, ignore: bool = True) -> str:
    os.makedirs(path)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    with open(os.path.join(path, "README.md"), "w") as fh:
        fh.write("x" * 1000)
    if ignore:
        with open(os.path.join(path, ".gitignore"), "w") as fh:
            fh.write("/.gpu_travel/\n")
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   check=True)
    return str(path)


def _fake_fetchers(deb_bytes: int = 5000):
    def wheels(spec, dest):
        os.makedirs(dest)
        for name in spec:
            _wheel_with(dest, name, ["numpy", "pyarrow"] + (["dill"] if name == "multiprocess" else []), 3000)

    def debs(items, dest):
        os.makedirs(dest)
        for d in items:
            with open(os.path.join(dest, f"{d.package}_{d.version}_amd64.deb"), "wb") as fh:
                fh.truncate(deb_bytes)  # sparse: the apparent size is what counts
    return wheels, debs


def test_prepare_writes_the_travel_folder_and_its_budget(tmp_path, capsys):
    repo = _git_repo(tmp_path / "repo")
    bench = _write_ve(str(tmp_path / "ve"))
    wheels, debs = _fake_fetchers()
    rc = prepare.main(["--repo", repo, "--bench-dir", bench, "--problems", "2"], show=_fake_show,
                      fetch_wheels=wheels, fetch_debs=debs)
    assert rc == 0, capsys.readouterr().err
    travel = os.path.join(repo, ".gpu_travel")
    manifest = json.loads(_read(os.path.join(travel, "manifest.json")))
    assert [w["file"].split("-")[0] for w in manifest["wheels"]] == sorted(prepare.WHEELS)
    assert {d["file"].split("_")[0] for d in manifest["debs"]} == {d.package for d in
                                                                   prepare.deb_closure(["iverilog", "yosys"],
                                                                                       _fake_show)}
    assert all(len(f["sha256"]) == 64 for f in manifest["wheels"] + manifest["debs"])
    ve = os.path.join(travel, "verilog-eval")
    names = _read(os.path.join(ve, "dataset_spec-to-rtl", "problems.txt")).split()
    assert len(names) == 2 and manifest["verilog_eval"]["problems"] == names
    assert sorted(os.listdir(os.path.join(ve, "dataset_spec-to-rtl"))) == sorted(
        ["problems.txt"] + [f"{n}_{p}" for n in names for p in prepare.VE_PARTS])
    assert _read(os.path.join(ve, "LICENSE")).startswith("MIT")
    from verirl.eval.benchmarks import load_verilog_eval  # the copy is a loadable benchmark

    assert list(load_verilog_eval(ve).problems) == names
    budget = manifest["budget"]
    assert budget["fits"] and budget["total"] == sum(budget["parts"].values())
    assert budget["parts"][".gpu_travel/debs"] == 5000 * len(manifest["debs"])
    assert budget["parts"]["tracked files"] >= 1000
    assert "OVER" not in capsys.readouterr().out
    status = _run(["git", "-C", repo, "status", "--porcelain"]).stdout
    assert status == ""  # nothing of it can be committed


def test_prepare_fails_over_budget_and_names_the_big_parts(tmp_path, capsys):
    repo = _git_repo(tmp_path / "repo")
    bench = _write_ve(str(tmp_path / "ve"))
    wheels, debs = _fake_fetchers(deb_bytes=10 * 2**20)
    rc = prepare.main(["--repo", repo, "--bench-dir", bench, "--problems", "1"], show=_fake_show,
                      fetch_wheels=wheels, fetch_debs=debs)
    out, err = capsys.readouterr()
    assert rc == 1 and "over the 64 MiB budget" in err and "--no-yosys" in err
    assert "OVER BUDGET" in out and ".gpu_travel/debs" in out


def test_prepare_refuses_a_travel_folder_git_would_commit(tmp_path, capsys):
    repo = _git_repo(tmp_path / "repo", ignore=False)
    wheels, debs = _fake_fetchers()
    rc = prepare.main(["--repo", repo, "--bench-dir", str(tmp_path)], show=_fake_show, fetch_wheels=wheels,
                      fetch_debs=debs)
    assert rc == 1 and "not git-ignored" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(repo, ".gpu_travel"))


def test_prepare_rejects_missing_benchmark_and_wheels_the_device_cannot_satisfy(tmp_path, capsys):
    repo = _git_repo(tmp_path / "repo")
    wheels, debs = _fake_fetchers()
    assert prepare.main(["--repo", repo, "--bench-dir", str(tmp_path / "nowhere")], show=_fake_show,
                        fetch_wheels=wheels, fetch_debs=debs) == 1
    assert "no dataset_spec-to-rtl/" in capsys.readouterr().err

    def needy(spec, dest):
        os.makedirs(dest)
        _wheel_with(dest, "trl", ["somethingexotic>=1"])

    bench = _write_ve(str(tmp_path / "ve"))
    assert prepare.main(["--repo", repo, "--bench-dir", bench, "--problems", "1"], show=_fake_show,
                        fetch_wheels=needy, fetch_debs=debs) == 1
    assert "somethingexotic" in capsys.readouterr().err


def test_the_repository_ignores_the_travel_folder():
    proc = _run(["git", "-C", ROOT, "check-ignore", "-q", ".gpu_travel/wheels/x.whl"])
    assert proc.returncode == 0, "add /.gpu_travel/ to .gitignore"


@pytest.mark.slow
def test_dry_run_plans_against_this_machines_apt_metadata(tmp_path):
    if shutil.which("apt-cache") is None or not _run(["apt-cache", "show", "iverilog"]).stdout:
        pytest.skip("needs apt-cache with the Debian package lists (apt-get update)")
    bench = _write_ve(str(tmp_path / "ve"))
    proc = _run([sys.executable, os.path.join(SCRIPTS, "prepare_gpu_travel.py"), "--dry-run",
                           "--bench-dir", bench, "--problems", "3"], timeout=300,
                          env=_env())
    assert proc.returncode == 0, proc.stderr
    debs = next(line for line in proc.stdout.splitlines() if line.startswith("debs ("))
    for package in ("iverilog=", "yosys=", "berkeley-abc=", "libtcl8.6="):
        assert package in debs
    for base in ("libc6=", "libstdc++6=", "python3="):
        assert base not in debs
    assert "fits" in proc.stdout
