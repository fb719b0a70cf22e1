"""LLM generation: the one module every part of verirl samples a model through.

Users: the data round trip (:mod:`data_pipeline.roundtrip`), policy sampling for difficulty and preference pairs
(:mod:`data_pipeline.policy_samples`), benchmark evaluation (:mod:`verirl.eval.generate`) and the quickstart's
held-out evaluation (:mod:`verirl.quickstart.evaluate`). Adding a backend means adding a class here and its name to
``_BACKENDS`` (and a line to the table in docs/architecture.md).

Backends (``LLMConfig.kind``):

* ``transformers`` — ``model.generate`` on a local folder or Hub id, or on a model already in memory
  (:meth:`TransformersBackend.from_model`); CPU or GPU;
* ``openai`` — any OpenAI-compatible endpoint (``vllm serve``, TGI, llama.cpp, a hosted API):
  ``/chat/completions`` for chat prompts, ``/completions`` for plain-text prompts, through the standard library's
  HTTP client, with parallel requests and retries;
* ``vllm`` — offline batched inference with ``vllm.LLM.generate`` (imported only when chosen; needs a GPU).

Every backend answers :meth:`LLMBackend.complete`: :class:`GenerationRequest` objects in (a prompt — chat messages,
rendered with the tokenizer's chat template, or a plain text sent as is —, how many completions, a seed), one list of
:class:`Generated` per request out, in order. :meth:`LLMBackend.generate` is the short form for chat conversations
that returns the texts only.

Sampling: ``temperature`` 0 is greedy decoding (one completion, repeated ``n`` times where a backend cannot do
better); otherwise nucleus sampling with ``top_p`` and no top-k cut (``transformers`` models otherwise apply a
default top-k of 50 that the HTTP and vLLM backends do not).

Failures are split the way the reward engine splits them: an endpoint that cannot be reached (connection refused,
timeouts, 5xx/429 or malformed answers after retries) or a model that cannot be loaded raises :class:`LLMUnavailable`
(infrastructure: a build stops so the unfinished shard is redone on resume; an evaluation keeps what it sampled). A
request the server rejects (4xx, e.g. a prompt longer than the context) raises :class:`RequestRejected`, or, with
``on_reject="skip"``, yields ``None`` for that request only (the data pipeline drops the row as ``llm_rejected``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from .yaml_loader import help_field as _field

logger = logging.getLogger(__name__)

Messages = list[dict]


class GenerationError(RuntimeError):
    """Generation failed; what was generated before is kept by the caller."""


class LLMUnavailable(GenerationError):
    """The backend cannot serve requests (endpoint down, model not loadable): infrastructure, not data."""


class RequestRejected(GenerationError):
    """The server refused one request (HTTP 4xx): that prompt, not the endpoint, is the problem."""


class BackendNotInstalled(GenerationError, ImportError):
    """The backend's library is not installed."""


@dataclasses.dataclass
class LLMConfig:
    """Which model generates and how (the ``llm:`` section of data recipes; built from flags by ``verirl eval``)."""

    kind: str = _field("openai", "`transformers` (local, plain HF generate), `openai` (HTTP endpoint), or `vllm`")
    model: str = _field("", "model path or id (for `openai`: the model name the server expects)")
    revision: str | None = _field(None, "transformers/vllm: model revision (branch, tag or commit) of a Hub id")
    base_url: str = _field("http://127.0.0.1:8000/v1", "openai: endpoint root, e.g. a `vllm serve` at .../v1")
    api_key_env: str = _field("OPENAI_API_KEY", "openai: environment variable holding the API key (may be unset)")
    temperature: float = _field(0.2, "sampling temperature (0: greedy)")
    top_p: float = _field(0.95, "nucleus sampling")
    max_new_tokens: int = _field(1024, "maximum tokens per completion")
    request_timeout_s: float = _field(300.0, "openai: timeout of one HTTP request")
    max_retries: int = _field(3, "openai: retries on connection errors, 429/5xx and malformed answers")
    retry_wait_s: float = _field(2.0, "openai: wait before the first retry (doubled each time, at most 30 s)")
    concurrency: int = _field(8, "openai: parallel requests")
    batch_size: int = _field(8, "transformers: prompts per generate() call (1: a prompt's samples depend only on "
                                "its seed, not on the prompts batched with it)")
    dtype: str = _field("auto", "transformers/vllm: torch dtype (`auto`, `bfloat16`, `float32`, ...)")
    device: str = _field("auto", "transformers: `auto`, `cpu`, `cuda`, ...")
    vllm_kwargs: dict = _field(factory=dict, help="vllm: extra keyword arguments for `vllm.LLM(...)`")

    def __post_init__(self) -> None:
        if self.kind not in _BACKENDS:
            raise ValueError(f"llm.kind must be one of {tuple(_BACKENDS)}, got {self.kind!r}")
        if not self.model:
            raise ValueError(f"llm.model is required for the {self.kind!r} backend (a model path or name)")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_new_tokens <= 0:
            raise ValueError("llm: need temperature >= 0, 0 < top_p <= 1, max_new_tokens > 0")
        if self.concurrency < 1 or self.batch_size < 1 or self.max_retries < 0 or self.retry_wait_s < 0:
            raise ValueError("llm: concurrency and batch_size must be >= 1, max_retries and retry_wait_s >= 0")
        if self.kind == "openai" and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"the base URL (llm.base_url, --base-url) must start with http:// or https://, got "
                             f"{self.base_url!r}")


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How completions are sampled (a call may override the config's)."""

    temperature: float
    top_p: float
    max_tokens: int

    @classmethod
    def of(cls, cfg: LLMConfig) -> Sampling:
        return cls(cfg.temperature, cfg.top_p, cfg.max_new_tokens)


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """``n`` completions of one prompt: chat messages (rendered with the chat template) or a plain text."""

    prompt: Messages | str
    n: int = 1
    seed: int | None = None


@dataclasses.dataclass(frozen=True)
class Generated:
    """One completion and why the backend stopped generating it."""

    text: str
    finish_reason: str | None = None
    """``stop`` (end of sequence or a stop string), ``length`` (cut at ``max_tokens``), ``None`` when unknown."""
    tokens: int | None = None
    """Generated tokens, where the backend says."""


class LLMBackend:
    """Interface of every backend: subclasses implement :meth:`complete`."""

    kind = "base"

    def __init__(self, cfg: LLMConfig):
        self.cfg = cfg

    def complete(self, requests: Sequence[GenerationRequest], sampling: Sampling | None = None, *,
                 on_reject: str = "raise") -> list[list[Generated] | None]:
        """The completions of every request, in order (``sampling``: the config's unless given). ``on_reject``:
        ``raise`` a :class:`RequestRejected`, or ``skip`` (``None`` for that request)."""
        raise NotImplementedError

    def generate(self, conversations: list[Messages], *, n: int = 1, seed: int = 0) -> list[list[str] | None]:
        """``n`` completion texts per chat conversation (seeds ``seed``, ``seed + 1``, ...), or ``None`` for a
        conversation the backend rejected."""
        requests = [GenerationRequest(messages, n, seed + i) for i, messages in enumerate(conversations)]
        return [None if group is None else [g.text for g in group]
                for group in self.complete(requests, on_reject="skip")]

    def describe(self) -> dict:
        return {"kind": self.cfg.kind, "model": self.cfg.model, "temperature": self.cfg.temperature,
                "top_p": self.cfg.top_p, "max_new_tokens": self.cfg.max_new_tokens}

    def close(self) -> None:
        """Release resources (GPU memory, connections)."""


def _check_on_reject(on_reject: str) -> None:
    if on_reject not in ("raise", "skip"):
        raise ValueError(f"on_reject must be `raise` or `skip`, got {on_reject!r}")


# ------------------------------------------------------------------------------ OpenAI-compatible


def _parallel(fn, jobs: list, workers: int) -> list:
    """``[fn(job) for job in jobs]`` on ``workers`` daemon threads; the first exception is raised.

    Daemon threads, so that a run stopped by Ctrl-C exits at once instead of waiting for HTTP requests in flight
    (an abandoned request's answer is not needed: its shard or sample is redone on resume).
    """
    if workers <= 1:
        return [fn(job) for job in jobs]
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    lock = threading.Lock()
    todo = iter(range(len(jobs)))
    done = threading.Semaphore(0)

    def worker() -> None:
        while True:
            with lock:
                index = None if errors else next(todo, None)
            if index is None:
                done.release()
                return
            try:
                results[index] = fn(jobs[index])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                with lock:
                    errors.append(exc)

    threads = [threading.Thread(target=worker, name="verirl-llm", daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for _ in threads:
        while not done.acquire(timeout=0.5):  # short waits: a signal handler runs promptly here
            pass
    if errors:
        raise errors[0]
    return results


class OpenAIBackend(LLMBackend):
    """POST ``{base_url}/chat/completions`` (chat prompts) or ``/completions`` (plain text) with JSON; the API key
    comes from ``api_key_env`` if set."""

    kind = "openai"

    def _post(self, path: str, body: dict) -> dict:
        cfg = self.cfg
        url = cfg.base_url.rstrip("/") + path
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode("utf-8")
        last = ""
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(min(cfg.retry_wait_s * 2 ** (attempt - 1), 30.0) * (0.5 + random.random() / 2))
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=cfg.request_timeout_s) as resp:
                    payload = json.loads(resp.read().decode("utf-8", errors="replace"))
                if not isinstance(payload, dict) or not payload.get("choices"):
                    raise ValueError(f"no choices in {json.dumps(payload)[:300]}")
                return payload
            except urllib.error.HTTPError as exc:
                detail = exc.read(500).decode("utf-8", errors="replace") if exc.fp else ""
                if exc.code == 429 or exc.code >= 500:
                    last = f"HTTP {exc.code}: {detail}"
                    logger.warning("%s answered HTTP %d (attempt %d/%d): %s", url, exc.code, attempt + 1,
                                   cfg.max_retries + 1, detail[:300])
                    continue
                hint = ""
                if exc.code == 400 and "context" in detail.lower():
                    hint = (f" (max_tokens={body.get('max_tokens')} does not fit the served model's context: ask for "
                            "fewer new tokens, or serve the model with a longer --max-model-len)")
                raise RequestRejected(f"{url} answered HTTP {exc.code}: {detail}{hint}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                logger.warning("%s unreachable (attempt %d/%d): %s", url, attempt + 1, cfg.max_retries + 1, exc)
            except (json.JSONDecodeError, ValueError, AttributeError, TypeError) as exc:
                last = f"malformed answer: {exc}"
        raise LLMUnavailable(f"LLM endpoint {url} failed after {cfg.max_retries + 1} attempts (unreachable, "
                             f"overloaded or answering garbage): {last}")

    def _request(self, request: GenerationRequest, sampling: Sampling) -> list[Generated]:
        chat = not isinstance(request.prompt, str)
        out: list[Generated] = []
        rounds = 0
        while len(out) < request.n:  # some servers ignore `n` or return fewer choices: ask again for the rest
            body = {"model": self.cfg.model, "n": request.n - len(out), "temperature": sampling.temperature,
                    "top_p": sampling.top_p, "max_tokens": sampling.max_tokens}
            if request.seed is not None:
                body["seed"] = request.seed + rounds  # another round, other samples
            body["messages" if chat else "prompt"] = request.prompt
            payload = self._post("/chat/completions" if chat else "/completions", body)
            choices = sorted(payload["choices"], key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                text = ((choice.get("message") or {}).get("content") if chat else choice.get("text")) or ""
                out.append(Generated(text, choice.get("finish_reason")))
            rounds += 1
        return out[:request.n]

    def complete(self, requests: Sequence[GenerationRequest], sampling: Sampling | None = None, *,
                 on_reject: str = "raise") -> list[list[Generated] | None]:
        _check_on_reject(on_reject)
        sampling = sampling or Sampling.of(self.cfg)

        def one(request: GenerationRequest) -> list[Generated] | None:
            try:
                return self._request(request, sampling)
            except RequestRejected as exc:
                if on_reject == "raise":
                    raise
                logger.warning("LLM endpoint rejected a request: %s", str(exc)[:300])
                return None

        return _parallel(one, list(requests), min(self.cfg.concurrency, len(requests)))


# ------------------------------------------------------------------------------ transformers


class TransformersBackend(LLMBackend):
    """Local generation with ``transformers``: prompts batched ``batch_size`` at a time with left padding, chat
    prompts through the tokenizer's chat template. Each batch is seeded with its first request's seed; the global
    random state is left as it was."""

    kind = "transformers"

    def __init__(self, cfg: LLMConfig, *, model=None, tokenizer=None):
        super().__init__(cfg)
        self._model, self._tokenizer = model, tokenizer

    @classmethod
    def from_model(cls, model, tokenizer, **settings) -> TransformersBackend:
        """A backend around a model already in memory (e.g. one being trained); ``settings``: LLMConfig fields."""
        name = getattr(model, "name_or_path", "") or "in-memory model"
        return cls(LLMConfig(kind="transformers", model=name, **settings), model=model, tokenizer=tokenizer)

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            cfg = self.cfg
            dtype = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(cfg.model, revision=cfg.revision)
                model = AutoModelForCausalLM.from_pretrained(cfg.model, revision=cfg.revision, dtype=dtype)
            except (OSError, ValueError) as exc:
                raise LLMUnavailable(f"cannot load model {cfg.model!r}: {exc}") from exc
            device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
            self._model = model.to(device)
        return self._model, self._tokenizer

    def render(self, prompt: Messages | str) -> str:
        """The text the model is given: chat messages through the chat template, plain text as is."""
        if isinstance(prompt, str):
            return prompt
        _, tokenizer = self._load()
        if not getattr(tokenizer, "chat_template", None):
            raise GenerationError(f"model {self.cfg.model!r} has no chat template: give a model that has one (the "
                                  "prompts would otherwise differ from training's), or plain-text prompts (`verirl eval "
                                  "--prompt-style completion`)")
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def complete(self, requests: Sequence[GenerationRequest], sampling: Sampling | None = None, *,
                 on_reject: str = "raise") -> list[list[Generated] | None]:
        import torch

        _check_on_reject(on_reject)
        sampling = sampling or Sampling.of(self.cfg)
        model, _ = self._load()
        out: list[list[Generated] | None] = []
        devices = [model.device.index or 0] if model.device.type == "cuda" else []
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                for start in range(0, len(requests), self.cfg.batch_size):
                    out += self._batch(requests[start:start + self.cfg.batch_size], sampling)
        finally:
            if was_training:
                model.train()
        return out

    def _batch(self, requests: Sequence[GenerationRequest], sampling: Sampling) -> list[list[Generated]]:
        import torch

        model, tokenizer = self._load()
        greedy = sampling.temperature == 0
        copies = [1 if greedy else r.n for r in requests]  # greedy: one completion, repeated n times
        ids = []
        for request, count in zip(requests, copies):
            text = self.render(request.prompt)
            # the chat template holds the special tokens; a plain text gets the tokenizer's (a BOS, say)
            encoded = tokenizer(text, add_special_tokens=isinstance(request.prompt, str))["input_ids"]
            ids += [encoded] * count
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        padding_side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            enc = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        finally:
            tokenizer.padding_side = padding_side
        enc = {k: v.to(model.device) for k, v in enc.items()}
        stops = _eos_ids(model, tokenizer)
        kwargs = {"max_new_tokens": sampling.max_tokens, "pad_token_id": tokenizer.pad_token_id, "eos_token_id": sorted(stops) or None}
        if greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if requests[0].seed is not None:
            torch.manual_seed(requests[0].seed)
        sequences = model.generate(**enc, **kwargs)[:, enc["input_ids"].shape[1]:]
        generated = [_hf_generated(tokenizer, seq.tolist(), stops, sampling.max_tokens) for seq in sequences]
        out, at = [], 0
        for request, count in zip(requests, copies):
            group = generated[at:at + count]
            at += count
            out.append(group * request.n if greedy else group)
        return out

    def close(self) -> None:
        self._model = None


def _eos_ids(model, tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return {i for i in ids if i is not None}


def _hf_generated(tokenizer, tokens: list[int], stops: set[int], max_tokens: int) -> Generated:
    """The completion, ``stop`` when it holds an end-of-sequence token (padding after an early end is one too) and
    ``length`` when it used every new token without one; its length counts the tokens up to the first stop."""
    end = next((i for i, t in enumerate(tokens) if t in stops), None)
    if end is not None:
        return Generated(tokenizer.decode(tokens[:end + 1], skip_special_tokens=True), "stop", end + 1)
    return Generated(tokenizer.decode(tokens, skip_special_tokens=True),
                     "length" if len(tokens) >= max_tokens else "stop", len(tokens))


# ------------------------------------------------------------------------------ vLLM offline


class VLLMBackend(LLMBackend):
    """Offline batched inference with vLLM (``pip install 'verirl[vllm]'``; needs a GPU): ``vllm.LLM(model, revision,
    dtype, **vllm_kwargs).generate(texts, [SamplingParams per request])``, chat prompts rendered with the tokenizer's
    chat template. The engine starts on first use."""

    kind = "vllm"

    def __init__(self, cfg: LLMConfig):
        super().__init__(cfg)
        try:
            import vllm
        except ImportError as exc:
            raise BackendNotInstalled(
                "llm.kind is `vllm` but vllm is not installed: `pip install 'verirl[vllm]'` on a GPU machine, "
                "or use `kind: openai` against a `vllm serve` endpoint, or `kind: transformers`"
            ) from exc
        self._vllm = vllm
        self._llm = None

    def _engine(self):
        if self._llm is None:
            cfg = self.cfg
            self._llm = self._vllm.LLM(model=cfg.model, revision=cfg.revision, dtype=cfg.dtype, **cfg.vllm_kwargs)
        return self._llm

    def complete(self, requests: Sequence[GenerationRequest], sampling: Sampling | None = None, *,
                 on_reject: str = "raise") -> list[list[Generated] | None]:
        _check_on_reject(on_reject)
        if not requests:
            return []
        sampling = sampling or Sampling.of(self.cfg)
        engine = self._engine()
        tokenizer = engine.get_tokenizer()
        texts = [r.prompt if isinstance(r.prompt, str)
                 else tokenizer.apply_chat_template(r.prompt, add_generation_prompt=True, tokenize=False)
                 for r in requests]
        params = [self._vllm.SamplingParams(n=r.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                            max_tokens=sampling.max_tokens, seed=r.seed) for r in requests]
        results = engine.generate(texts, params, use_tqdm=False)
        return [[Generated(o.text, getattr(o, "finish_reason", None), _length(getattr(o, "token_ids", None)))
                 for o in result.outputs] for result in results]

    def close(self) -> None:
        self._llm = None


def _length(token_ids) -> int | None:
    return len(token_ids) if token_ids is not None else None


_BACKENDS = {"openai": OpenAIBackend, "transformers": TransformersBackend, "vllm": VLLMBackend}


def make_backend(cfg: LLMConfig) -> LLMBackend:
    """The configured backend (heavy libraries are imported here or on first use, not at module import)."""
    return _BACKENDS[cfg.kind](cfg)
