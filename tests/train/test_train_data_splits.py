"""Recipes' held-out evaluation split, and DPO pairs sampled and trained on the same prompt rendering."""

from __future__ import annotations

import json

import pytest
from tiny_assets import needs_icarus, write_jsonl

from verirl.config import recipe_from_dict
from verirl.train.data import DatasetError, build_datasets, dpo_dataset, split_rows

SYSTEM = "Answer with one Verilog module in a ```verilog block."
TEMPLATE = "Task {id}: {prompt}"


def _rows(n, start=0):
    return [{"id": f"t{i}", "prompt": f"p{i}", "top": "top", "reference": "module top; endmodule"}
            for i in range(start, start + n)]


@pytest.mark.parametrize("split, low, high", [(0.1, 20, 60), (0.25, 70, 130), (7, 7, 7), (1, 1, 1), (1e-6, 1, 1)])
def test_eval_split_holds_out_a_count_or_a_fraction(split, low, high):
    train, evals = split_rows(_rows(400), split)
    assert low <= len(evals) <= high and len(train) + len(evals) == 400
    assert not {r["id"] for r in train} & {r["id"] for r in evals}


def test_eval_split_is_stable_when_rows_are_reordered_or_added():
    rows = _rows(50)
    _, evals = split_rows(rows, 5)
    _, shuffled = split_rows(list(reversed(rows)), 5)
    assert {r["id"] for r in shuffled} == {r["id"] for r in evals}
    # a fraction depends on each row's own id: a grown dataset keeps every row held out before held out
    _, small = split_rows(rows, 0.2)
    _, grown = split_rows(rows + _rows(150, start=50), 0.2)
    assert small and {r["id"] for r in small} <= {r["id"] for r in grown}
    assert {r["id"] for r in grown} - {r["id"] for r in small} <= {f"t{i}" for i in range(50, 200)}


def test_eval_split_that_leaves_nothing_to_train_on_is_an_error():
    with pytest.raises(DatasetError, match="lower eval_split"):
        split_rows(_rows(4), 4)


def test_rows_without_id_are_split_by_content():
    rows = [{"prompt": f"p{i}", "completion": "c"} for i in range(20)]
    _, evals = split_rows(rows, 4)
    _, again = split_rows(list(reversed(rows)), 4)
    assert len(evals) == 4 and sorted(r["prompt"] for r in again) == sorted(r["prompt"] for r in evals)


def test_build_datasets_with_eval_split(tmp_path):
    path = write_jsonl(_rows(30), tmp_path / "tasks.jsonl")
    recipe = recipe_from_dict({"trainer": "sft", "model_name_or_path": "m", "dataset": path, "use_cpu": True,
                               "output_dir": str(tmp_path / "o"), "eval_split": 6, "eval_strategy": "steps",
                               "eval_steps": 10, "max_train_samples": 10})
    train, evals = build_datasets(recipe.training)
    assert len(evals) == 6 and len(train) == 10  # max_train_samples applies to the training side only
    train_prompts = {m[-1]["content"] for m in train["prompt"]}
    eval_prompts = {m[-1]["content"] for m in evals["prompt"]}
    assert not train_prompts & eval_prompts


# ------------------------------------------------------------------------------------------ DPO rendering


def _dpo_args(tmp_path, **kw):
    data = {"trainer": "dpo", "model_name_or_path": "m", "dataset": str(tmp_path / "pairs.jsonl"), "use_cpu": True,
            "output_dir": str(tmp_path / "o"), "system_prompt": SYSTEM, "prompt_template": TEMPLATE, **kw}
    return recipe_from_dict(data).training


def _pair(**rendering):
    row = {"prompt": "Write top.", "chosen": "a", "rejected": "b", "task_id": "t1", "id": "t1", "top": "top"}
    if rendering:
        row["rendering"] = rendering
    return row


def test_dpo_refuses_pairs_sampled_with_another_rendering(tmp_path):
    args = _dpo_args(tmp_path)
    same = dpo_dataset(args, [_pair(system_prompt=SYSTEM, prompt_template=TEMPLATE)])
    assert same[0]["prompt"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Task t1: Write top."}]
    for other in ({"system_prompt": None, "prompt_template": TEMPLATE},
                  {"system_prompt": SYSTEM, "prompt_template": "{prompt}"},
                  {"system_prompt": "Be brief.", "prompt_template": TEMPLATE}):
        with pytest.raises(DatasetError, match="sampled with system_prompt"):
            dpo_dataset(args, [_pair(system_prompt=SYSTEM, prompt_template=TEMPLATE), _pair(**other)])
    # hand-made pairs without a record of their rendering are rendered with the recipe's settings
    assert dpo_dataset(args, [_pair()])[0]["prompt"][0] == {"role": "system", "content": SYSTEM}


def test_preference_pairs_need_a_passing_chosen_by_default():
    from data_pipeline.config import PreferenceConfig
    from data_pipeline.preferences import make_pairs
    from rewards.score import Score

    partial = Score(0.75, False, "mismatch", {}, {"pass_fraction": 0.75})
    failed = Score(0.0, False, "mismatch", {}, {"pass_fraction": 0.0})
    passed = Score(1.0, True, None, {}, {"pass_fraction": 1.0})
    task = {"id": "t", "prompt": "p"}
    cfg = PreferenceConfig(tasks="t", output="o", completions="c")
    assert cfg.require_chosen_pass is True
    assert make_pairs(task, ["x", "y"], [partial, failed], cfg) == []  # two wrong designs: no pair
    pairs = make_pairs(task, ["x", "y", "z"], [partial, failed, passed], cfg)
    assert [p["chosen"] for p in pairs] == ["z"]
    loose = PreferenceConfig(tasks="t", output="o", completions="c", require_chosen_pass=False)
    assert len(make_pairs(task, ["x", "y"], [partial, failed], loose)) == 1


@pytest.mark.slow
@pytest.mark.eda
@needs_icarus
def test_preferences_are_sampled_with_the_prompt_the_dpo_recipe_trains_on(tiny_assets, tmp_path):
    from data_pipeline.config import LLMConfig, PreferenceConfig
    from data_pipeline.llm import LLMBackend
    from data_pipeline.preferences import build_preferences

    with open(tiny_assets["tasks"]) as fh:
        tasks = [json.loads(line) for line in fh][:3]
    by_prompt = {}

    class Recorder(LLMBackend):
        """Answers the reference for half the samples and an empty module for the others; records what it saw."""

        def __init__(self):
            super().__init__(LLMConfig(kind="openai", model="recorder"))

        def generate(self, conversations, *, n=1, seed=0):
            out = []
            for conv in conversations:
                task = next(t for t in tasks if t["prompt"] in conv[-1]["content"])
                by_prompt[task["id"]] = conv
                right = f"```verilog\n{task['reference']}```"
                wrong = f"```verilog\nmodule {task['top']}();\nendmodule\n```"
                out.append([right, wrong] * (n // 2))
            return out

    path = write_jsonl(tasks, tmp_path / "tasks.jsonl")
    cfg = PreferenceConfig(tasks=path, output=str(tmp_path / "pairs.jsonl"), llm=LLMConfig(kind="openai", model="x"),
                           samples_per_prompt=2, system_prompt=SYSTEM, prompt_template=TEMPLATE, margin=0.5)
    counts = build_preferences(cfg, backend=Recorder(), progress=False)
    assert counts["pairs"] == 3
    with open(tmp_path / "pairs.jsonl") as fh:
        pairs = [json.loads(line) for line in fh]
    assert all(p["rendering"] == {"system_prompt": SYSTEM, "prompt_template": TEMPLATE} for p in pairs)
    train = dpo_dataset(_dpo_args(tmp_path), pairs)
    for row, pair in zip(train, pairs):
        assert row["prompt"] == by_prompt[pair["task_id"]]  # trained on exactly what was sampled
    with pytest.raises(DatasetError, match="sampled with"):
        dpo_dataset(_dpo_args(tmp_path, system_prompt="Another system prompt."), pairs)


# ------------------------------------------------------------------------------------------ free-form columns

FREE_FORM_ROWS = [
    {"id": "a", "prompt": "p", "top": "t", "files": {"v.hex": "00\n"}, "metadata": {"level": 2, "tags": ["x"]}},
    {"id": "b", "prompt": "p", "top": "t", "metadata": {"difficulty": {"pass_rate": 0.5, "samples": 8}}},
    {"id": "c", "prompt": "p", "top": "t", "files": {"a.mem": "1", "b.mem": "2"}, "metadata": {}},
]


def test_free_form_columns_reach_the_trainer_as_each_row_had_them(tmp_path):
    """`files`/`metadata` differ in keys from row to row: no None holes from a merged struct, no JSON text."""
    from verirl.train.data import rl_dataset

    args = recipe_from_dict({"trainer": "grpo", "model_name_or_path": "m", "dataset": "d", "use_cpu": True,
                             "output_dir": str(tmp_path), "rewards": [{"name": "format"}]}).training
    dataset = rl_dataset(args, [dict(r) for r in FREE_FORM_ROWS])
    for row, original in zip(dataset, FREE_FORM_ROWS):
        assert row["metadata"] == original["metadata"]
        assert row["files"] == original.get("files")
    assert dataset[[0, 2]]["files"] == [FREE_FORM_ROWS[0]["files"], FREE_FORM_ROWS[2]["files"]]


@pytest.mark.slow
def test_rewards_receive_files_and_metadata_as_mappings(tiny_assets, tmp_path):
    import train_toy_rewards

    from verirl.config import load_recipe
    from verirl.train import build_trainer

    rows = [dict(r, prompt="Write it.") for r in FREE_FORM_ROWS] * 4
    path = write_jsonl(rows, tmp_path / "tasks.jsonl")
    recipe = load_recipe("recipes/tiny/grpo.yaml", {
        "model_name_or_path": tiny_assets["model"], "dataset": path, "output_dir": str(tmp_path / "out"),
        "rewards": [{"name": "train_toy_rewards:columns_reward"}], "max_completion_length": 4,
    })
    trainer = build_trainer(recipe)
    trainer.model.train()
    train_toy_rewards.SEEN_COLUMNS.clear()
    trainer.score_round(next(iter(trainer.get_train_dataloader())))
    (seen,) = train_toy_rewards.SEEN_COLUMNS
    assert all(isinstance(m, dict) for m in seen["metadata"])
    assert all(f is None or isinstance(f, dict) for f in seen["files"]) and any(seen["files"])
