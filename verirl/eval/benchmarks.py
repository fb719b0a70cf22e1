"""Loaders for evaluation benchmarks, read from a local checkout in their original layout.

* **VerilogEval v2** (NVlabs/verilog-eval): ``dataset_spec-to-rtl/`` and ``dataset_code-complete-iccad2023/`` with
  ``ProbNNN_<name>_{prompt.txt,ref.sv,test.sv}`` (+ ``_ifc.txt`` for code completion) and ``problems.txt``; the
  in-context examples live in ``scripts/`` (the repository) or ``icl-examples/`` (our copy of the data).
* **RTLLM** (hkust-zhiyao/RTLLM): v1.1 is flat (``<design>/``), v2.0 is nested
  (``<Category>/<Subcategory>/<design>/``, folder names may contain spaces). A design folder holds
  ``design_description.txt``, ``verified_*.v``, ``testbench.v`` and the data files its testbench reads by relative
  path.
* **verirl task files** (``--benchmark tasks``): JSONL in the task schema of docs/architecture.md.

Every problem becomes a :class:`Problem`; :func:`verirl.eval.scoring.to_task` turns it into a reward-engine task.
Problems are identified by the benchmark's own names (``Prob001_zero``, the RTLLM design folder name).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
from collections.abc import Iterable

logger = logging.getLogger(__name__)

BENCHMARKS = ("verilog-eval-v2", "rtllm", "tasks")
VERILOG_EVAL_TASKS = {"spec-to-rtl": "dataset_spec-to-rtl", "code-complete": "dataset_code-complete-iccad2023"}

_RTLLM_SKIP_FILES = {"design_description.txt", "testbench.v", "makefile", "Makefile", "README.md", "auto_run.py"}
_RTLLM_DATA_SUFFIXES = (".txt", ".dat", ".hex", ".mem", ".bin", ".csv", ".vec")


class BenchmarkError(ValueError):
    """The benchmark folder, a task file or a requested problem is unusable; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One benchmark problem, in the benchmark's own terms."""

    task_id: str
    benchmark: str
    description: str
    """The problem text exactly as the benchmark ships it (VerilogEval ``_prompt.txt``, RTLLM description)."""
    top: str
    """Module the candidate must define (``TopModule`` for VerilogEval; the name the RTLLM testbench instantiates)."""
    harness: str
    """Reward-engine harness: ``verilog-eval``, ``rtllm`` or ``verirl``."""
    testbench: str | None = None
    reference: str | None = None
    """Golden design: VerilogEval's ``RefModule``; RTLLM's ``verified_*.v`` with its root module renamed to ``top``."""
    interface: str | None = None
    """VerilogEval code completion: the ``_ifc.txt`` module header prepended to replies that lack one."""
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    tb_top: str | None = None
    messages: list[dict[str, str]] | None = None
    """verirl tasks whose prompt is a list of chat messages."""
    metadata: dict = dataclasses.field(default_factory=dict)
    folder: str | None = None
    """The folder holding the problem's files (VerilogEval's dataset folder, the RTLLM design folder)."""


@dataclasses.dataclass
class Benchmark:
    """A loaded benchmark: ordered problems plus provenance."""

    name: str
    task: str | None
    root: str
    problems: dict[str, Problem]
    version: str | None = None
    commit: str | None = None
    icl_dir: str | None = None
    known_broken: dict[str, str] = dataclasses.field(default_factory=dict)
    """Problems whose reference fails its own testbench, found at run time (task id → the engine's reason): the
    reward engine simulates each reference before scoring its first sample, on whatever simulator is installed."""

    def __len__(self) -> int:
        return len(self.problems)

    def get(self, task_id: str, where: str = "") -> Problem:
        """The problem ``task_id``, or a :class:`BenchmarkError` naming close matches."""
        try:
            return self.problems[task_id]
        except KeyError:
            close = difflib.get_close_matches(str(task_id), list(self.problems), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            label = self.name + (f" ({self.task})" if self.task else "")
            raise BenchmarkError(
                f"{where}unknown task_id {task_id!r}: {label} at {self.root} has no such problem{hint} "
                f"(task ids are the benchmark's own problem names, e.g. {next(iter(self.problems), '?')!r})"
            ) from None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "root": self.root,
            "version": self.version,
            "commit": self.commit,
            "problems": len(self.problems),
        }


def load_benchmark(name: str, bench_dir: str, task: str | None = None) -> Benchmark:
    """Load benchmark ``name`` from ``bench_dir`` (see the module docstring for the layouts)."""
    if name == "verilog-eval-v2":
        return load_verilog_eval(bench_dir, task or "spec-to-rtl")
    if task is not None and name != "verilog-eval-v2":
        raise BenchmarkError(f"--task {task} only applies to --benchmark verilog-eval-v2, not {name}")
    if name == "rtllm":
        return load_rtllm(bench_dir)
    if name == "tasks":
        return load_task_file(bench_dir)
    raise BenchmarkError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")


# --------------------------------------------------------------------------------------------- VerilogEval v2


def load_verilog_eval(bench_dir: str, task: str = "spec-to-rtl") -> Benchmark:
    """VerilogEval v2: ``bench_dir`` is the repository root (holding ``dataset_<task>/``) or the dataset folder."""
    if task not in VERILOG_EVAL_TASKS:
        raise BenchmarkError(f"unknown VerilogEval task {task!r}; choose one of {', '.join(VERILOG_EVAL_TASKS)}")
    root = _existing_dir(bench_dir, "VerilogEval v2 checkout (the folder holding dataset_spec-to-rtl/)")
    dataset_name = VERILOG_EVAL_TASKS[task]
    if os.path.isdir(os.path.join(root, dataset_name)):
        dataset = os.path.join(root, dataset_name)
    elif os.path.basename(root) == dataset_name:
        dataset, root = root, os.path.dirname(root)
    else:
        others = [d for d in VERILOG_EVAL_TASKS.values() if d != dataset_name and os.path.basename(root) == d]
        hint = (
            f" (this is the {others[0]} folder: pass its parent, and --task to choose the dataset)" if others else
            " (expected the NVlabs/verilog-eval checkout holding dataset_spec-to-rtl/ and "
            "dataset_code-complete-iccad2023/)"
        )
        raise BenchmarkError(f"{bench_dir} is not a VerilogEval v2 folder: no {dataset_name}/ in it{hint}")
    listing = os.path.join(dataset, "problems.txt")
    if not os.path.isfile(listing):
        raise BenchmarkError(f"{dataset} has no problems.txt; is this a complete VerilogEval v2 checkout?")
    names = [line.strip() for line in _read(listing).splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise BenchmarkError(f"{listing} lists no problems")
    problems: dict[str, Problem] = {}
    for name in names:
        paths = {part: os.path.join(dataset, f"{name}_{part}") for part in ("prompt.txt", "ref.sv", "test.sv")}
        if task == "code-complete":
            paths["ifc.txt"] = os.path.join(dataset, f"{name}_ifc.txt")
        missing = [p for p in paths.values() if not os.path.isfile(p)]
        if missing:
            raise BenchmarkError(f"{listing} lists {name} but {missing[0]} is missing; the checkout is incomplete")
        problems[name] = Problem(
            task_id=name,
            benchmark="verilog-eval-v2",
            description=_read(paths["prompt.txt"]),
            top="TopModule",
            harness="verilog-eval",
            testbench=_read(paths["test.sv"]),
            reference=_read(paths["ref.sv"]),
            interface=_read(paths["ifc.txt"]) if "ifc.txt" in paths else None,
            tb_top="tb",
            metadata={"benchmark": "verilog-eval-v2", "task": task},
            folder=dataset,
        )
    icl_dir = next((d for d in (os.path.join(root, "scripts"), os.path.join(root, "icl-examples"))
                    if os.path.isfile(os.path.join(d, f"verilog-example-prefix_{_icl_task(task)}_1-shot.txt"))),
                   None)
    bench = Benchmark(
        name="verilog-eval-v2", task=task, root=root, problems=problems, version="v2",
        commit=find_commit(root), icl_dir=icl_dir,
    )
    logger.info("loaded VerilogEval v2 %s: %d problems from %s", task, len(problems), dataset)
    return bench


def _icl_task(task: str) -> str:
    """The task name used in the ICL example file names."""
    return "code-complete-iccad2023" if task == "code-complete" else task


# ------------------------------------------------------------------------------------------------------ RTLLM


def load_rtllm(bench_dir: str) -> Benchmark:
    """RTLLM v1.1 (flat) or v2.0 (nested, spaces allowed in folder names)."""
    root = _existing_dir(bench_dir, "RTLLM checkout (v1.1 flat or v2.0 nested layout)")
    designs: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        if "testbench.v" in filenames and "design_description.txt" in filenames:
            designs.append(dirpath)
            dirnames[:] = []  # sample outputs etc. below a design are not designs
    if not designs:
        hint = ""
        if os.path.isdir(os.path.join(root, "dataset_spec-to-rtl")):
            hint = " (this looks like VerilogEval: use --benchmark verilog-eval-v2)"
        raise BenchmarkError(
            f"{bench_dir} holds no RTLLM design folder (a folder with design_description.txt and testbench.v){hint}; "
            "pass the root of an RTLLM checkout"
        )
    nested = any(os.path.relpath(d, root).count(os.sep) > 0 for d in designs)
    names = [os.path.basename(d) for d in designs]
    problems: dict[str, Problem] = {}
    for path in designs:
        rel = os.path.relpath(path, root)
        task_id = os.path.basename(path) if names.count(os.path.basename(path)) == 1 else rel.replace(os.sep, "/")
        problems[task_id] = _rtllm_problem(task_id, path, rel)
    commit = find_commit(root)
    bench = Benchmark(
        name="rtllm", task=None, root=root, problems=problems, version="v2.0" if nested else "v1.1",
        commit=commit,
    )
    logger.info("loaded RTLLM %s: %d designs from %s", bench.version, len(problems), root)
    return bench


def _rtllm_problem(task_id: str, path: str, rel: str) -> Problem:
    testbench_path = os.path.join(path, "testbench.v")
    testbench = _read(testbench_path)
    declared, instantiated = module_names(testbench)
    candidates = sorted({n for n in instantiated if n not in declared})
    if len(candidates) != 1:
        raise BenchmarkError(
            f"{testbench_path}: expected the testbench to instantiate exactly one design module, found "
            f"{candidates or 'none'}; the RTLLM folder is not in its original form"
        )
    top = candidates[0]
    refs = sorted(f for f in os.listdir(path) if f.startswith("verified_") and f.endswith(".v"))
    reference = None
    if len(refs) > 1:
        raise BenchmarkError(f"{path} holds several reference designs {refs}; expected one verified_*.v")
    if refs:
        reference = rename_root_module(_read(os.path.join(path, refs[0])), top, os.path.join(path, refs[0]))
    files = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if (os.path.isfile(full) and name not in _RTLLM_SKIP_FILES and name not in refs
                and name.endswith(_RTLLM_DATA_SUFFIXES)):
            files[name] = _read(full)
    parts = rel.split(os.sep)
    metadata = {"benchmark": "rtllm", "path": rel.replace(os.sep, "/")}
    if len(parts) >= 3:
        metadata.update(category=parts[0], subcategory=parts[1])
    return Problem(
        task_id=task_id, benchmark="rtllm", description=_read(os.path.join(path, "design_description.txt")),
        top=top, harness="rtllm", testbench=testbench, reference=reference, files=files, metadata=metadata,
        folder=path,
    )


def module_names(source: str) -> tuple[set[str], list[str]]:
    """(modules declared, module types instantiated) in ``source``, from a real SystemVerilog parser."""
    from pyslang.syntax import SyntaxKind, SyntaxTree

    tree = SyntaxTree.fromText(source)
    declared: set[str] = set()
    instantiated: list[str] = []

    def visit(node) -> bool:
        if node.kind == SyntaxKind.ModuleDeclaration:
            declared.add(node.header.name.valueText)
        elif node.kind == SyntaxKind.HierarchyInstantiation:
            instantiated.append(node.type.valueText)
        return True

    tree.root.visit(visit)
    return declared, instantiated


def rename_root_module(source: str, new_name: str, where: str = "reference") -> str:
    """Rename the root module of a (trusted) reference design — the one no other module instantiates."""
    declared, instantiated = module_names(source)
    roots = sorted(declared - set(instantiated))
    if len(roots) != 1:
        raise BenchmarkError(f"{where}: expected one top-level module, found {roots or 'none'}")
    old = roots[0]
    if old == new_name:
        return source
    if new_name in declared:
        raise BenchmarkError(f"{where}: cannot rename {old} to {new_name}: a module {new_name} already exists")
    renamed, count = re.subn(rf"\b(module\s+){re.escape(old)}\b", rf"\g<1>{new_name}", source, count=1)
    if count != 1:
        raise BenchmarkError(f"{where}: could not find the declaration of module {old}")
    return re.sub(rf"\b(endmodule\s*:\s*){re.escape(old)}\b", rf"\g<1>{new_name}", renamed)


# ------------------------------------------------------------------------------------------ verirl task files


def load_task_file(path: str) -> Benchmark:
    """A JSONL file of verirl tasks (docs/architecture.md); one task per line."""
    if not os.path.isfile(path):
        raise BenchmarkError(f"task file {path} does not exist; --benchmark tasks takes a JSONL file of tasks")
    problems: dict[str, Problem] = {}
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}: "
        for key in ("id", "prompt", "top"):
            if key not in row:
                raise BenchmarkError(f"{where}task has no {key!r} field; see the task schema in docs/architecture.md")
        if row["id"] in problems:
            raise BenchmarkError(f"{where}duplicate task id {row['id']!r}")
        prompt = row["prompt"]
        messages = None
        if isinstance(prompt, list):
            messages = [dict(m) for m in prompt]
            description = "\n\n".join(m.get("content", "") for m in messages if m.get("role") == "user")
        elif isinstance(prompt, str):
            description = prompt
        else:
            raise BenchmarkError(f"{where}'prompt' must be a string or a list of chat messages")
        problems[row["id"]] = Problem(
            task_id=row["id"], benchmark="tasks", description=description, top=row["top"],
            harness=row.get("harness", "verirl"), testbench=row.get("testbench"), reference=row.get("reference"),
            files=dict(row.get("files") or {}), tb_top=row.get("tb_top"), messages=messages,
            metadata=dict(row.get("metadata") or {}),
        )
    if not problems:
        raise BenchmarkError(f"task file {path} holds no tasks")
    return Benchmark(name="tasks", task=None, root=os.path.abspath(path), problems=problems)


# ---------------------------------------------------------------------------------------------------- helpers


def iter_jsonl(path: str) -> Iterable[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a malformed line raises naming the file and line."""
    from rewards.task import iter_jsonl as _iter

    return _iter(path, BenchmarkError)


def find_commit(root: str) -> str | None:
    """The checkout's git commit (read from ``.git``), else a ``Commit: <sha>`` line of a README next to it."""
    path = os.path.abspath(root)
    for _ in range(4):
        head = os.path.join(path, ".git", "HEAD")
        if os.path.isfile(head):
            return _resolve_git_head(os.path.join(path, ".git"))
        for readme in ("README.txt", "README.md"):
            candidate = os.path.join(path, readme)
            if os.path.isfile(candidate):
                match = re.search(r"^\s*Commit\s*:\s*([0-9a-f]{40})", _read(candidate), re.MULTILINE | re.IGNORECASE)
                if match:
                    return match.group(1)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return None


def _resolve_git_head(git_dir: str) -> str | None:
    head = _read(os.path.join(git_dir, "HEAD")).strip()
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    ref_file = os.path.join(git_dir, *ref.split("/"))
    if os.path.isfile(ref_file):
        return _read(ref_file).strip() or None
    packed = os.path.join(git_dir, "packed-refs")
    if os.path.isfile(packed):
        for line in _read(packed).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return None


def _existing_dir(path: str, what: str) -> str:
    if not path:
        raise BenchmarkError(f"no benchmark folder given: pass --bench-dir pointing at a {what}")
    if not os.path.isdir(path):
        raise BenchmarkError(f"benchmark folder {path} does not exist; pass --bench-dir pointing at a {what}")
    return os.path.abspath(path)


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()
