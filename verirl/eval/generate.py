"""Sampling: ``n`` completions per problem into a resumable ``samples.jsonl``.

Backends (``--backend``) are :mod:`data_pipeline.llm`'s, the module every part of verirl generates through:

* ``vllm`` — offline ``vllm.LLM(...).generate`` with one ``SamplingParams(n=..., seed=...)`` per prompt; chat prompts
  are rendered with the model's chat template first. Needs a GPU and the ``[vllm]`` extra (untested in our CI).
* ``openai`` — any OpenAI-compatible HTTP endpoint (``vllm serve``, TGI, llama.cpp, OpenAI): ``/chat/completions``
  or ``/completions``, standard library HTTP only; the key, if any, is read from ``OPENAI_API_KEY``.
* ``hf`` — ``transformers`` ``generate`` (the ``transformers`` backend), on CPU or GPU, one problem per call so
  that a problem's samples depend only on its seed.

Each row of ``samples.jsonl``: ``task_id``, ``sample_index``, ``completion`` (raw model text), ``finish_reason``
(``stop``, or ``length`` when the completion was cut at ``max_tokens``; ``null`` when the backend does not say),
``completion_tokens`` (its length, where the backend says: hf and vLLM),
``prompt_style``, ``prompt`` (style, shots, rules, explain), ``sampling`` (n, temperature, top_p, max_tokens, seed),
``model``, ``revision``, ``backend``. Rows are appended and
flushed per batch; a rerun reads the file and only asks for the missing ``(task_id, sample_index)`` pairs, so an
interrupted run (an endpoint that went away, a crash) resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import zlib
from collections.abc import Sequence

from data_pipeline.llm import GenerationError, GenerationRequest, LLMBackend, LLMConfig, Sampling
from data_pipeline.llm import make_backend as make_llm_backend

from .benchmarks import Benchmark, BenchmarkError, Problem, iter_jsonl
from .prompts import PromptSettings, build_prompt

logger = logging.getLogger(__name__)

#: ``--backend`` names and the :mod:`data_pipeline.llm` backend kinds they select
BACKENDS = {"vllm": "vllm", "openai": "openai", "hf": "transformers"}

@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """Sampling parameters, recorded with every sample. The defaults are the official VerilogEval v2 make flow's
    (``configure``: 20 samples, temperature 0.85, top-p 0.95); ``max_tokens`` is CodeV-R1's 16384, so that a
    reasoning model is not cut off (the official ``sv-generate`` default, 1024, cuts one)."""

    n: int = 20
    """Samples per problem."""
    temperature: float = 0.85
    """Sampling temperature; 0 means greedy decoding (then n should be 1)."""
    top_p: float = 0.95
    """Nucleus sampling threshold in (0, 1]."""
    max_tokens: int = 16384
    """Largest number of new tokens per completion; completions cut there are counted and reported."""
    seed: int | None = None
    """Random seed for reproducible sampling (where the backend supports one)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"--n must be at least 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"--max-tokens must be positive, got {self.max_tokens}")

    def record(self) -> dict:
        return dataclasses.asdict(self)

    def generation(self) -> Sampling:
        """What the backend needs of these settings (``n`` and the seed travel with each request)."""
        return Sampling(self.temperature, self.top_p, self.max_tokens)


#: the official VerilogEval v2 settings (README): sampled n=20 at temperature 0.85, top-p 0.95; greedy n=1 at
#: temperature 0, top-p 0.01
OFFICIAL_SAMPLED = {"n": 20, "temperature": 0.85, "top_p": 0.95}
OFFICIAL_GREEDY = {"n": 1, "temperature": 0.0, "top_p": 0.01}


def request_seed(seed: int | None, task_id: str) -> int | None:
    """A per-problem seed derived from the run's seed and the task id: the same whatever the batching or resume."""
    return None if seed is None else (seed + zlib.crc32(task_id.encode("utf-8"))) % (2 ** 31)


def make_backend(name: str, model: str, revision: str | None = None, base_url: str | None = None,
                 seed: int | None = None, *, device: str | None = None, timeout: float = 600.0, retries: int = 3,
                 retry_wait: float = 2.0, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None) -> LLMBackend:
    """The :mod:`data_pipeline.llm` backend ``--backend name`` selects, for ``model`` (a local folder or Hub id; for
    ``openai``, the served model name). Sampling settings come with each call, not from here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "openai" and not base_url:
        raise ValueError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    settings: dict = {"kind": BACKENDS[name], "model": model, "revision": revision, "batch_size": 1,
                      "concurrency": 1, "device": device or "auto"}
    if name == "openai":
        settings.update(base_url=base_url, request_timeout_s=timeout, max_retries=retries, retry_wait_s=retry_wait)
    elif name == "vllm":
        engine = {"seed": seed or 0, "tensor_parallel_size": tensor_parallel_size,
                  "gpu_memory_utilization": gpu_memory_utilization}
        if max_model_len:
            engine["max_model_len"] = max_model_len
        settings["vllm_kwargs"] = engine
    return make_llm_backend(LLMConfig(**settings))


# ------------------------------------------------------------------------------------------- samples file


class SampleStore:
    """``samples.jsonl``: what is there already, and appending new rows durably."""

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []
        self.done: set[tuple[str, int]] = set()
        if os.path.exists(path):
            for lineno, row in iter_jsonl(path):
                check_sample_row(row, path, lineno)
                key = (row["task_id"], int(row["sample_index"]))
                if key in self.done:
                    raise BenchmarkError(f"{path}:{lineno}: duplicate sample {key[1]} of {key[0]}")
                self.done.add(key)
                self.rows.append(row)

    def check_compatible(self, meta: dict) -> None:
        """Refuse to mix samples from another model or other sampling settings into one file."""
        for row in self.rows[:1]:
            for key in ("model", "revision", "prompt_style", "prompt"):
                if row.get(key) != meta.get(key):
                    raise GenerationError(
                        f"{self.path} holds samples with {key}={row.get(key)!r}, this run has {meta.get(key)!r}; "
                        "use another --out folder or delete the file")
            old = {k: v for k, v in (row.get("sampling") or {}).items() if k != "n"}
            new = {k: v for k, v in meta["sampling"].items() if k != "n"}
            if old != new:
                raise GenerationError(f"{self.path} was sampled with {old}, this run asks for {new}; "
                                      "use another --out folder or delete the file")

    def append(self, rows: list[dict]) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            fh.flush()
            os.fsync(fh.fileno())
        for row in rows:
            self.done.add((row["task_id"], row["sample_index"]))
        self.rows.extend(rows)


def recorded_settings(path: str) -> dict:
    """How a completions file was sampled, when it is a ``samples.jsonl`` written by verirl and every row agrees:
    ``{"sampling": ..., "prompt": ..., "model": {"name", "revision", "backend"}}``; ``{}`` otherwise."""
    seen: set[str] = set()
    first: dict | None = None
    for _, row in iter_jsonl(path):
        meta = {key: row.get(key) for key in ("sampling", "prompt", "model", "revision", "backend")}
        seen.add(json.dumps(meta, sort_keys=True))
        first = first or meta
        if len(seen) > 1:
            logger.info("%s mixes sampling settings: they are not recorded in the summary", path)
            return {}
    if not first or not isinstance(first.get("sampling"), dict):
        return {}
    return {"sampling": first["sampling"], "prompt": first.get("prompt"),
            "model": {"name": first.get("model"), "revision": first.get("revision"), "backend": first.get("backend")}}


def check_sample_row(row: dict, path: str, lineno: int) -> None:
    """A sample/completion row must hold ``task_id`` (str), ``completion`` (str), optional ``sample_index``."""
    if not isinstance(row.get("task_id"), str):
        raise BenchmarkError(f"{path}:{lineno}: row has no string 'task_id' (the benchmark's problem name)")
    if not isinstance(row.get("completion"), str):
        raise BenchmarkError(f"{path}:{lineno}: row has no string 'completion' (the raw model text)")
    index = row.get("sample_index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise BenchmarkError(f"{path}:{lineno}: 'sample_index' must be a non-negative integer, got {index!r}")


def generate_samples(benchmark: Benchmark, problems: Sequence[Problem], backend: LLMBackend,
                     sampling: SamplingSettings, prompt_settings: PromptSettings, out_path: str, model: str,
                     revision: str | None = None, batch_size: int = 16) -> SampleStore:
    """Sample ``sampling.n`` completions for every problem into ``out_path``, skipping those already there.

    Each problem is one request with its own seed (:func:`request_seed`); chat prompts go through the chat template,
    ``completion``-style prompts are sent as plain text."""
    store = SampleStore(out_path)
    cli_name = {kind: name for name, kind in BACKENDS.items()}.get(backend.kind, backend.kind)
    meta = {"prompt_style": prompt_settings.style, "prompt": dataclasses.asdict(prompt_settings),
            "sampling": sampling.record(), "model": model, "revision": revision, "backend": cli_name}
    store.check_compatible(meta)
    pending: list[tuple[str, GenerationRequest, list[int]]] = []
    for problem in problems:
        missing = [i for i in range(sampling.n) if (problem.task_id, i) not in store.done]
        if missing:
            prompt = build_prompt(benchmark, problem, prompt_settings)
            text = prompt.chat() if prompt_settings.style == "chat" else prompt.text()
            request = GenerationRequest(text, len(missing), request_seed(sampling.seed, problem.task_id))
            pending.append((problem.task_id, request, missing))
    total = sum(len(m) for _, _, m in pending)
    if not total:
        logger.info("%s already holds all %d samples", out_path, len(problems) * sampling.n)
        return store
    logger.info("sampling %d completions for %d problems with %s", total, len(pending), cli_name)
    written = 0
    for start in range(0, len(pending), batch_size):
        batch = pending[start:start + batch_size]
        try:
            outputs = backend.complete([request for _, request, _ in batch], sampling.generation())
        except GenerationError as exc:
            raise GenerationError(f"{exc}. {written} new samples were saved to {out_path} ({len(store.rows)} in "
                                  "all); rerun the same command to resume from there") from exc
        rows = []
        for (task_id, _, indices), generated in zip(batch, outputs):
            if generated is None or len(generated) != len(indices):
                raise GenerationError(f"backend returned {0 if generated is None else len(generated)} completions "
                                      f"for {task_id}, expected {len(indices)}")
            for index, item in zip(indices, generated):
                rows.append({"task_id": task_id, "sample_index": index, "completion": item.text,
                             "finish_reason": item.finish_reason, "completion_tokens": item.tokens, **meta})
        store.append(rows)
        written += len(rows)
    return store
