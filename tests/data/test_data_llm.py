"""LLM backends for real: the OpenAI-compatible HTTP client against a server on 127.0.0.1, and
plain transformers generation with a tiny model built offline. (vLLM cannot be installed on the
CPU test machine; its call shape is checked with a stand-in module in tests/eval/test_eval_generate.py.)

data_pipeline.llm is the one generation module of verirl (data, eval, quickstart): the tests of its
request-level interface (``complete``) are here."""

from __future__ import annotations

import importlib.util
import socket

import pytest

from data_pipeline.config import LLMConfig
from data_pipeline.llm import (
    GenerationError,
    GenerationRequest,
    LLMUnavailable,
    OpenAIBackend,
    RequestRejected,
    Sampling,
    TransformersBackend,
    make_backend,
)

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


def test_openai_backend_rejection_raises_when_the_caller_wants_it(llm_server):
    """Evaluation wants a rejected prompt to stop the run with the server's reason (the data pipeline skips it)."""
    base_url, mock = llm_server
    mock.reject_tops = {"adder8"}
    with pytest.raises(RequestRejected, match="HTTP 400.*context.*fewer new tokens") as info:
        _openai(base_url).complete([GenerationRequest(CONV, 2, seed=1)], on_reject="raise")
    assert isinstance(info.value, GenerationError) and not isinstance(info.value, LLMUnavailable)
    assert len(mock.requests) == 1  # a rejection is not retried


def test_openai_backend_asks_again_when_the_server_returns_fewer_choices(llm_server):
    base_url, mock = llm_server
    mock.max_choices = 1
    mock.variants["adder8"] = ["only"]
    (group,) = _openai(base_url).complete([GenerationRequest(CONV, 3, seed=5)],
                                          Sampling(temperature=0.7, top_p=0.9, max_tokens=64))
    assert [g.text for g in group] == ["only"] * 3 and all(g.finish_reason == "stop" for g in group)
    assert [r["n"] for r in mock.requests] == [3, 2, 1]
    assert [r["seed"] for r in mock.requests] == [5, 6, 7]  # each round other samples, not the same again
    assert {(r["temperature"], r["top_p"], r["max_tokens"]) for r in mock.requests} == {(0.7, 0.9, 64)}


def test_openai_backend_sends_plain_text_prompts_to_completions(llm_server):
    base_url, _ = llm_server  # the mock serves /chat/completions only: a plain text must go elsewhere
    with pytest.raises(RequestRejected, match="/v1/completions answered HTTP 404"):
        _openai(base_url).complete([GenerationRequest("module adder8", 1)])


def test_openai_backend_malformed_answers_are_infrastructure(llm_server):
    base_url, mock = llm_server
    mock.max_choices = 0  # HTTP 200 with no choices: the endpoint is broken, not the prompt
    with pytest.raises(LLMUnavailable, match="failed after 2 attempts.*no choices"):
        _openai(base_url, retry_wait_s=0.0).generate([CONV])


def test_llm_config_refuses_a_base_url_without_scheme():
    with pytest.raises(ValueError, match="must start with http"):
        LLMConfig(kind="openai", model="m", base_url="127.0.0.1:8000/v1")
    LLMConfig(kind="transformers", model="m", base_url="unused")  # only the HTTP backend reads it


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


@pytest.mark.slow
def test_transformers_backend_requests_of_different_sizes_and_the_caller_state(tiny_model):
    """One batch holds prompts with different n; the caller's random state, the model's training mode and the
    tokenizer's padding side are as they were; an in-memory model answers as the same model loaded from disk."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = {"max_new_tokens": 6, "temperature": 1.0, "batch_size": 2, "device": "cpu", "dtype": "float32"}
    backend = TransformersBackend(LLMConfig(kind="transformers", model=tiny_model, **cfg))
    requests = [GenerationRequest(CONV, 1, seed=11), GenerationRequest(CONV, 3, seed=12),
                GenerationRequest("module adder8(", 2, seed=13)]
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    out = backend.complete(requests)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert [len(group) for group in out] == [1, 3, 2]
    assert all(g.finish_reason in ("stop", "length") and 1 <= g.tokens <= 6 for group in out for g in group)
    assert out == backend.complete(requests)  # seeded per batch

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).train()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.padding_side = "right"
    in_memory = TransformersBackend.from_model(model, tokenizer, **cfg)
    assert in_memory.complete(requests) == out
    assert model.training and tokenizer.padding_side == "right"


@pytest.mark.slow
def test_transformers_backend_refuses_chat_prompts_without_a_chat_template(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = None
    backend = TransformersBackend.from_model(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer,
                                             max_new_tokens=2)
    with pytest.raises(GenerationError, match="no chat template") as info:
        backend.generate([CONV])
    assert not isinstance(info.value, LLMUnavailable)  # the configuration is wrong, not the infrastructure
    assert backend.complete([GenerationRequest("module adder8(", 1, seed=0)])[0][0].text is not None
