"""The quickstart's stages and their bookkeeping: data → model → SFT → eval → RL → eval (→ ablation) → report.

Every stage writes into the run folder and records itself in ``state.json`` when it is complete; a rerun skips the
completed stages (and the RL trainer resumes from its last checkpoint), ``--fresh`` deletes the folder first.
A rerun with settings that change results is refused, so a run folder always holds one experiment.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import Counter

from verirl.quickstart.config import QuickstartConfig

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"


class QuickstartError(RuntimeError):
    """The run cannot go on; the message says what to do."""


class RunFolder:
    """Paths of one run and its ``state.json`` (stage name → result dict)."""

    def __init__(self, config: QuickstartConfig):
        self.root = os.path.abspath(config.out)
        self.config = config
        if config.fresh and os.path.isdir(self.root):
            shutil.rmtree(self.root)
        os.makedirs(self.root, exist_ok=True)
        self.state_path = self.path(STATE_FILE)
        if os.path.exists(self.state_path):
            with open(self.state_path, encoding="utf-8") as fh:
                self.state = json.load(fh)
            old, new = self.state.get("config", {}), config.result_fields()
            diff = sorted(k for k in new if old.get(k) != new[k])
            if diff:
                raise QuickstartError(
                    f"{self.root} holds a run with other settings ({', '.join(diff)}); rerun with --fresh to start "
                    f"over there, or pass another --out"
                )
            self.state["config"] = new
        else:
            self.state = {"config": config.result_fields(), "stages": {}}
            self.save()

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def done(self, stage: str) -> dict | None:
        return self.state["stages"].get(stage)

    def finish(self, stage: str, result: dict) -> dict:
        self.state["stages"][stage] = result
        self.save()
        return result

    def save(self) -> None:
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.state, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.state_path)


# ------------------------------------------------------------------------------------------------------ stages

def stage_data(run: RunFolder, progress, pool) -> dict:
    """Generate the curriculum, check every golden with the reward engine (``pool``), write train/test JSONL."""
    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum, write_jsonl
    from data_pipeline.curriculum.verify import verify_tasks

    cfg = run.config
    curriculum = CurriculumConfig(seed=cfg.seed, n_train=cfg.n_train, n_test=cfg.n_test, max_level=cfg.max_level,
                                  variety=cfg.variety)
    splits = generate_curriculum(curriculum)
    tasks = [t for split in ("train", "test") for t in splits[split]]
    with progress(total=len(tasks), desc="verify goldens", unit="task") as bar:
        report = verify_tasks(tasks, pool=pool, progress=bar.update)
    if not report.ok:
        bad = ", ".join(f"{f['id']} ({f['family']}: {f['failure']})" for f in report.failed[:5])
        raise QuickstartError(f"{len(report.failed)} curriculum goldens fail their own testbench: {bad}")
    for split in ("train", "test"):
        write_jsonl(splits[split], run.path("data", f"{split}.jsonl"))
    overlap = ({t["metadata"]["param_key"] for t in splits["train"]}
               & {t["metadata"]["param_key"] for t in splits["test"]})
    if overlap:
        raise QuickstartError(f"held-out split shares parameter combinations with train: {sorted(overlap)[:3]}")
    return {split: {"tasks": len(splits[split]),
                    "families": dict(Counter(t["metadata"]["family"] for t in splits[split])),
                    "levels": dict(Counter(str(t["metadata"]["level"]) for t in splits[split]))}
            for split in ("train", "test")} | {"goldens_verified": report.checked}


def read_split(run: RunFolder, split: str) -> list[dict]:
    from data_pipeline.curriculum import read_jsonl

    return read_jsonl(run.path("data", f"{split}.jsonl"))


def stage_model(run: RunFolder) -> dict:
    """Train the tokenizer on the curriculum and build the randomly initialised model."""
    from transformers import AutoConfig

    from data_pipeline.curriculum.verify import golden_completion
    from verirl.models.tiny import build_tiny_model

    cfg = run.config
    train = read_split(run, "train")
    texts = [t["prompt"] for t in train] + [golden_completion(t) for t in train]
    out = build_tiny_model(run.path("model_init"), texts, vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
                           num_layers=cfg.num_layers, num_heads=cfg.hidden_size // 64, seed=cfg.seed)
    mc = AutoConfig.from_pretrained(out)
    n_params = _count_params(out)
    return {"path": out, "parameters": n_params, "vocab_size": mc.vocab_size, "layers": mc.num_hidden_layers,
            "hidden_size": mc.hidden_size}


def _count_params(model_dir: str) -> int:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return sum(p.numel() for p in model.parameters())


COMMON_TRAINING = {
    "use_cpu": True,
    "bf16": False,
    "gradient_checkpointing": False,
    "lr_scheduler_type": "constant_with_warmup",
    "logging_steps": 1,
    "report_to": ["none"],
    "dataloader_num_workers": 0,
}


def sft_recipe(run: RunFolder, model_dir: str) -> dict:
    cfg = run.config
    return {
        **COMMON_TRAINING,
        "trainer": "sft",
        "model_name_or_path": model_dir,
        "dataset": run.path("data", "train.jsonl"),
        "output_dir": run.path("sft"),
        "per_device_train_batch_size": cfg.sft_batch_size,
        "max_length": 512,
        "learning_rate": cfg.sft_learning_rate,
        "warmup_steps": min(20, cfg.sft_steps // 5),
        "max_steps": cfg.sft_steps,
        "save_strategy": "no",
        "seed": cfg.seed,
    }


def rl_recipe(run: RunFolder, model_dir: str, output_dir: str, *, ablation: bool) -> dict:
    """DAPO with the hierarchical reward; ``ablation`` turns the entropy gate and dynamic sampling off."""
    cfg = run.config
    reward_kwargs = {"partial_credit": True, "workers": cfg.reward_workers}
    return {
        **COMMON_TRAINING,
        "trainer": "dapo",
        "model_name_or_path": model_dir,
        "dataset": run.path("data", "train.jsonl"),
        "output_dir": output_dir,
        # the hierarchical reward of rewards.hierarchy (format 0.1, syntax 0.1, function 1.0) as its three levels:
        # one simulation per completion (the rewards share a pool), a TRL metric per level, pass rate per level
        "rewards": [
            {"name": "format", "weight": 0.1, "kwargs": reward_kwargs},
            {"name": "syntax", "weight": 0.1, "kwargs": reward_kwargs},
            {"name": "simulation", "weight": 1.0, "kwargs": reward_kwargs},
        ],
        "dynamic_sampling": not ablation,
        # partial credit measures correctness here: keep groups whose pass fractions differ (not only pass/fail)
        "dynamic_sampling_signal": "functional",
        "entropy_gate": ({"mode": "off"} if ablation else
                         {"mode": "per_response", "top_fraction": cfg.entropy_top_fraction, "log_tokens_every": 10}),
        "per_device_train_batch_size": cfg.rl_prompts * cfg.num_generations,
        "num_generations": cfg.num_generations,
        "max_completion_length": cfg.max_completion_length,
        "temperature": cfg.temperature,
        "top_p": 1.0,
        "learning_rate": cfg.rl_learning_rate,
        "warmup_steps": 0,
        "max_steps": cfg.rl_steps,
        "save_strategy": "steps",
        "save_steps": 10,
        "save_total_limit": 1,
        "seed": cfg.seed,
    }


#: metrics shown in a training stage's progress bar: (metrics.jsonl key, label)
PROGRESS_METRICS = (("loss", "loss"), ("reward", "reward"), ("pass_rate/all", "pass"),
                    ("entropy_gate/fraction", "gate"), ("dynamic_sampling/keep_ratio", "keep"))


def progress_callback(desc: str):
    """A tqdm bar per training stage with loss/reward/pass rate in its postfix (instead of printed dicts)."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class StageProgress(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=desc, unit="step")

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and logs and "train_runtime" not in logs:
                shown = {label: f"{logs[key]:.3g}" for key, label in PROGRESS_METRICS
                         if isinstance(logs.get(key), (int, float))}
                if shown:
                    self.bar.set_postfix(shown, refresh=False)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return StageProgress()


def train_stage(recipe_dict: dict, *, resume: bool, desc: str) -> dict:
    """Run one training stage through verirl's trainer code path (:func:`verirl.train.runner.build_trainer`).

    The same steps as :func:`verirl.train.runner.train`, except that TRL's per-step metric printout is replaced by
    one progress bar (the metrics still go to ``<output_dir>/metrics.jsonl``).
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from verirl.config import recipe_from_dict
    from verirl.train.runner import build_trainer, resolve_resume

    recipe = recipe_from_dict(dict(recipe_dict), source="verirl quickstart")
    start = time.monotonic()
    trainer = build_trainer(recipe, callbacks=[progress_callback(desc)])
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    checkpoint = resolve_resume(recipe, resume)
    if checkpoint:
        logger.info("resuming %s from %s", desc, checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    out = recipe.training.output_dir
    trainer.save_model(out)
    trainer.processing_class.save_pretrained(out)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {"path": out, "steps": trainer.state.global_step, "seconds": round(time.monotonic() - start, 1),
            "final_loss": losses[-1] if losses else None}
