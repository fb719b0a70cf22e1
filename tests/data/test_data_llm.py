"""LLM backends for real: the OpenAI-compatible HTTP client against a server on 127.0.0.1, and
plain transformers generation with a tiny model built offline. (vLLM cannot be installed on the
CPU test machine; its backend is exercised only where vllm is importable.)"""

from __future__ import annotations

import importlib.util
import socket

import pytest

from data_pipeline.config import LLMConfig
from data_pipeline.llm import LLMUnavailable, OpenAIBackend, TransformersBackend, make_backend

CONV = [{"role": "user", "content": "Implement the following specification as a synthesizable Verilog module "
                                    "named `adder8`."}]


def _openai(base_url: str, **kw) -> OpenAIBackend:
    settings = {"max_retries": 1, "request_timeout_s": 10, **kw}
    return OpenAIBackend(LLMConfig(kind="openai", model="mock", base_url=base_url, api_key_env="", **settings))


def test_openai_backend_returns_n_choices_in_order(llm_server):
    base_url, mock = llm_server
    mock.variants["adder8"] = ["first", "second", "third"]
    out = _openai(base_url).generate([CONV, CONV], n=3, seed=5)
    assert out == [["first", "second", "third"]] * 2
    body = mock.requests[0]
    assert body["model"] == "mock" and body["n"] == 3 and body["messages"] == CONV
    assert {r["seed"] for r in mock.requests} == {5, 6}  # one seed per conversation


def test_openai_backend_sends_the_key_from_the_named_variable(llm_server, monkeypatch):
    base_url, mock = llm_server
    monkeypatch.setenv("MY_TEST_KEY", "sk-test")
    backend = OpenAIBackend(LLMConfig(kind="openai", model="mock", base_url=base_url, api_key_env="MY_TEST_KEY"))
    assert backend.generate([CONV])[0]
    assert mock.auth == ["Bearer sk-test"]
    _openai(base_url).generate([CONV])  # api_key_env "" sends no key
    assert mock.auth == ["Bearer sk-test", None]


def test_openai_backend_rejection_and_outage(llm_server):
    base_url, mock = llm_server
    mock.reject_tops = {"adder8"}
    assert _openai(base_url).generate([CONV]) == [None]  # 4xx: this row only
    mock.reject_tops = set()
    mock.fail_with = 503
    with pytest.raises(LLMUnavailable, match="503"):
        _openai(base_url).generate([CONV])
    assert len(mock.requests) == 1 + 2  # one rejected, then 1 try + 1 retry


def test_openai_backend_unreachable_endpoint_is_infrastructure():
    with socket.socket() as s:  # bound, never listening: connections are refused, and no other process can
        s.bind(("127.0.0.1", 0))  # take the port while the test runs (a closed port could be reused at once)
        port = s.getsockname()[1]
        with pytest.raises(LLMUnavailable, match="failed after"):
            _openai(f"http://127.0.0.1:{port}/v1", max_retries=0).generate([CONV])


@pytest.mark.slow
def test_transformers_backend_generates_with_a_tiny_local_model(tiny_model):
    cfg = LLMConfig(kind="transformers", model=tiny_model, max_new_tokens=8, temperature=0.0, batch_size=2,
                    device="cpu", dtype="float32")
    backend = make_backend(cfg)
    assert isinstance(backend, TransformersBackend)
    convs = [CONV, [{"role": "system", "content": "Be brief."}, *CONV], CONV]
    out = backend.generate(convs, n=2, seed=0)
    assert len(out) == 3 and all(len(texts) == 2 for texts in out)
    assert all(isinstance(t, str) for texts in out for t in texts)
    assert out[0] == out[2]  # greedy decoding of the same conversation is deterministic
    sampled = TransformersBackend(LLMConfig(kind="transformers", model=tiny_model, max_new_tokens=8,
                                            temperature=1.0, device="cpu", dtype="float32"))
    assert sampled.generate([CONV], n=1, seed=3) == sampled.generate([CONV], n=1, seed=3)  # seeded


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed: error path not reachable")
def test_vllm_backend_says_how_to_install():
    with pytest.raises(ImportError, match="verirl\\[vllm\\]"):
        make_backend(LLMConfig(kind="vllm", model="x"))
