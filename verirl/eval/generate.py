"""Sampling: ``n`` completions per problem into a resumable ``samples.jsonl``.

Backends (``--backend``):

* ``vllm`` — offline ``vllm.LLM(...).generate`` with one ``SamplingParams(n=...)`` per prompt; chat prompts are
  rendered with the model's chat template first. Needs a GPU and the ``[vllm]`` extra (untested in our CI).
* ``openai`` — any OpenAI-compatible HTTP endpoint (``vllm serve``, TGI, llama.cpp, OpenAI): ``/chat/completions``
  or ``/completions``, standard library HTTP only; the key, if any, is read from ``OPENAI_API_KEY``.
* ``hf`` — ``transformers`` ``generate`` with ``num_return_sequences``, on CPU or GPU.

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
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence

from .benchmarks import Benchmark, BenchmarkError, Problem, iter_jsonl
from .prompts import Prompt, PromptSettings, build_prompt

logger = logging.getLogger(__name__)

BACKENDS = ("vllm", "openai", "hf")


class GenerationError(RuntimeError):
    """Sampling failed (endpoint unreachable, model unloadable); what was written so far is kept."""


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


#: the official VerilogEval v2 settings (README): sampled n=20 at temperature 0.85, top-p 0.95; greedy n=1 at
#: temperature 0, top-p 0.01
OFFICIAL_SAMPLED = {"n": 20, "temperature": 0.85, "top_p": 0.95}
OFFICIAL_GREEDY = {"n": 1, "temperature": 0.0, "top_p": 0.01}


@dataclasses.dataclass(frozen=True)
class Generated:
    """One completion and why the backend stopped generating it."""

    text: str
    finish_reason: str | None = None
    """``stop`` (end of sequence or a stop string), ``length`` (cut at ``max_tokens``), ``None`` when unknown."""
    tokens: int | None = None
    """Generated tokens, when the backend says."""


@dataclasses.dataclass(frozen=True)
class Request:
    task_id: str
    prompt: Prompt
    count: int


# ------------------------------------------------------------------------------------------------- backends


class TransformersBackend:
    """``transformers`` ``AutoModelForCausalLM.generate``; loads the model on first use."""

    name = "hf"

    def __init__(self, model: str, revision: str | None = None, style: str = "chat", device: str | None = None,
                 dtype: str = "auto", seed: int | None = None):
        self.model_id, self.revision, self.style, self.device, self.dtype, self.seed = (
            model, revision, style, device, dtype, seed)
        self._model = self._tokenizer = None

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.model_id, revision=self.revision)
                self._model = AutoModelForCausalLM.from_pretrained(self.model_id, revision=self.revision,
                                                                   dtype=self.dtype)
            except (OSError, ValueError) as exc:
                raise GenerationError(f"cannot load model {self.model_id!r}: {exc}") from exc
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._model.to(device).eval()
            if self.style == "chat" and not getattr(self._tokenizer, "chat_template", None):
                raise GenerationError(f"model {self.model_id!r} has no chat template; use --prompt-style completion")
        return self._model, self._tokenizer

    def render(self, prompt: Prompt) -> str:
        _, tokenizer = self._load()
        if self.style == "chat":
            return tokenizer.apply_chat_template(prompt.chat(), add_generation_prompt=True, tokenize=False)
        return prompt.text()

    def generate(self, requests: Sequence[Request], sampling: SamplingSettings) -> list[list[str]]:
        import torch

        model, tokenizer = self._load()
        results = []
        for request in requests:
            text = self.render(request.prompt)
            inputs = tokenizer(text, return_tensors="pt", add_special_tokens=self.style != "chat").to(model.device)
            greedy = sampling.temperature == 0
            kwargs = {"max_new_tokens": sampling.max_tokens, "num_return_sequences": request.count,
                          "do_sample": not greedy,
                          "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                          else tokenizer.eos_token_id}
            if not greedy:
                kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
            if self.seed is not None:  # per problem: a problem sampled after a resume gets the same samples
                torch.manual_seed(request_seed(self.seed, request.task_id))
            with torch.no_grad():
                output = model.generate(**inputs, **kwargs)
            start = inputs["input_ids"].shape[1]
            stops = _eos_ids(model, tokenizer)
            results.append([_hf_generated(tokenizer, seq[start:].tolist(), stops, sampling.max_tokens)
                            for seq in output])
        return results


def _eos_ids(model, tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return {i for i in ids if i is not None}


def _hf_generated(tokenizer, tokens: list[int], stops: set[int], max_tokens: int) -> Generated:
    """The completion, ``stop`` when it holds an end-of-sequence token (padding after an early end is one too) and
    ``length`` when it used every new token without one; its length counts the tokens before the first stop."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    end = next((i for i, t in enumerate(tokens) if t in stops), None)
    if end is not None:
        return Generated(text, "stop", end + 1)
    return Generated(text, "length" if len(tokens) >= max_tokens else "stop", len(tokens))


class OpenAIBackend:
    """Any OpenAI-compatible endpoint, over plain HTTP (``urllib``)."""

    name = "openai"

    def __init__(self, base_url: str, model: str, style: str = "chat", timeout: float = 600.0, retries: int = 3,
                 retry_wait: float = 2.0, seed: int | None = None):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model_id, self.style, self.timeout, self.retries, self.retry_wait, self.seed = (
            model, style, timeout, retries, retry_wait, seed)

    def _post(self, path: str, body: dict) -> dict:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"}
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_wait * 2 ** (attempt - 1))
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:500]
                if exc.code in (429, 500, 502, 503, 504):
                    last = exc
                    logger.warning("%s answered HTTP %d (attempt %d): %s", url, exc.code, attempt + 1, detail)
                    continue
                hint = ""
                if exc.code == 400 and "context" in detail.lower():
                    hint = (f" (max_tokens={body.get('max_tokens')} does not fit the served model's context: lower "
                            "--max-tokens, or serve the model with a longer --max-model-len)")
                raise GenerationError(f"{url} answered HTTP {exc.code}: {detail}{hint}") from exc
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last = exc
                logger.warning("%s unreachable (attempt %d/%d): %s", url, attempt + 1, self.retries + 1, exc)
            except json.JSONDecodeError as exc:
                raise GenerationError(f"{url} did not answer JSON: {exc}") from exc
        raise GenerationError(f"endpoint {url} unreachable after {self.retries + 1} attempts: {last}")

    def generate(self, requests: Sequence[Request], sampling: SamplingSettings) -> list[list[str]]:
        results = []
        for request in requests:
            texts: list[str] = []
            while len(texts) < request.count:  # servers may return fewer choices than n
                body = {"model": self.model_id, "n": request.count - len(texts), "temperature": sampling.temperature,
                        "top_p": sampling.top_p, "max_tokens": sampling.max_tokens}
                if self.seed is not None:
                    body["seed"] = request_seed(self.seed, request.task_id)
                if self.style == "chat":
                    body["messages"] = request.prompt.chat()
                    reply = self._post("/chat/completions", body)
                    choices = [Generated((c.get("message") or {}).get("content") or "", c.get("finish_reason"))
                               for c in reply.get("choices", [])]
                else:
                    body["prompt"] = request.prompt.text()
                    reply = self._post("/completions", body)
                    choices = [Generated(c.get("text") or "", c.get("finish_reason"))
                               for c in reply.get("choices", [])]
                if not choices:
                    raise GenerationError(f"{self.base_url} returned no choices: {json.dumps(reply)[:300]}")
                texts.extend(choices)
            results.append(texts[:request.count])
        return results


class VLLMBackend:
    """Offline vLLM: ``LLM(...).generate`` over a batch of prompts. Needs a GPU; imported on first use."""

    name = "vllm"

    def __init__(self, model: str, revision: str | None = None, style: str = "chat", seed: int | None = None,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9, max_model_len: int | None = None):
        self.model_id, self.revision, self.style, self.seed = model, revision, style, seed
        self.engine_kwargs = {"tensor_parallel_size": tensor_parallel_size,
                                  "gpu_memory_utilization": gpu_memory_utilization}
        if max_model_len:
            self.engine_kwargs["max_model_len"] = max_model_len
        self._llm = None

    def _load(self):
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as exc:
                raise GenerationError("the vllm backend needs vLLM: pip install 'verirl[vllm]' (GPU only); "
                                      "or use --backend hf / --backend openai") from exc
            self._llm = LLM(model=self.model_id, revision=self.revision, seed=self.seed or 0, **self.engine_kwargs)
        return self._llm

    def generate(self, requests: Sequence[Request], sampling: SamplingSettings) -> list[list[str]]:
        from vllm import SamplingParams

        llm = self._load()
        tokenizer = llm.get_tokenizer()
        texts = [tokenizer.apply_chat_template(r.prompt.chat(), add_generation_prompt=True, tokenize=False)
                 if self.style == "chat" else r.prompt.text() for r in requests]
        params = [SamplingParams(n=r.count, temperature=sampling.temperature, top_p=sampling.top_p,
                                 max_tokens=sampling.max_tokens, seed=request_seed(sampling.seed, r.task_id))
                  for r in requests]
        outputs = llm.generate(texts, params)
        return [[Generated(o.text, getattr(o, "finish_reason", None), _length(getattr(o, "token_ids", None)))
                 for o in out.outputs] for out in outputs]


def _length(token_ids) -> int | None:
    return len(token_ids) if token_ids is not None else None


def request_seed(seed: int | None, task_id: str) -> int | None:
    """A per-problem seed derived from the run's seed and the task id: the same whatever the batching or resume."""
    return None if seed is None else (seed + zlib.crc32(task_id.encode("utf-8"))) % (2 ** 31)


def make_backend(name: str, model: str, style: str, revision: str | None = None, base_url: str | None = None,
                 seed: int | None = None, **kwargs):
    """Backend ``name`` for ``model`` (a local folder or Hub id; for ``openai``, the served model name)."""
    if name == "hf":
        return TransformersBackend(model, revision=revision, style=style, seed=seed, **kwargs)
    if name == "openai":
        if not base_url:
            raise ValueError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(base_url, model, style=style, seed=seed, **kwargs)
    if name == "vllm":
        return VLLMBackend(model, revision=revision, style=style, seed=seed, **kwargs)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


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


def generate_samples(benchmark: Benchmark, problems: Sequence[Problem], backend, sampling: SamplingSettings,
                     prompt_settings: PromptSettings, out_path: str, model: str, revision: str | None = None,
                     batch_size: int = 16) -> SampleStore:
    """Sample ``sampling.n`` completions for every problem into ``out_path``, skipping those already there."""
    store = SampleStore(out_path)
    meta = {"prompt_style": prompt_settings.style, "prompt": dataclasses.asdict(prompt_settings),
            "sampling": sampling.record(), "model": model, "revision": revision, "backend": backend.name}
    store.check_compatible(meta)
    pending: list[tuple[Request, list[int]]] = []
    for problem in problems:
        missing = [i for i in range(sampling.n) if (problem.task_id, i) not in store.done]
        if missing:
            prompt = build_prompt(benchmark, problem, prompt_settings)
            pending.append((Request(problem.task_id, prompt, len(missing)), missing))
    total = sum(len(m) for _, m in pending)
    if not total:
        logger.info("%s already holds all %d samples", out_path, len(problems) * sampling.n)
        return store
    logger.info("sampling %d completions for %d problems with %s", total, len(pending), backend.name)
    written = 0
    for start in range(0, len(pending), batch_size):
        batch = pending[start:start + batch_size]
        try:
            outputs = backend.generate([r for r, _ in batch], sampling)
        except GenerationError as exc:
            raise GenerationError(f"{exc}. {written} new samples were saved to {out_path} ({len(store.rows)} in "
                                  "all); rerun the same command to resume from there") from exc
        rows = []
        for (request, indices), texts in zip(batch, outputs):
            if len(texts) != len(indices):
                raise GenerationError(f"backend returned {len(texts)} completions for {request.task_id}, "
                                      f"expected {len(indices)}")
            for index, item in zip(indices, texts):
                item = item if isinstance(item, Generated) else Generated(str(item))
                rows.append({"task_id": request.task_id, "sample_index": index, "completion": item.text,
                             "finish_reason": item.finish_reason, "completion_tokens": item.tokens, **meta})
        store.append(rows)
        written += len(rows)
    return store
