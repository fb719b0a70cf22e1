#!/usr/bin/env python
"""Prepare what the GPU check needs on the device machine, in a git-ignored folder, within the 64 MiB budget.

The device machine (one H200, Python 3.12 with torch/transformers/accelerate/peft, no internet) lacks TRL,
datasets, Icarus Verilog, Yosys and the VerilogEval data. This script puts them into ``.gpu_travel/``:

* ``wheels/`` — :data:`WHEELS` for CPython 3.12 on manylinux x86-64 (``pip download --no-deps``); every
  ``Requires-Dist`` of a carried wheel must be carried too or be in :data:`DEVICE_PACKAGES` (checked);
* ``debs/`` — Debian packages of iverilog and yosys and the closure of their library dependencies, minus
  :data:`BASE_PACKAGES` (in every Debian/Ubuntu base image) and :data:`NOT_NEEDED` (what the check never runs);
* ``verilog-eval/`` — 20 VerilogEval v2 spec-to-rtl problems (MIT licensed; their ``LICENSE`` goes with them),
  by default the benchmark's own 20-problem subset ``problems-temp.txt``;
* ``manifest.json`` — what is there, with sizes and sha256, and the budget breakdown.

What travels to the device is the working tree (tracked and untracked-not-ignored files) plus the folders a
``run`` call names in ``carry``, 64 MiB in all; the breakdown printed at the end counts both.

    python scripts/prepare_gpu_travel.py                # download and copy; exit 1 if over budget
    python scripts/prepare_gpu_travel.py --dry-run      # the plan and the known sizes, nothing downloaded
    python scripts/prepare_gpu_travel.py --no-yosys     # leave Yosys out (the check then skips PPA)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable

TRAVEL_DIR = ".gpu_travel"
BUDGET_BYTES = 64 * 1024 * 1024

#: Python packages the device lacks (pinned as in pyproject.toml, or as the pins there resolve)
WHEELS: dict[str, str] = {
    "trl": "1.16.0",
    "datasets": "5.2.0",  # TRL imports it; pyarrow, pandas, xxhash, fsspec are on the device already
    "dill": "0.4.1",  # datasets
    "multiprocess": "0.70.19",  # datasets
}
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                 "manylinux1_x86_64")

#: Python packages of the device image ('cuda'), as listed in the device notes (read 2026-11-17)
_DEVICE_PACKAGE_LIST = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless
optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
"""
DEVICE_PACKAGES = frozenset(_DEVICE_PACKAGE_LIST.split())

ROOT_DEBS = ("iverilog", "yosys")
#: in every Debian/Ubuntu base image; the device's are newer than bookworm's, and these keep backward compatibility
BASE_PACKAGES = frozenset({"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libtinfo6", "debconf", "dpkg"})
#: dependencies the check never runs, with the reason they stay behind
NOT_NEEDED: dict[str, str] = {
    "python3": "yosys' Python scripts (yosys-smtbmc, yosys-witness); the rewards call the yosys binary",
    "python3-click": "yosys' Python scripts",
    "xdot": "the viewer of yosys' `show` command",
    "tzdata": "Tcl's clock data; yosys' Tcl interpreter is not used",
    "readline-common": "readline's inputrc; the tools run non-interactively",
}
YOSYS_DEBS = ("yosys",)  # --no-yosys drops these roots (and what only they need)

VE_DATASET = "dataset_spec-to-rtl"
VE_SUBSET = "problems-temp.txt"  # VerilogEval's own 20-problem subset
VE_PARTS = ("prompt.txt", "ref.sv", "test.sv")


class PrepareError(RuntimeError):
    """Something the preparation needs is missing or does not fit; the message says what to do."""


# ----------------------------------------------------------------------------------------------- Debian


def parse_depends(field: str) -> list[str]:
    """Package names of a ``Depends:`` field: first alternative, no version, no ``:any`` qualifier."""
    names = []
    for clause in field.split(","):
        first = clause.split("|")[0].strip()
        name = re.split(r"[\s(\[<]", first, maxsplit=1)[0].split(":")[0].strip()
        if name:
            names.append(name)
    return names


def apt_show(package: str) -> dict[str, str]:
    """The candidate version's stanza of ``apt-cache show`` (fields by name)."""
    if shutil.which("apt-cache") is None:
        raise PrepareError("apt-cache is not available: prepare the travel folder on a Debian/Ubuntu machine")
    proc = subprocess.run(["apt-cache", "show", "--no-all-versions", package], check=False, capture_output=True, text=True)
    if proc.returncode or not proc.stdout.strip():
        raise PrepareError(f"apt-cache knows no package {package!r} ({proc.stderr.strip()}); run apt-get update")
    fields: dict[str, str] = {}
    key = None
    for line in proc.stdout.split("\n\n")[0].splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


@dataclasses.dataclass
class Deb:
    package: str
    version: str
    size: int
    needed_by: str | None


def deb_closure(roots: Iterable[str], show: Callable[[str], dict[str, str]] = apt_show) -> list[Deb]:
    """``roots`` and their (pre-)dependencies, recursively, minus base and unneeded packages."""
    out: dict[str, Deb] = {}
    queue = [(r, None) for r in roots]
    while queue:
        name, parent = queue.pop(0)
        if name in out or name in BASE_PACKAGES or name in NOT_NEEDED:
            continue
        fields = show(name)
        out[name] = Deb(name, fields.get("Version", "?"), int(fields.get("Size", 0) or 0), parent)
        deps = parse_depends(fields.get("Pre-Depends", "")) + parse_depends(fields.get("Depends", ""))
        queue.extend((d, name) for d in deps)
    return list(out.values())


def download_debs(debs: list[Deb], dest: str) -> None:
    os.makedirs(dest, exist_ok=True)
    specs = [f"{d.package}={d.version}" for d in debs]
    proc = subprocess.run(["apt-get", "download", *specs], cwd=dest, check=False, capture_output=True, text=True)
    if proc.returncode:
        raise PrepareError(f"apt-get download failed: {proc.stderr.strip()[-800:]}")


# ----------------------------------------------------------------------------------------------- wheels


def download_wheels(wheels: dict[str, str], dest: str, python: str = sys.executable) -> None:
    os.makedirs(dest, exist_ok=True)
    for name, version in wheels.items():
        argv = [python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                "--implementation", "cp", "-d", dest]
        for platform in PIP_PLATFORMS:
            argv += ["--platform", platform]
        proc = subprocess.run([*argv, f"{name}=={version}"], check=False, capture_output=True, text=True)
        if proc.returncode:
            raise PrepareError(f"pip download {name}=={version} failed: {proc.stderr.strip()[-800:]}")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_requirements(path: str) -> list[str]:
    """Names a wheel requires unconditionally (``Requires-Dist`` without an ``extra`` marker)."""
    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8", "replace")
    names = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            spec = line.split(":", 1)[1]
            if "extra ==" in spec.replace("extra==", "extra =="):
                continue
            names.append(normalize(re.split(r"[\s;(\[<>=!~]", spec.strip(), maxsplit=1)[0]))
    return names


def missing_requirements(wheel_paths: list[str], device: frozenset[str] = DEVICE_PACKAGES) -> dict[str, list[str]]:
    """Per carried wheel, the requirements that neither travel nor are on the device."""
    carried = {normalize(os.path.basename(p).split("-")[0]) for p in wheel_paths}
    have = carried | {normalize(n) for n in device}
    out = {}
    for path in wheel_paths:
        lacking = [r for r in wheel_requirements(path) if r not in have]
        if lacking:
            out[os.path.basename(path)] = lacking
    return out


# ---------------------------------------------------------------------------------------------- VerilogEval


def verilog_eval_problems(bench_dir: str, count: int, subset: str | None = VE_SUBSET) -> list[str]:
    """``count`` problem names: the subset file's (VerilogEval's own 20), else the first of problems.txt."""
    dataset = os.path.join(bench_dir, VE_DATASET)
    if not os.path.isdir(dataset):
        raise PrepareError(f"{bench_dir} has no {VE_DATASET}/: pass --bench-dir PATH/TO/verilog-eval "
                           f"(a VerilogEval v2 checkout, e.g. ../shared/bench/verilog-eval-v2)")
    for listing in ([subset] if subset else []) + ["problems.txt"]:
        path = os.path.join(dataset, listing)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                names = [s.strip() for s in fh if s.strip() and not s.startswith("#")]
            if len(names) >= count:
                return names[:count]
    raise PrepareError(f"{dataset} lists fewer than {count} problems; lower --problems")


def copy_verilog_eval(bench_dir: str, names: list[str], dest: str) -> dict:
    """Copy the problems (prompt, reference, testbench), a problems.txt naming them, LICENSE and provenance."""
    src = os.path.join(bench_dir, VE_DATASET)
    license_path = os.path.join(bench_dir, "LICENSE")
    if not os.path.isfile(license_path):
        raise PrepareError(f"{bench_dir} has no LICENSE; VerilogEval's MIT notice must travel with its files")
    out = os.path.join(dest, VE_DATASET)
    os.makedirs(out, exist_ok=True)
    for name in names:
        for part in VE_PARTS:
            path = os.path.join(src, f"{name}_{part}")
            if not os.path.isfile(path):
                raise PrepareError(f"{path} is missing; is {bench_dir} a complete VerilogEval v2 checkout?")
            shutil.copyfile(path, os.path.join(out, f"{name}_{part}"))
    with open(os.path.join(out, "problems.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(names) + "\n")
    shutil.copyfile(license_path, os.path.join(dest, "LICENSE"))
    from verirl.eval.benchmarks import find_commit

    commit = find_commit(bench_dir)
    with open(os.path.join(dest, "README.txt"), "w", encoding="utf-8") as fh:
        fh.write(f"{len(names)} VerilogEval v2 spec-to-rtl problems copied by scripts/prepare_gpu_travel.py for the "
                 f"GPU check.\nSource: NVlabs/verilog-eval (MIT License, see LICENSE), copied from {bench_dir}\n"
                 + (f"Commit: {commit}\n" if commit else ""))
    return {"source": os.path.abspath(bench_dir), "commit": commit, "problems": names}


# ----------------------------------------------------------------------------------------------- budget


def _git(repo: str, *args: str) -> str:
    proc = subprocess.run(["git", "-C", repo, *args], check=False, capture_output=True, text=True)
    if proc.returncode:
        raise PrepareError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def folder_bytes(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            full = os.path.join(dirpath, f)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def working_tree_bytes(repo: str) -> dict[str, int]:
    """What travels without being carried: tracked files, untracked-not-ignored files, and ``shared/``."""
    def size(names: str) -> int:
        total = 0
        for rel in filter(None, names.split("\0")):
            full = os.path.join(repo, rel)
            if os.path.isfile(full) and not os.path.islink(full):
                total += os.path.getsize(full)
        return total

    parts = {"tracked files": size(_git(repo, "ls-files", "-z")),
             "untracked, not ignored": size(_git(repo, "ls-files", "-z", "--others", "--exclude-standard"))}
    if os.path.isdir(os.path.join(repo, "shared")):  # a shared/ folder in the checkout travels, ignored or not
        parts["shared/ (ignored files)"] = size(_git(repo, "ls-files", "-z", "--others", "--ignored",
                                                    "--exclude-standard", "shared"))
    return parts


def budget(repo: str, travel: str | None, extra: dict[str, int] | None = None) -> dict:
    """Breakdown of what a `run` call carrying ``travel`` sends, against :data:`BUDGET_BYTES`."""
    parts = dict(working_tree_bytes(repo))
    if travel and os.path.isdir(travel):
        for entry in sorted(os.listdir(travel)):
            full = os.path.join(travel, entry)
            parts[f"{TRAVEL_DIR}/{entry}"] = folder_bytes(full) if os.path.isdir(full) else os.path.getsize(full)
    parts.update(extra or {})
    total = sum(parts.values())
    return {"parts": parts, "total": total, "budget": BUDGET_BYTES, "headroom": BUDGET_BYTES - total,
            "fits": total <= BUDGET_BYTES}


def print_budget(report: dict, title: str) -> None:
    print(f"{title}:")
    for name, size in sorted(report["parts"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:44s} {size / 2**20:8.2f} MiB")
    print(f"  {'total':44s} {report['total'] / 2**20:8.2f} MiB of {report['budget'] / 2**20:.0f} MiB "
          f"({'fits' if report['fits'] else 'OVER BUDGET'}; headroom {report['headroom'] / 2**20:.2f} MiB)")


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: str) -> list[dict]:
    if not os.path.isdir(folder):
        return []
    return [{"file": f, "bytes": os.path.getsize(os.path.join(folder, f)), "sha256": _digest(os.path.join(folder, f))}
            for f in sorted(os.listdir(folder))]


# ----------------------------------------------------------------------------------------------- main


def repo_root() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return _git(here, "rev-parse", "--show-toplevel").strip()
    except PrepareError:
        return here


def check_ignored(repo: str, travel: str) -> None:
    rel = os.path.relpath(travel, repo)
    if rel.startswith(".."):
        raise PrepareError(f"{travel} is outside the repository {repo}: only folders inside it can be carried")
    if subprocess.run(["git", "-C", repo, "check-ignore", "-q", rel + "/x"], check=False).returncode != 0:
        raise PrepareError(f"{rel}/ is not git-ignored: add /{rel}/ to .gitignore so it never enters a commit "
                           f"(and travels only when a run names it in carry)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=None, help="repository root (default: this script's)")
    parser.add_argument("--travel", default=None, help=f"travel folder (default: <repo>/{TRAVEL_DIR})")
    parser.add_argument("--bench-dir", default=None,
                        help="VerilogEval v2 checkout (default: $VERIRL_VERILOG_EVAL or <repo>/../shared/bench/"
                             "verilog-eval-v2)")
    parser.add_argument("--problems", type=int, default=20, help="VerilogEval problems to copy (default 20)")
    parser.add_argument("--no-yosys", action="store_true", help="leave Yosys and ABC out (the check skips PPA)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and known sizes; download nothing")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose pip downloads the wheels")
    return parser


def main(argv: list[str] | None = None,
         show: Callable[[str], dict[str, str]] = apt_show,
         fetch_wheels: Callable[[dict[str, str], str], None] | None = None,
         fetch_debs: Callable[[list[Deb], str], None] = download_debs) -> int:
    args = make_parser().parse_args(argv)
    repo = os.path.abspath(args.repo or repo_root())
    travel = os.path.abspath(args.travel or os.path.join(repo, TRAVEL_DIR))
    bench = args.bench_dir or os.environ.get("VERIRL_VERILOG_EVAL") or os.path.join(
        repo, "..", "shared", "bench", "verilog-eval-v2")
    fetch_wheels = fetch_wheels or (lambda wheels, dest: download_wheels(wheels, dest, args.python))
    try:
        check_ignored(repo, travel)
        roots = [r for r in ROOT_DEBS if not (args.no_yosys and r in YOSYS_DEBS)]
        debs = deb_closure(roots, show)
        names = verilog_eval_problems(bench, args.problems)
        print(f"wheels ({len(WHEELS)}): " + ", ".join(f"{n}=={v}" for n, v in WHEELS.items()))
        print(f"debs ({len(debs)}): " + ", ".join(f"{d.package}={d.version}" for d in debs))
        print("  left behind: base " + ", ".join(sorted(BASE_PACKAGES)) + "; unneeded "
              + ", ".join(f"{k} ({v})" for k, v in NOT_NEEDED.items()))
        if args.no_yosys:
            print("  Yosys left out (--no-yosys): the GPU check skips PPA")
        print(f"VerilogEval: {len(names)} problems from {os.path.abspath(bench)}")
        if args.dry_run:
            deb_bytes = sum(d.size for d in debs)
            report = budget(repo, None, {"debs (apt-cache sizes)": deb_bytes})
            print_budget(report, "dry run (wheel sizes are known only after download)")
            return 0 if report["fits"] else 1
        if os.path.isdir(travel):
            shutil.rmtree(travel)
        fetch_wheels(dict(WHEELS), os.path.join(travel, "wheels"))
        wheel_paths = sorted(os.path.join(travel, "wheels", f) for f in os.listdir(os.path.join(travel, "wheels")))
        lacking = missing_requirements(wheel_paths)
        if lacking:
            raise PrepareError(f"carried wheels need packages the device lacks: {lacking}; add them to WHEELS")
        fetch_debs(debs, os.path.join(travel, "debs"))
        ve = copy_verilog_eval(bench, names, os.path.join(travel, "verilog-eval"))
        report = budget(repo, travel, {"manifest.json (estimate)": 4096})
        manifest = {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "repo_commit": _git(repo, "rev-parse", "HEAD").strip(),
            "wheels": _files(os.path.join(travel, "wheels")),
            "debs": [{**f, "needed_by": next((d.needed_by for d in debs if f["file"].startswith(d.package + "_")),
                                             None)} for f in _files(os.path.join(travel, "debs"))],
            "left_behind": {"base": sorted(BASE_PACKAGES), "unneeded": NOT_NEEDED},
            "yosys": not args.no_yosys,
            "verilog_eval": ve,
            "budget": report,
        }
        with open(os.path.join(travel, "manifest.json"), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2)
        print_budget(report, f"what a run carrying {os.path.relpath(travel, repo)} sends")
        if not report["fits"]:
            raise PrepareError(f"over the {BUDGET_BYTES // 2**20} MiB budget by "
                               f"{-report['headroom'] / 2**20:.2f} MiB; try --no-yosys or fewer --problems")
    except PrepareError as exc:
        print(f"prepare_gpu_travel: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
