"""Decontamination against benchmark problems (VerilogEval v2, RTLLM) by n-gram overlap.

Benchmarks are read in place from a checkout path (never copied). Each benchmark problem
contributes two texts: its reference design (compared with candidate *code*, as significant
Verilog tokens) and its natural-language prompt (compared with generated *descriptions*, as
lower-cased words).

The overlap of a candidate with a problem is ROUGE-N style: with ``N(x)`` the set of n-grams of
``x`` and ``shared = |N(cand) ∩ N(problem)|``,

* recall    = shared / |N(problem)| — how much of the benchmark problem the candidate contains;
* precision = shared / |N(cand)|    — how much of the candidate comes from the benchmark problem;

and the score is the larger of the two. A candidate is contaminated when its best score over all
problems reaches ``threshold``. Texts shorter than ``n`` tokens count as one n-gram. Lookups go
through an inverted index (n-gram → problems), so a check costs O(tokens of the candidate).
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
from collections import Counter

from .config import BenchmarkConfig, DecontaminationConfig
from .dedupe import code_tokens

logger = logging.getLogger(__name__)

_WORD_RE = re.compile(r"[a-z0-9_]+")


@dataclasses.dataclass(frozen=True)
class BenchmarkProblem:
    benchmark: str
    name: str
    prompt: str
    reference: str


@dataclasses.dataclass(frozen=True)
class Match:
    benchmark: str
    problem: str
    score: float
    recall: float
    precision: float
    field: str
    """``code`` or ``description``."""

    def describe(self) -> str:
        return (f"{self.field} overlaps {self.benchmark}:{self.problem} "
                f"(score {self.score:.2f}: recall {self.recall:.2f}, precision {self.precision:.2f})")


def load_verilog_eval(path: str) -> list[BenchmarkProblem]:
    """VerilogEval v2 problems: ``dataset_*/ProbNNN_name_{prompt.txt,ref.sv}`` under ``path``."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"VerilogEval checkout {path!r} does not exist (decontaminate.benchmarks[].path)")
    problems: dict[str, BenchmarkProblem] = {}
    prompts: dict[str, list[str]] = {}
    for ref in sorted(glob.glob(os.path.join(path, "**", "Prob*_ref.sv"), recursive=True)):
        name = os.path.basename(ref)[: -len("_ref.sv")]
        prompt_file = ref[: -len("_ref.sv")] + "_prompt.txt"
        prompt = _read(prompt_file) if os.path.isfile(prompt_file) else ""
        prompts.setdefault(name, [])
        if prompt and prompt not in prompts[name]:
            prompts[name].append(prompt)
        if name not in problems:
            problems[name] = BenchmarkProblem("verilog-eval", name, "", _read(ref))
    out = [dataclasses.replace(p, prompt="\n".join(prompts[p.name])) for p in problems.values()]
    if not out:
        raise ValueError(f"no VerilogEval problems (Prob*_ref.sv) found under {path!r}")
    return out


def load_rtllm(path: str) -> list[BenchmarkProblem]:
    """RTLLM problems: folders holding ``design_description.txt`` and ``verified_*.v``."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"RTLLM checkout {path!r} does not exist (decontaminate.benchmarks[].path)")
    out = []
    for desc in sorted(glob.glob(os.path.join(path, "**", "design_description.txt"), recursive=True)):
        folder = os.path.dirname(desc)
        refs = sorted(glob.glob(os.path.join(folder, "verified_*.v")) + glob.glob(os.path.join(folder, "verified_*.sv")))
        reference = "\n".join(_read(r) for r in refs)
        out.append(BenchmarkProblem("rtllm", os.path.relpath(folder, path), _read(desc), reference))
    if not out:
        raise ValueError(f"no RTLLM problems (design_description.txt) found under {path!r}")
    return out


def load_benchmarks(configs: list[BenchmarkConfig]) -> list[BenchmarkProblem]:
    problems: list[BenchmarkProblem] = []
    for bench in configs:
        loader = load_verilog_eval if bench.kind == "verilog-eval" else load_rtllm
        found = loader(bench.path)
        logger.info("decontamination: %d %s problems from %s", len(found), bench.kind, bench.path)
        problems.extend(found)
    return problems


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def word_tokens(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> set[int]:
    """Hashed n-grams (whole sequence when shorter than n)."""
    if not tokens:
        return set()
    if len(tokens) < n:
        return {hash(tuple(tokens))}
    return {hash(tuple(tokens[i : i + n])) for i in range(len(tokens) - n + 1)}


class _Index:
    def __init__(self, texts: list[list[str]], n: int):
        self.n = n
        self.sizes = []
        self.postings: dict[int, list[int]] = {}
        for i, tokens in enumerate(texts):
            grams = ngrams(tokens, n)
            self.sizes.append(len(grams))
            for g in grams:
                self.postings.setdefault(g, []).append(i)

    def best(self, tokens: list[str]) -> tuple[int, float, float, float] | None:
        grams = ngrams(tokens, self.n)
        if not grams:
            return None
        shared: Counter[int] = Counter()
        for g in grams:
            for i in self.postings.get(g, ()):
                shared[i] += 1
        best = None
        for i, count in shared.items():
            recall = count / self.sizes[i] if self.sizes[i] else 0.0
            precision = count / len(grams)
            score = max(recall, precision)
            if best is None or score > best[1]:
                best = (i, score, recall, precision)
        return best


class Decontaminator:
    """Checks code and descriptions against benchmark problems."""

    def __init__(self, cfg: DecontaminationConfig, problems: list[BenchmarkProblem] | None = None):
        self.cfg = cfg
        self.problems = problems if problems is not None else load_benchmarks(cfg.benchmarks)
        norm = cfg.normalize_identifiers
        self._code = _Index([code_tokens(p.reference, normalize_identifiers=norm) for p in self.problems], cfg.ngram)
        self._text = _Index([word_tokens(p.prompt) for p in self.problems], cfg.ngram)

    def _match(self, index: _Index, tokens: list[str], field: str) -> Match | None:
        best = index.best(tokens)
        if best is None or best[1] < self.cfg.threshold:
            return None
        i, score, recall, precision = best
        p = self.problems[i]
        return Match(p.benchmark, p.name, score, recall, precision, field)

    def check_code(self, code: str) -> Match | None:
        """The benchmark problem whose reference the code overlaps at or above the threshold, if any."""
        tokens = code_tokens(code, normalize_identifiers=self.cfg.normalize_identifiers)
        return self._match(self._code, tokens, "code")

    def code_drop(self, code: str) -> tuple[str, str] | None:
        """``("contaminated", detail)`` for code that overlaps a benchmark reference (see :meth:`check_code`)."""
        match = self.check_code(code)
        return None if match is None else ("contaminated", match.describe())

    def check_description(self, text: str) -> Match | None:
        """The benchmark problem whose prompt the description overlaps at or above the threshold, if any."""
        return self._match(self._text, word_tokens(text), "description")

    def score_code(self, code: str) -> float:
        """Best overlap score of ``code`` with any benchmark reference (0 when none share an n-gram)."""
        best = self._code.best(code_tokens(code, normalize_identifiers=self.cfg.normalize_identifiers))
        return best[1] if best else 0.0
