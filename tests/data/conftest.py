"""Fixtures of the data-pipeline tests: a small corpus, a mock OpenAI-compatible LLM server on
127.0.0.1 that answers with real Verilog (equivalent rewrites and deliberately wrong ones), and
a tiny local transformers model built offline."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # data_fixtures is imported by name
    sys.path.insert(0, HERE)

from data_fixtures import CORPUS, MockLLM


@pytest.fixture(scope="session")
def _llm_server_session():
    state = MockLLM()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            state.auth.append(self.headers.get("Authorization"))
            if self.path.rstrip("/") != "/v1/chat/completions":
                status, payload = 404, {"error": "not found"}
            else:
                status, payload = state.answer(body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def llm_server(_llm_server_session):
    """An OpenAI-compatible server on 127.0.0.1 (ephemeral port); yields (base_url, MockLLM), reset."""
    base_url, state = _llm_server_session
    state.reset()
    return base_url, state


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny Llama-style model with a tokenizer trained on the fixture corpus (built offline)."""
    from verirl.models.tiny import build_tiny_model

    texts = []
    for root, _, files in os.walk(CORPUS):
        for name in sorted(files):
            with open(os.path.join(root, name), encoding="utf-8") as fh:
                texts.append(fh.read())
    texts += ["Implement the following specification as a synthesizable Verilog module.",
              "The module computes its outputs from its inputs."] * 4
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"), texts, vocab_size=400, hidden_size=64,
                            num_layers=1, num_heads=1, max_position_embeddings=2048)
