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


# ------------------------------------------------------------------------------------------------ the tiny kit

#: what ``build_tiny_kit`` writes under its root; ``recipes/tiny/*.yaml`` point at these names under runs/tiny
KIT_MODEL, KIT_TASKS, KIT_TEST, KIT_PAIRS, KIT_MANIFEST = "model", "tasks.jsonl", "test.jsonl", "pairs.jsonl", "kit.json"

#: the kit's defaults: a model that trains a step in about a second on one CPU core
KIT_DEFAULTS = {"seed": 0, "n_tasks": 24, "n_test": 8, "max_level": 2, "vocab_size": 512, "hidden_size": 64, "num_layers": 2,
                "max_position_embeddings": 512}


def tiny_kit_paths(root: str | os.PathLike) -> dict[str, str]:
    """Where the kit built under ``root`` keeps its model folder, tasks, DPO pairs and manifest."""
    root = os.fspath(root)
    return {"model": os.path.join(root, KIT_MODEL), "tasks": os.path.join(root, KIT_TASKS),
            "test": os.path.join(root, KIT_TEST), "pairs": os.path.join(root, KIT_PAIRS),
            "manifest": os.path.join(root, KIT_MANIFEST)}


def build_tiny_kit(root: str | os.PathLike, **settings) -> dict[str, str]:
    """Build what the tiny recipes train on, offline: curriculum tasks, DPO pairs and a tiny model trained on them.

    Writes ``<root>/model`` (tokenizer + randomly initialised Llama-style LM), ``<root>/tasks.jsonl`` (curriculum
    tasks in the task schema, for SFT/GRPO/DAPO), ``<root>/test.jsonl`` (held-out tasks: parameter combinations not
    in tasks.jsonl, for ``verirl eval --benchmark tasks``), ``<root>/pairs.jsonl`` (prompt/chosen/rejected, for DPO:
    the golden module against an empty one) and ``<root>/kit.json`` (the settings). ``settings`` override
    :data:`KIT_DEFAULTS`. Every file is written under a temporary name and renamed when complete, so an interrupted
    build never leaves a folder that looks like a model. Returns :func:`tiny_kit_paths`.
    """
    import json
    import shutil
    import tempfile

    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum

    unknown = sorted(set(settings) - set(KIT_DEFAULTS))
    if unknown:
        raise ValueError(f"build_tiny_kit: unknown setting(s) {unknown}; known: {sorted(KIT_DEFAULTS)}")
    cfg = {**KIT_DEFAULTS, **settings}
    if cfg["n_tasks"] < 1 or cfg["n_test"] < 1:
        raise ValueError(f"build_tiny_kit: n_tasks={cfg['n_tasks']} and n_test={cfg['n_test']} must be at least 1")
    paths = tiny_kit_paths(root)
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    splits = generate_curriculum(CurriculumConfig(seed=cfg["seed"], n_train=cfg["n_tasks"], n_test=cfg["n_test"],
                                                  max_level=cfg["max_level"], variety="low"))
    tasks, test = splits["train"], splits["test"]
    pairs = [{"prompt": t["prompt"], "chosen": f"```verilog\n{t['reference'].strip()}\n```",
              "rejected": f"```verilog\nmodule {t['top']}();\nendmodule\n```"} for t in tasks]
    texts = ([t["prompt"] for t in tasks] + [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
             + ["```verilog\n", "\n```"] * 4)
    staging = tempfile.mkdtemp(prefix=".tiny-kit-", dir=root)
    try:
        build_tiny_model(os.path.join(staging, KIT_MODEL), texts, vocab_size=cfg["vocab_size"],
                         hidden_size=cfg["hidden_size"], num_layers=cfg["num_layers"],
                         num_heads=max(1, cfg["hidden_size"] // HEAD_DIM),
                         max_position_embeddings=cfg["max_position_embeddings"], seed=cfg["seed"])
        for name, rows in ((KIT_TASKS, tasks), (KIT_TEST, test), (KIT_PAIRS, pairs)):
            with open(os.path.join(staging, name), "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(row) + "\n" for row in rows)
        with open(os.path.join(staging, KIT_MANIFEST), "w", encoding="utf-8") as fh:
            json.dump({"settings": cfg, "tasks": len(tasks), "test": len(test), "pairs": len(pairs)}, fh, indent=2,
                      sort_keys=True)
        if os.path.isdir(paths["model"]):
            shutil.rmtree(paths["model"])
        for name in (KIT_MODEL, KIT_TASKS, KIT_TEST, KIT_PAIRS, KIT_MANIFEST):  # the manifest last: a whole kit
            os.replace(os.path.join(staging, name), os.path.join(root, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("built the tiny kit in %s (%d tasks, %d pairs)", root, len(tasks), len(pairs))
    return paths


def read_tiny_kit(root: str | os.PathLike) -> dict | None:
    """The manifest of a complete kit under ``root`` (None when there is none, or it is incomplete)."""
    import json

    paths = tiny_kit_paths(root)
    if not all(os.path.exists(paths[k]) for k in ("model", "tasks", "test", "pairs", "manifest")):
        return None
    try:
        with open(paths["manifest"], encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
