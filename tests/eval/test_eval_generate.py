"""Generation end to end with a tiny local model: transformers backend, and the OpenAI-compatible backend against
a real HTTP server on 127.0.0.1 that wraps the same model; resuming after the endpoint goes away mid-run."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from data_pipeline.llm import GenerationRequest
from verirl.cli import main as verirl_main
from verirl.eval.benchmarks import load_benchmark
from verirl.eval.generate import (
    GenerationError,
    SampleStore,
    SamplingSettings,
    generate_samples,
    make_backend,
    request_seed,
)
from verirl.eval.prompts import PromptSettings, build_prompt

pytestmark = pytest.mark.slow


class TinyServer:
    """An OpenAI-compatible server (``/v1/chat/completions``, ``/v1/completions``) around a local model.

    ``fail_after`` requests later it drops every connection without answering, like an endpoint that went away.
    """

    def __init__(self, model_dir: str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.requests: list[dict] = []
        self.fail_after: int | None = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    if server.fail_after is not None and len(server.requests) >= server.fail_after:
                        self.close_connection = True
                        return                       # no status line: the client sees a dropped connection
                    server.requests.append({"path": self.path, **body})
                    texts = server.complete(body)
                if self.path.endswith("/chat/completions"):
                    choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": r}
                               for i, (t, r) in enumerate(texts)]
                else:
                    choices = [{"index": i, "text": t, "finish_reason": r} for i, (t, r) in enumerate(texts)]
                data = json.dumps({"object": "list", "model": body["model"], "choices": choices}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def complete(self, body: dict) -> list[tuple[str, str]]:
        import torch

        if "messages" in body:
            text = self.tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
        else:
            text = body["prompt"]
        inputs = self.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            out = self.model.generate(**inputs, do_sample=True, temperature=body["temperature"],
                                      top_p=body["top_p"], max_new_tokens=body["max_tokens"],
                                      num_return_sequences=body["n"], pad_token_id=self.tokenizer.pad_token_id)
        start = inputs["input_ids"].shape[1]
        eos = self.tokenizer.eos_token_id
        return [(self.tokenizer.decode(seq[start:], skip_special_tokens=True),
                 "stop" if eos in seq[start:].tolist() else "length") for seq in out]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_hf_backend_end_to_end_through_the_cli(eda, tiny_model, ve_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", ve_dir, "--model", tiny_model,
            "--backend", "hf", "--n", "2", "--k", "1,2", "--max-tokens", "12", "--seed", "0", "--out", str(out)]
    assert verirl_main(argv) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted((r["task_id"], r["sample_index"]) for r in rows) == \
        sorted((t, i) for t in ("Prob001_and2", "Prob002_count4", "Prob003_slowtb") for i in range(2))
    assert rows[0]["model"] == tiny_model and rows[0]["sampling"]["n"] == 2 and rows[0]["backend"] == "hf"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["pass_at_k"]) == {"1", "2"} and summary["n"] == 2
    assert all(0.0 <= v <= 1.0 for v in summary["pass_at_k"].values())
    assert summary["benchmark"]["commit"] == "ab" * 20 and summary["tools"]["iverilog"]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == 6 and all({"task_id", "sample_index", "passed", "failure"} <= set(r) for r in results)
    for name in ("report.md", "pass_at_k.png", "failures.png"):
        assert (out / name).stat().st_size > 0
    assert "pass@1" in (out / "report.md").read_text()
    # 12 new tokens: completions cut there say so, are counted, and the run warns with the count
    cut = sum(r["finish_reason"] == "length" for r in rows)
    assert all(r["finish_reason"] in ("stop", "length") and 1 <= r["completion_tokens"] <= 12 for r in rows)
    assert summary["completion_lengths"]["truncated"] == cut
    err = capsys.readouterr().err
    assert (f"warning: {cut} of 6 completions were cut at --max-tokens 12" in err) is (cut > 0)
    # rerun: nothing is sampled again
    mtime = os.path.getmtime(out / "samples.jsonl")
    assert verirl_main(argv) == 0
    assert os.path.getmtime(out / "samples.jsonl") == mtime
    assert "pass@1" in capsys.readouterr().out


def test_n_smaller_than_k_fails_before_sampling(tiny_model, ve_dir, tmp_path, capsys):
    argv = ["eval", "--benchmark", "verilog-eval-v2", "--bench-dir", ve_dir, "--model", tiny_model,
            "--backend", "hf", "--n", "2", "--k", "1,5", "--out", str(tmp_path / "r")]
    assert verirl_main(argv) == 2
    assert "raise --n to at least 5" in capsys.readouterr().err
    assert not (tmp_path / "r" / "samples.jsonl").exists()


def test_openai_backend_against_a_local_server_and_resume(tiny_model, rtllm_nested, ve_dir, tmp_path):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    problems = list(bench.problems.values())
    sampling = SamplingSettings(n=2, temperature=0.9, top_p=0.95, max_tokens=8)
    path = str(tmp_path / "samples.jsonl")
    with TinyServer(tiny_model) as server:
        backend = make_backend("openai", "tiny", base_url=server.url, retries=1, retry_wait=0.01)
        server.fail_after = 1                       # the endpoint answers once, then goes away
        with pytest.raises(GenerationError, match=r"unreachable.*2 new samples were saved.*rerun"):
            generate_samples(bench, problems, backend, sampling, PromptSettings(), path, model="tiny",
                             batch_size=1)
        first = SampleStore(path).rows
        assert [(r["task_id"], r["sample_index"]) for r in first] == [("Prob001_and2", 0), ("Prob001_and2", 1)]
        assert server.requests[0]["messages"][0]["role"] == "system" and server.requests[0]["n"] == 2

        server.fail_after = None                    # back up: the rerun asks only for what is missing
        store = generate_samples(bench, problems, backend, sampling, PromptSettings(), path, model="tiny",
                                 batch_size=1)
        assert len(store.rows) == 6 and store.rows[:2] == first
        assert [r["n"] for r in server.requests] == [2, 2, 2]
        # raw completion style goes to /v1/completions
        rt = load_benchmark("rtllm", rtllm_nested)
        text_backend = make_backend("openai", "tiny", base_url=server.url, retries=0)
        store = generate_samples(rt, list(rt.problems.values()), text_backend, SamplingSettings(n=1, max_tokens=4),
                                 PromptSettings(style="completion"), str(tmp_path / "rt.jsonl"), model="tiny")
        assert server.requests[-1]["path"] == "/v1/completions"
        assert server.requests[-1]["prompt"] == rt.problems["adder4"].description
        assert isinstance(store.rows[0]["completion"], str)
        assert store.rows[0]["finish_reason"] in ("stop", "length")    # passed on from the endpoint
    # a different model or sampling setup never mixes into the same file
    with pytest.raises(GenerationError, match="another --out folder"):
        generate_samples(bench, problems, make_backend("hf", tiny_model), sampling, PromptSettings(), path,
                         model="another-model")


def test_transformers_backend_renders_the_chat_template(tiny_model, ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    prompt = build_prompt(bench, bench.problems["Prob001_and2"], PromptSettings())
    backend = make_backend("hf", tiny_model, seed=0)
    text = backend.render(prompt.chat())
    assert "Question:" in text and text.endswith("<|assistant|>\n")
    assert backend.render(prompt.text()) == prompt.text()     # a plain-text prompt is sent as is
    (outs,) = backend.complete([GenerationRequest(prompt.chat(), 3, seed=0)],
                               SamplingSettings(n=3, max_tokens=5).generation())
    assert len(outs) == 3 and all(isinstance(o.text, str) for o in outs)
    # five new tokens and no end of sequence: cut at max tokens, and said so
    assert all(o.finish_reason == "length" and o.tokens == 5 for o in outs if o.tokens == 5)
    assert all(o.finish_reason in ("stop", "length") for o in outs)


def test_vllm_backend_call_shape_with_a_stand_in_module(tiny_model, ve_dir, tmp_path, monkeypatch):
    """vLLM needs a GPU; a stand-in ``vllm`` module checks what the backend sends it and how it reads the
    answers (``LLM(...)``, ``get_tokenizer``, ``generate(texts, [SamplingParams])`` → ``outputs[i].text``)."""
    import sys
    import types

    from transformers import AutoTokenizer

    calls = {}

    class SamplingParams:
        def __init__(self, n, temperature, top_p, max_tokens, seed):
            self.n, self.temperature, self.top_p, self.max_tokens, self.seed = n, temperature, top_p, max_tokens, seed

    class LLM:
        def __init__(self, model, revision, seed, **kwargs):
            calls["init"] = {"model": model, "revision": revision, "seed": seed, **kwargs}

        def get_tokenizer(self):
            return AutoTokenizer.from_pretrained(tiny_model)

        def generate(self, texts, params, **kwargs):
            calls["generate"] = (texts, params)
            return [types.SimpleNamespace(outputs=[
                types.SimpleNamespace(text=f"{i}:{j}", finish_reason="length" if j else "stop", token_ids=[7] * (j + 3))
                for j in range(p.n)]) for i, p in enumerate(params)]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    backend = make_backend("vllm", tiny_model, seed=7, tensor_parallel_size=1,
                           gpu_memory_utilization=0.5, max_model_len=None)
    store = generate_samples(bench, list(bench.problems.values()), backend,
                             SamplingSettings(n=2, temperature=0.8, top_p=0.9, max_tokens=64, seed=7),
                             PromptSettings(), str(tmp_path / "s.jsonl"), model=tiny_model)
    assert calls["init"] == {"model": tiny_model, "revision": None, "dtype": "auto", "seed": 7,
                             "tensor_parallel_size": 1, "gpu_memory_utilization": 0.5}
    texts, params = calls["generate"]
    assert len(texts) == 3 and texts[0].endswith("<|assistant|>\n") and "Question:" in texts[0]
    assert [(p.n, p.temperature, p.top_p, p.max_tokens) for p in params] == [(2, 0.8, 0.9, 64)] * 3
    assert [p.seed for p in params] == [request_seed(7, t) for t in bench.problems]
    assert len({p.seed for p in params}) == 3
    assert [r["completion"] for r in store.rows] == ["0:0", "0:1", "1:0", "1:1", "2:0", "2:1"]
    assert [(r["finish_reason"], r["completion_tokens"]) for r in store.rows[:2]] == [("stop", 3), ("length", 4)]


def test_seeded_sampling_is_per_problem(tiny_model, ve_dir):
    bench = load_benchmark("verilog-eval-v2", ve_dir)
    prompts = [GenerationRequest(build_prompt(bench, p, PromptSettings()).chat(), 2, request_seed(3, t))
               for t, p in bench.problems.items()]
    settings = SamplingSettings(n=2, temperature=1.0, max_tokens=6, seed=3).generation()
    together = make_backend("hf", tiny_model, seed=3).complete(prompts, settings)
    alone = make_backend("hf", tiny_model, seed=3).complete(prompts[2:], settings)
    assert alone[0] == together[2]                 # same samples whatever was sampled before (resume)
