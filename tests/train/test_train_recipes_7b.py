"""Every shipped Qwen2.5-Coder-7B recipe is checked against the model's real configuration (a small fixture with the
published numbers, no download) and against what its comments claim: the launch command, the batch arithmetic, the
vLLM parallelism (attention heads), the loss type, the overlong length and an evaluation split."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex

import pytest
import yaml

from verirl.config import load_recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
RECIPES = sorted(glob.glob(os.path.join(ROOT, "recipes", "qwen2.5-coder-7b", "*", "*.yaml")))
MODEL_CONFIG = os.path.join(HERE, "fixtures", "qwen2.5-coder-7b-instruct", "config.json")
IDS = [os.path.relpath(p, os.path.join(ROOT, "recipes")) for p in RECIPES]


def _model_config() -> dict:
    with open(MODEL_CONFIG) as fh:
        return json.load(fh)


def _raw(path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _comment(path, key) -> str | None:
    """The text after `# <key>:` in the recipe's comments (one line), or None."""
    with open(path) as fh:
        for line in fh:
            if line.startswith(f"# {key}:"):
                return line.split(":", 1)[1].strip()
    return None


def _flag(tokens, *names, default=None):
    for i, tok in enumerate(tokens):
        for name in names:
            if tok == name and i + 1 < len(tokens):
                return tokens[i + 1]
            if tok.startswith(name + "="):
                return tok.split("=", 1)[1]
    return default


def _processes(path) -> int:
    """Training processes of the recipe's documented launch command (its accelerate config or --num_processes)."""
    launch = _comment(path, "launch")
    assert launch, f"{path}: no `# launch:` comment with the accelerate command"
    tokens = shlex.split(launch)
    assert "accelerate" in tokens and "launch" in tokens, launch
    config_file = _flag(tokens, "--config_file")
    assert config_file and os.path.isfile(os.path.join(ROOT, config_file)), f"accelerate config {config_file!r}"
    assert _flag(tokens, "--config") == os.path.relpath(path, ROOT), "the launch line must run this recipe"
    with open(os.path.join(ROOT, config_file)) as fh:
        configured = yaml.safe_load(fh).get("num_processes")
    given = _flag(tokens, "--num_processes", "--num-processes")
    assert given is not None or configured, f"{config_file} leaves the process count to --num_processes; give it"
    return int(given if given is not None else configured)


def expected_comments(recipe, processes: int) -> dict[str, str]:
    """The batch arithmetic a recipe's comments must state, computed from the parsed config."""
    t = recipe.training
    b, ga = t.per_device_train_batch_size, t.gradient_accumulation_steps
    per_step = processes * b * ga
    if recipe.trainer in ("sft", "dpo"):
        unit = "sequences" if recipe.trainer == "sft" else "pairs"
        return {"batch": f"{processes} processes x {b} per device x {ga} accumulation = {per_step} {unit} per "
                         f"optimizer step"}
    g, spg, mu = t.num_generations, t.steps_per_generation, t.num_iterations
    rollout = processes * b * spg
    updates = spg // ga * mu
    return {
        "batch": f"{processes} processes x {b} per device x {ga} accumulation = {per_step} completions = "
                 f"{per_step // g} prompts x {g} generations per optimizer step",
        "rollout": f"{processes} processes x {b} per device x {spg} steps_per_generation = {rollout} completions = "
                   f"{rollout // g} prompts x {g} generations; {updates} optimizer step{'s' if updates != 1 else ''} per rollout"
                   + (f" ({spg // ga} mini-batches x {mu} iterations)" if mu > 1 else ""),
    }


def test_the_fixture_is_qwen2_5_coder_7b():
    cfg = _model_config()
    assert cfg["_name_or_path"] == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]) == (28, 4, 3584)


def test_there_are_7b_recipes_for_every_trainer():
    assert {os.path.basename(os.path.dirname(p)) for p in RECIPES} == {"sft", "grpo", "dapo", "dpo"}


@pytest.mark.parametrize("path", RECIPES, ids=IDS)
def test_batch_comments_are_computed_from_the_config(path):
    recipe = load_recipe(path, check_only=True)
    processes = _processes(path)
    for key, line in expected_comments(recipe, processes).items():
        assert _comment(path, key) == line, f"{os.path.relpath(path, ROOT)}: the comment should read\n# {key}: {line}"
    if recipe.trainer in ("grpo", "dapo"):
        t = recipe.training
        # TRL checks these with the world size of the machine that parses; here with the documented launch
        assert (processes * t.per_device_train_batch_size * t.steps_per_generation) % t.num_generations == 0
        if recipe.training.dynamic_sampling:
            assert (t.per_device_train_batch_size * t.steps_per_generation) % t.num_generations == 0


@pytest.mark.parametrize("path", RECIPES, ids=IDS)
def test_vllm_parallelism_fits_the_model(path):
    recipe = load_recipe(path, check_only=True)
    cfg = _model_config()
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    t = recipe.training
    if recipe.trainer not in ("grpo", "dapo") or not t.use_vllm:
        assert _comment(path, "vllm") is None
        return
    assert t.max_completion_length < cfg["max_position_embeddings"]
    if t.vllm_mode == "colocate":
        tp = t.vllm_tensor_parallel_size
        assert "vllm_tensor_parallel_size" in _raw(path), "state the colocated vLLM's tensor parallel size"
        assert heads % tp == 0 and kv_heads % tp == 0, f"vLLM refuses tensor parallel {tp} for {heads}/{kv_heads} heads"
        assert _processes(path) % tp == 0
        return
    serve = _comment(path, "vllm")
    assert serve, f"{path}: server mode needs a `# vllm:` comment with the `trl vllm-serve` command"
    tokens = shlex.split(serve)
    assert "vllm-serve" in tokens
    tp = int(_flag(tokens, "--tensor-parallel-size", "--tensor_parallel_size", default=1))
    dp = int(_flag(tokens, "--data-parallel-size", "--data_parallel_size", default=1))
    assert heads % tp == 0 and kv_heads % tp == 0, f"vLLM refuses --tensor-parallel-size {tp} for {heads}/{kv_heads}"
    assert _flag(tokens, "--model") == recipe.model.model_name_or_path
    assert int(_flag(tokens, "--port", default=8000)) == t.vllm_server_port
    devices = next((tok.split("=", 1)[1] for tok in tokens if tok.startswith("CUDA_VISIBLE_DEVICES=")), None)
    if devices is not None:
        assert len(devices.split(",")) == tp * dp, "the server's GPUs must be tensor x data parallel"


SUGGESTIONS = sorted(glob.glob(os.path.join(ROOT, "recipes", "**", "*.yaml"), recursive=True)
                     + glob.glob(os.path.join(ROOT, "docs", "*.md")) + [os.path.join(ROOT, "README.md")])


def test_no_file_suggests_a_tensor_parallel_size_the_shipped_model_refuses():
    """Accelerate configs, recipes and docs alike: a `--tensor-parallel-size N` (or `vllm_tensor_parallel_size: N`)
    anywhere must divide Qwen2.5-Coder-7B's 28 attention and 4 KV heads (the 7B recipes are the shipped ones)."""
    cfg = _model_config()
    bad = []
    for path in SUGGESTIONS:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for match in re.finditer(r"(?:--tensor[-_]parallel[-_]size[ =]|vllm_tensor_parallel_size:\s*)(\d+)", text):
            size = int(match.group(1))
            if cfg["num_attention_heads"] % size or cfg["num_key_value_heads"] % size:
                bad.append(f"{os.path.relpath(path, ROOT)}: {match.group(0)}")
    assert not bad, f"vLLM refuses these tensor-parallel sizes for 28/4 heads (use 1, 2 or 4): {bad}"


@pytest.mark.parametrize("path", RECIPES, ids=IDS)
def test_loss_type_is_stated(path):
    raw = _raw(path)
    assert "loss_type" in raw, f"{os.path.relpath(path, ROOT)} relies on TRL's default loss type; state it"
    recipe = load_recipe(path, check_only=True)
    assert recipe.training.loss_type == raw["loss_type"]


@pytest.mark.parametrize("path", RECIPES, ids=IDS)
def test_recipe_evaluates_on_a_held_out_split(path):
    recipe = load_recipe(path, check_only=True)
    assert recipe.training.eval_split is not None
    assert str(getattr(recipe.training.eval_strategy, "value", recipe.training.eval_strategy)) != "no"
    if recipe.trainer in ("grpo", "dapo"):
        t = recipe.training
        generations = t.num_generations_eval or t.num_generations
        assert (t.per_device_eval_batch_size * _processes(path)) % generations == 0


@pytest.mark.parametrize("path", [p for p in RECIPES if "/dapo/" in p or "/grpo/" in p],
                         ids=[i for i in IDS if "/dapo/" in i or "/grpo/" in i])
def test_rl_recipes_tie_the_overlong_length_and_dapo_updates_several_times_per_rollout(path):
    raw = _raw(path)
    for spec in raw["rewards"]:
        if spec["name"] == "overlong":
            assert "max_completion_len" not in spec.get("kwargs", {}), "the overlong length follows max_completion_length"
    for override in ([], ["--max_completion_length", "1024"]):
        recipe = load_recipe(path, override, check_only=True)
        for spec in recipe.training.rewards:
            if spec.name == "overlong":
                assert spec.kwargs["max_completion_len"] == recipe.training.max_completion_length
    if "/dapo/" in path:
        t = load_recipe(path, check_only=True).training
        assert t.num_iterations * t.steps_per_generation > t.gradient_accumulation_steps, "clip-higher needs it"
        assert t.epsilon_high > t.epsilon and t.loss_type == "dapo"
    t = load_recipe(path, check_only=True).training
    per_rollout = t.num_iterations * t.steps_per_generation // t.gradient_accumulation_steps
    assert t.save_steps % per_rollout == 0, "a checkpoint inside a rollout does not resume exactly"
