"""build_tiny_model: a tokenizer and a causal LM built offline, loaded back like a Hub model."""

from __future__ import annotations

import pytest

from verirl.models import build_tiny_model


def test_tiny_model_loads_through_the_auto_classes(tiny_assets):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_assets["model"])
    model = AutoModelForCausalLM.from_pretrained(tiny_assets["model"])
    assert tok.pad_token_id is not None and tok.eos_token_id is not None and tok.pad_token_id != tok.eos_token_id
    text = tok.apply_chat_template([{"role": "system", "content": "be brief"}, {"role": "user", "content": "and"}],
                                   tokenize=False, add_generation_prompt=True)
    assert text.startswith(tok.bos_token) and text.endswith("<|assistant|>\n") and "be brief" in text
    ids = tok("module top; endmodule", return_tensors="pt")
    assert tok.decode(ids["input_ids"][0]) == "module top; endmodule"  # byte-level BPE round-trips
    out = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids["input_ids"].shape[1] + 3
    assert model.config.head_dim == 64 and model.config.vocab_size == len(tok)


def test_tiny_model_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="texts"):
        build_tiny_model(tmp_path / "a", [])
    with pytest.raises(ValueError, match="hidden_size"):
        build_tiny_model(tmp_path / "b", ["module m; endmodule"], hidden_size=100, num_heads=2)
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_model(tmp_path / "c", ["module m; endmodule"], vocab_size=100)
