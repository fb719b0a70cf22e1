"""LLM backends for the round trip, the difficulty estimate and preference sampling.

Every backend answers :meth:`LLMBackend.generate`: a list of chat conversations in, ``n`` completion
texts per conversation out, in order.

* ``transformers`` — plain ``model.generate`` on a local model folder or Hub id (works on CPU);
* ``openai`` — any OpenAI-compatible ``/chat/completions`` endpoint (``vllm serve``, a hosted API),
  through the standard library's HTTP client, with parallel requests and retries;
* ``vllm`` — offline batched inference with ``vllm.LLM.chat`` (imported only when chosen).

Failures are split the way the reward engine splits them: an endpoint that cannot be reached
(connection refused, timeouts, 5xx/429 after retries) raises :class:`LLMUnavailable`, which stops a
build so the unfinished shard is redone on resume; a request the server rejects (4xx, e.g. a prompt
longer than the context) yields ``None`` for that conversation only and the row is dropped as
``llm_rejected``.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request

from .config import LLMConfig

logger = logging.getLogger(__name__)

Messages = list[dict]


class LLMUnavailable(RuntimeError):
    """The LLM backend cannot serve requests (infrastructure, not data)."""


class LLMBackend(abc.ABC):
    """Interface of every backend."""

    name = "base"

    def __init__(self, cfg: LLMConfig):
        self.cfg = cfg

    @abc.abstractmethod
    def generate(self, conversations: list[Messages], *, n: int = 1, seed: int = 0) -> list[list[str] | None]:
        """``n`` completions per conversation, or ``None`` for a conversation the backend rejected."""

    def describe(self) -> dict:
        return {"kind": self.cfg.kind, "model": self.cfg.model, "temperature": self.cfg.temperature,
                "top_p": self.cfg.top_p, "max_new_tokens": self.cfg.max_new_tokens}

    def close(self) -> None:
        """Release resources (GPU memory, connections)."""


# ------------------------------------------------------------------------------ OpenAI-compatible


def _parallel(fn, jobs: list, workers: int) -> list:
    """``[fn(job) for job in jobs]`` on ``workers`` daemon threads; the first exception is raised.

    Daemon threads, so that a build stopped by Ctrl-C exits at once instead of waiting for HTTP
    requests in flight (an abandoned request's answer is not needed: its shard is redone on resume).
    """
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    lock = threading.Lock()
    todo = iter(range(len(jobs)))
    done = threading.Semaphore(0)

    def worker() -> None:
        while True:
            with lock:
                if errors:
                    i = None
                else:
                    i = next(todo, None)
            if i is None:
                done.release()
                return
            try:
                results[i] = fn(jobs[i])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                with lock:
                    errors.append(exc)

    threads = [threading.Thread(target=worker, name="verirl-llm", daemon=True) for _ in range(max(1, workers))]
    for t in threads:
        t.start()
    for _ in threads:
        while not done.acquire(timeout=0.5):  # short waits: a signal handler runs promptly here
            pass
    if errors:
        raise errors[0]
    return results


class OpenAIBackend(LLMBackend):
    """POST ``{base_url}/chat/completions`` with JSON; the API key comes from ``api_key_env`` if set."""

    name = "openai"

    def _request(self, messages: Messages, n: int, seed: int) -> list[str] | None:
        cfg = self.cfg
        body = {"model": cfg.model, "messages": messages, "n": n, "temperature": cfg.temperature,
                "top_p": cfg.top_p, "max_tokens": cfg.max_new_tokens, "seed": seed}
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        data = json.dumps(body).encode("utf-8")
        last = ""
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(min(2 ** attempt, 30) * (0.5 + random.random() / 2))
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=cfg.request_timeout_s) as resp:
                    payload = json.loads(resp.read().decode("utf-8", errors="replace"))
                choices = sorted(payload.get("choices") or [], key=lambda c: c.get("index", 0))
                texts = [((c.get("message") or {}).get("content") or "") for c in choices]
                if len(texts) < n:
                    # some servers ignore `n`: ask again for the rest, one at a time
                    extra = [self._request(messages, 1, seed + k + 1) for k in range(n - len(texts))]
                    texts += [e[0] for e in extra if e]
                return texts[:n]
            except urllib.error.HTTPError as exc:
                detail = exc.read(500).decode("utf-8", errors="replace") if exc.fp else ""
                if exc.code == 429 or exc.code >= 500:
                    last = f"HTTP {exc.code}: {detail}"
                    continue
                logger.warning("LLM endpoint rejected a request (HTTP %s): %s", exc.code, detail[:300])
                return None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            except (json.JSONDecodeError, AttributeError, TypeError) as exc:
                last = f"malformed answer: {exc}"
        raise LLMUnavailable(f"LLM endpoint {url} failed after {cfg.max_retries + 1} attempts: {last}")

    def generate(self, conversations: list[Messages], *, n: int = 1, seed: int = 0) -> list[list[str] | None]:
        if not conversations:
            return []
        jobs = [(msgs, n, seed + i) for i, msgs in enumerate(conversations)]
        return _parallel(lambda job: self._request(*job), jobs, min(self.cfg.concurrency, len(jobs)))


# ------------------------------------------------------------------------------ transformers


class TransformersBackend(LLMBackend):
    """Local generation with ``transformers`` (batched, left padding, chat template when the tokenizer has one)."""

    name = "transformers"

    def __init__(self, cfg: LLMConfig):
        super().__init__(cfg)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        self.model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype)
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model.to(device)
        self.model.eval()

    def _render(self, messages: Messages) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n\n"

    def generate(self, conversations: list[Messages], *, n: int = 1, seed: int = 0) -> list[list[str] | None]:
        torch = self._torch
        cfg = self.cfg
        out: list[list[str] | None] = []
        for start in range(0, len(conversations), cfg.batch_size):
            batch = [self._render(m) for m in conversations[start : start + cfg.batch_size]]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            torch.manual_seed(seed + start)
            sample = cfg.temperature > 0
            # greedy decoding gives one answer per prompt: generate it once and repeat it n times
            per_prompt = n if sample else 1
            kwargs = {"max_new_tokens": cfg.max_new_tokens, "num_return_sequences": per_prompt,
                      "pad_token_id": self.tokenizer.pad_token_id}
            if sample:
                kwargs.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p)
            else:
                kwargs.update(do_sample=False)
            with torch.no_grad():
                seqs = self.model.generate(**enc, **kwargs)
            new = seqs[:, enc["input_ids"].shape[1]:]
            texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            for i in range(len(batch)):
                group = texts[i * per_prompt : (i + 1) * per_prompt]
                out.append(group if sample else group * n)
        return out

    def close(self) -> None:
        del self.model


# ------------------------------------------------------------------------------ vLLM offline


class VLLMBackend(LLMBackend):
    """Offline batched inference with vLLM (``pip install verirl[vllm]``; needs a GPU)."""

    name = "vllm"

    def __init__(self, cfg: LLMConfig):
        super().__init__(cfg)
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "llm.kind is `vllm` but vllm is not installed: `pip install 'verirl[vllm]'` on a GPU machine, "
                "or use `kind: openai` against a `vllm serve` endpoint, or `kind: transformers`"
            ) from exc
        self._vllm = vllm
        self.llm = vllm.LLM(model=cfg.model, dtype=cfg.dtype, **cfg.vllm_kwargs)

    def generate(self, conversations: list[Messages], *, n: int = 1, seed: int = 0) -> list[list[str] | None]:
        params = self._vllm.SamplingParams(n=n, temperature=self.cfg.temperature, top_p=self.cfg.top_p,
                                           max_tokens=self.cfg.max_new_tokens, seed=seed)
        results = self.llm.chat(conversations, params, use_tqdm=False)
        return [[o.text for o in r.outputs] for r in results]


_BACKENDS = {"openai": OpenAIBackend, "transformers": TransformersBackend, "vllm": VLLMBackend}


def make_backend(cfg: LLMConfig) -> LLMBackend:
    """Instantiate the configured backend (heavy libraries are imported here, not at module import)."""
    return _BACKENDS[cfg.kind](cfg)
