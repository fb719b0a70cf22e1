"""Prompts faithful to each benchmark's own harness (how replies are cut: :mod:`verirl.eval.extraction`).

What is sent (documented for users in docs/eval.md):

**VerilogEval v2** (as NVlabs' ``scripts/sv-generate`` builds it). The system message is fixed per task
(:data:`VERILOG_EVAL_SYSTEM`). The user message is built from the problem's ``_prompt.txt``:

* ``spec-to-rtl``: [the k-shot ICL prefix file when ``shots`` > 0] + ``"\\nQuestion:\\n"`` + the prompt stripped
  + ``"\\n"`` [+ the coding-rules suffix when ``rules``]; unless ``explain``, trailing whitespace is stripped and the
  ``[BEGIN]``/``[DONE]`` instruction (:data:`NO_EXPLAIN_SUFFIX`) appended; then ``"\\nAnswer:\\n"``.
* ``code-complete``: [ICL prefix] + the comment line :data:`CODE_COMPLETE_PREFIX` + the prompt with every line
  before the ``module TopModule`` header turned into a ``//`` comment and a blank line inserted before the header.

**RTLLM**: the ``design_description.txt`` text as the user message, no system message (RTLLM's descriptions are
themselves instructions: "Please act as a professional verilog designer... Give me the complete code.").

**verirl task files**: the task's ``prompt`` (string → one user message; chat messages → sent as they are).

``style="chat"`` sends ``[system, user]`` messages through the model's chat template (or an endpoint's
``/v1/chat/completions``). ``style="completion"`` sends one plain text for base models: the system message, a
newline, then the user message — the same concatenation VerilogEval uses for models that take no system role.
"""

from __future__ import annotations

import dataclasses
import os

from .benchmarks import Benchmark, BenchmarkError, Problem, _icl_task

STYLES = ("chat", "completion")
MAX_SHOTS = 4

VERILOG_EVAL_SYSTEM = {
    "code-complete": (
        "\nYou only complete chats with syntax correct Verilog code. End the Verilog module code completion with "
        "'endmodule'. Do not include module, input and output definitions.\n"
    ),
    "spec-to-rtl": "\nYou are a Verilog RTL designer that only writes code using correct Verilog syntax.\n",
}
CODE_COMPLETE_PREFIX = (
    "\n// Implement the Verilog module based on the following description. Assume that signals are positive "
    "clock/clk triggered unless otherwise stated.\n"
)
NO_EXPLAIN_SUFFIX = (
    "\nEnclose your code with [BEGIN] and [DONE]. Only output the code snippet\nand do NOT output anything else.\n"
)
RULES_SUFFIX = """
Here are some additional rules and coding conventions.

 - Declare all ports and signals as logic; do not to use wire or reg.

 - For combinational logic with an always block do not explicitly specify
   the sensitivity list; instead use always @(*).

 - All sized numeric constants must have a size greater than zero
   (e.g, 0'b0 is not a valid expression).

 - An always block must read at least one signal otherwise it will never
   be executed; use an assign statement instead of an always block in
   situations where there is no need to read any signals.

 - if the module uses a synchronous reset signal, this means the reset
   signal is sampled with respect to the clock. When implementing a
   synchronous reset signal, do not include posedge reset in the
   sensitivity list of any sequential always block.
"""


@dataclasses.dataclass(frozen=True)
class PromptSettings:
    """How prompts are built; every field is a ``verirl eval`` flag."""

    style: str = "chat"
    """``chat`` (messages through the chat template) or ``completion`` (one plain text, for base models)."""
    shots: int = 0
    """VerilogEval in-context examples, 0-4 (its ``icl-examples``/``scripts`` prefix files)."""
    rules: bool = False
    """VerilogEval spec-to-rtl: append its coding-rules suffix."""
    explain: bool = False
    """VerilogEval spec-to-rtl: let the model explain (drops the [BEGIN]/[DONE] instruction)."""

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"prompt style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if not 0 <= self.shots <= MAX_SHOTS:
            raise ValueError(f"--shots must be between 0 and {MAX_SHOTS} (VerilogEval ships 1-4 shot files), "
                             f"got {self.shots}")


@dataclasses.dataclass(frozen=True)
class Prompt:
    """What is sent for one problem."""

    messages: tuple[tuple[str, str], ...]
    """(role, content) pairs: an optional system message then the user message(s)."""

    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def text(self) -> str:
        """The plain-text form for ``style="completion"``: system, newline, user (VerilogEval's concatenation)."""
        system = [c for r, c in self.messages if r == "system"]
        rest = [c for r, c in self.messages if r != "system"]
        return (system[0] + "\n" if system else "") + "\n".join(rest)


def build_prompt(benchmark: Benchmark, problem: Problem, settings: PromptSettings) -> Prompt:
    """The prompt the benchmark's own harness would send for ``problem``."""
    if problem.benchmark == "verilog-eval-v2":
        return _verilog_eval_prompt(benchmark, problem, settings)
    if settings.shots or settings.rules or settings.explain:
        raise BenchmarkError("--shots, --rules and --explain apply to VerilogEval only")
    if problem.messages:
        return Prompt(tuple((m.get("role", "user"), m.get("content", "")) for m in problem.messages))
    return Prompt((("user", problem.description),))


def _verilog_eval_prompt(benchmark: Benchmark, problem: Problem, settings: PromptSettings) -> Prompt:
    task = benchmark.task or "spec-to-rtl"
    full = ""
    if settings.shots:
        full += icl_prefix(benchmark, settings.shots)
    if task == "code-complete":
        lines, before_header = [], True
        for line in problem.description.splitlines():
            if "module TopModule" in line:
                lines.append("")
                before_header = False
            lines.append("// " + line if before_header else line)
        full += CODE_COMPLETE_PREFIX + "\n".join(lines)
    else:
        full += "\nQuestion:\n" + problem.description.strip() + "\n"
        if settings.rules:
            full += RULES_SUFFIX
        if not settings.explain:
            full = full.rstrip() + "\n" + NO_EXPLAIN_SUFFIX
        full += "\nAnswer:\n"
    return Prompt((("system", VERILOG_EVAL_SYSTEM[task]), ("user", full)))


def icl_prefix(benchmark: Benchmark, shots: int) -> str:
    """The VerilogEval k-shot in-context example prefix file for the benchmark's task."""
    name = f"verilog-example-prefix_{_icl_task(benchmark.task or 'spec-to-rtl')}_{shots}-shot.txt"
    if not benchmark.icl_dir:
        raise BenchmarkError(
            f"--shots {shots} needs VerilogEval's in-context example files ({name}); they are in the checkout's "
            f"scripts/ (or icl-examples/) folder, which {benchmark.root} lacks"
        )
    path = os.path.join(benchmark.icl_dir, name)
    if not os.path.isfile(path):
        raise BenchmarkError(f"in-context example file {path} is missing")
    with open(path, encoding="utf-8") as fh:
        return fh.read()
