"""Build a tiny Llama-style causal LM and a byte-level BPE tokenizer offline.

The result is a folder written with ``save_pretrained`` that loads back through
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` exactly like a Hub
model, so tests and the quickstart exercise the real loading code without any download.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

logger = logging.getLogger(__name__)

#: special tokens of the tiny tokenizer (chat roles are plain text inside the template)
PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
UNK_TOKEN = "<|unk|>"

#: a minimal chat template: "<|bos|>" + "<|role|>\ncontent<|eos|>\n" per message, then the assistant header
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

HEAD_DIM = 64


def build_tiny_model(
    out_dir: str | os.PathLike,
    texts: Iterable[str],
    *,
    vocab_size: int = 2048,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    max_position_embeddings: int = 1024,
    seed: int = 0,
) -> str:
    """Train a tokenizer on ``texts``, build a randomly initialised Llama-style LM, save both to ``out_dir``.

    ``hidden_size`` must equal ``num_heads * 64`` (head dimension 64). Returns ``out_dir`` as a string.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("build_tiny_model: `texts` is empty; pass the corpus the tokenizer should be trained on")
    if hidden_size != num_heads * HEAD_DIM:
        raise ValueError(
            f"build_tiny_model: hidden_size={hidden_size} must equal num_heads*{HEAD_DIM}={num_heads * HEAD_DIM}; "
            f"change hidden_size or num_heads"
        )
    specials = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN]
    if vocab_size < 256 + len(specials) + 8:
        raise ValueError(f"build_tiny_model: vocab_size={vocab_size} is too small; use at least 300")

    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)

    # Chat-role markers are learned as ordinary tokens when they appear in the corpus.
    role_text = ["<|system|>\n", "<|user|>\n", "<|assistant|>\n"]
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) + role_text * 4, trainer=trainer)

    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=max_position_embeddings,
        padding_side="left",
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    hf_tok.save_pretrained(out)

    config = LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        head_dim=HEAD_DIM,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=hf_tok.pad_token_id,
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.generation_config.bos_token_id = hf_tok.bos_token_id
    model.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("built tiny model (%d parameters, vocab %d) in %s", n_params, len(hf_tok), out)
    return out
