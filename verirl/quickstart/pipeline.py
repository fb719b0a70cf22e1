"""The quickstart's stages and their bookkeeping: data → model → SFT (probe) → eval → RL → eval (→ ablation) → report.

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
    """Generate the curriculum, check every golden with the reward engine (``pool``), write the split JSONL files.

    Splits: ``train``; ``test`` (held out by parameters: the same families, parameter combinations never in
    ``train``); ``test_family`` (held out by family: families never in ``train``), when ``--heldout-families`` names
    any.
    """
    from data_pipeline.curriculum import CurriculumConfig, generate_curriculum, write_jsonl
    from data_pipeline.curriculum.verify import verify_tasks

    cfg = run.config
    curriculum = CurriculumConfig(seed=cfg.seed, n_train=cfg.n_train, n_test=cfg.n_test, max_level=cfg.max_level,
                                  variety=cfg.variety, heldout_families=cfg.heldout_family_list,
                                  n_test_family=cfg.n_test_family)
    splits = generate_curriculum(curriculum)
    tasks = [t for split in splits.values() for t in split]
    with progress(total=len(tasks), desc="verify goldens", unit="task") as bar:
        report = verify_tasks(tasks, pool=pool, progress=bar.update)
    if not report.ok:
        bad = ", ".join(f"{f['id']} ({f['family']}: {f['failure']})" for f in report.failed[:5])
        raise QuickstartError(f"{len(report.failed)} curriculum goldens fail their own testbench: {bad}")
    for split, split_tasks in splits.items():
        write_jsonl(split_tasks, run.path("data", f"{split}.jsonl"))
    rl_prompts = rl_prompt_tasks(cfg, splits["train"])
    if rl_prompts_file(cfg) == RL_PROMPTS_FILE:  # natural: the RL stage reads train.jsonl itself
        write_jsonl(rl_prompts, run.path("data", RL_PROMPTS_FILE))
    train_keys = {t["metadata"]["param_key"] for t in splits["train"]}
    overlap = train_keys & {t["metadata"]["param_key"] for t in splits["test"]}
    if overlap:
        raise QuickstartError(f"held-out split shares parameter combinations with train: {sorted(overlap)[:3]}")
    train_families = {t["metadata"]["family"] for t in splits["train"]}
    leaked = train_families & {t["metadata"]["family"] for t in splits.get("test_family", [])}
    if leaked:
        raise QuickstartError(f"held-out families {sorted(leaked)} occur in train")
    return {split: {"tasks": len(split_tasks),
                    "families": dict(Counter(t["metadata"]["family"] for t in split_tasks)),
                    "levels": _level_counts(split_tasks)}
            for split, split_tasks in splits.items()} | {
        "goldens_verified": report.checked,
        "rl_prompts": {"mix": cfg.rl_prompt_mix, "tasks": len(rl_prompts),
                       "distinct": len({t["id"] for t in rl_prompts}),
                       "levels": _level_counts(rl_prompts)}}


def _level_counts(tasks: list[dict]) -> dict[str, int]:
    return dict(Counter(str(t["metadata"]["level"]) for t in tasks))


#: the RL prompts of ``--rl-prompt-mix balanced`` (training tasks only), beside the splits in ``data/``
RL_PROMPTS_FILE = "rl_prompts.jsonl"


def rl_prompts_file(cfg: QuickstartConfig) -> str:
    """The file in ``data/`` the RL stage reads: the balanced prompts, or ``train.jsonl`` itself (``natural``)."""
    return "train.jsonl" if cfg.rl_prompt_mix == "natural" else RL_PROMPTS_FILE


def rl_prompt_tasks(cfg: QuickstartConfig, train: list[dict]) -> list[dict]:
    """The RL stage's prompts: the training split (``natural``), or ``--n-train`` of its tasks with every level the
    same share (``balanced``; :func:`data_pipeline.curriculum.balance.balance_levels`, seeded by ``--seed``)."""
    if cfg.rl_prompt_mix == "natural":
        return list(train)
    from data_pipeline.curriculum.balance import balance_levels

    return balance_levels(train, cfg.n_train, cfg.seed)


EVAL_SPLITS = {"test": "held out by parameters", "test_family": "held out by family"}


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
        "warmup_steps": min(20, cfg.sft_max_steps // 5),
        "max_steps": cfg.sft_max_steps,
        "save_strategy": "no",
        "seed": cfg.seed,
    }


def stage_sft(run: RunFolder, model_dir: str, pool) -> dict:
    """SFT until the probe of training tasks passes at ``--sft-probe-target`` (or for ``--sft-max-steps``)."""
    from verirl.quickstart.probe import PROBE_FILE, make_probe_callback, probe_tasks

    cfg = run.config
    callbacks, probe = [], None
    if cfg.sft_probe_target > 0:
        tasks = probe_tasks(read_split(run, "train"), cfg.sft_probe_tasks, cfg.seed)
        probe = make_probe_callback(tasks, pool, target=cfg.sft_probe_target, every=cfg.sft_probe_every,
                                    min_steps=cfg.sft_min_steps, max_new_tokens=cfg.max_completion_length,
                                    out_path=run.path("sft", PROBE_FILE), clocked_target=cfg.sft_probe_clocked_target)
        callbacks.append(probe)
    result = train_stage(sft_recipe(run, model_dir), resume=False, desc="SFT", callbacks=callbacks)
    if probe is not None:
        result["probe"] = {"target": cfg.sft_probe_target, "clocked_target": cfg.sft_probe_clocked_target,
                           "tasks": cfg.sft_probe_tasks,
                           "stopped_at": probe.stopped_at, "probes": len(probe.history),
                           "seconds": round(probe.seconds, 1),
                           "last_pass_rate": probe.history[-1]["pass_rate"] if probe.history else None,
                           "last_pass_rate_clocked": probe.history[-1]["pass_rate_clocked"] if probe.history else None}
        if probe.stopped_at is None:
            logger.warning("SFT probe never reached %.0f%% (clocked tasks %.0f%%) in %d steps; RL starts from the "
                           "last SFT step", 100 * cfg.sft_probe_target, 100 * cfg.sft_probe_clocked_target,
                           result["steps"])
    return result


def rl_stages(config: QuickstartConfig) -> list[tuple[str, str, int]]:
    """(stage name, arm, RL seed) of every RL stage of a run: the default stage ``rl`` (full arm, run seed), then
    with ``--ablation`` each arm of ``--ablation-arms`` for ``--ablation-seeds`` seeds (``rl_<arm>_s<k>``)."""
    stages = [("rl", "full", config.seed)]
    if config.ablation:
        for k in range(config.ablation_seeds):
            for arm in config.ablation_arm_list:
                if arm == "full" and k == 0:
                    continue  # that is the default RL stage
                stages.append((f"rl_{arm}_s{k}", arm, config.seed + k))
    return stages


def rl_recipe(run: RunFolder, model_dir: str, output_dir: str, *, arm: str = "full", seed: int | None = None) -> dict:
    """DAPO with the hierarchical reward; the ``arm`` (see :data:`~verirl.quickstart.config.ARMS`) turns the
    entropy gate and dynamic sampling on or off; ``seed`` is the RL seed (default: the run's)."""
    from verirl.quickstart.config import ARMS

    cfg = run.config
    gate, dynamic = ARMS[arm]
    reward_kwargs = {"partial_credit": True, "workers": cfg.reward_workers}
    return {
        **COMMON_TRAINING,
        "trainer": "dapo",
        "model_name_or_path": model_dir,
        # training tasks only, every level the same share unless --rl-prompt-mix natural (see stage_data)
        "dataset": run.path("data", rl_prompts_file(cfg)),
        "output_dir": output_dir,
        # the hierarchical reward of rewards.hierarchy (format 0.1, syntax 0.1, function 1.0) as its three levels:
        # one simulation per completion (the rewards share a pool), a TRL metric per level, pass rate per level
        "rewards": [
            {"name": "format", "weight": 0.1, "kwargs": reward_kwargs},
            {"name": "syntax", "weight": 0.1, "kwargs": reward_kwargs},
            {"name": "simulation", "weight": 1.0, "kwargs": reward_kwargs},
        ],
        "dynamic_sampling": dynamic,
        # partial credit measures correctness here: keep groups whose pass fractions differ (not only pass/fail)
        "dynamic_sampling_signal": "functional",
        "entropy_gate": ({"mode": "per_response", "top_fraction": cfg.entropy_top_fraction, "log_tokens_every": 10}
                         if gate else {"mode": "off"}),
        "per_device_train_batch_size": cfg.rl_prompts * cfg.num_generations,
        "num_generations": cfg.num_generations,
        "max_completion_length": cfg.max_completion_length,
        "temperature": cfg.temperature,
        "top_p": 1.0,
        "learning_rate": cfg.rl_learning_rate,
        # one optimizer step per rollout: the policy ratio is 1 at the update, so DAPO's clip-higher (0.28) would
        # have no effect; the recipe says so instead of carrying an inert setting (and its warning)
        "epsilon_high": 0.2,
        "warmup_steps": 0,
        "max_steps": cfg.rl_steps,
        "save_strategy": "steps",
        "save_steps": 10,
        "save_total_limit": 1,
        "seed": cfg.seed if seed is None else seed,
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


def train_stage(recipe_dict: dict, *, resume: bool, desc: str, callbacks: list | None = None) -> dict:
    """Run one training stage through verirl's trainer code path (:func:`verirl.train.runner.build_trainer`).

    The same steps as :func:`verirl.train.runner.train`, except that TRL's per-step metric printout is replaced by
    one progress bar (the metrics still go to ``<output_dir>/metrics.jsonl``).
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from verirl.config import recipe_from_dict
    from verirl.train.runner import build_trainer, resolve_resume

    recipe = recipe_from_dict(dict(recipe_dict), source="verirl quickstart")
    start = time.monotonic()
    trainer = build_trainer(recipe, callbacks=[progress_callback(desc), *(callbacks or [])])
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
