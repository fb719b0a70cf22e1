"""One code path for every trainer: recipe → datasets, model, rewards, callbacks → TRL trainer → train.

Used by ``verirl train``, ``scripts/train.py`` (under ``accelerate launch``) and Python callers (the quickstart).

Test switch: with ``VERIRL_STOP_AFTER_CHECKPOINT=N`` in the environment, every process kills itself (SIGKILL) right
after the first checkpoint at step >= N is fully written by all ranks, so kill-and-resume tests stop at an exact
point instead of racing a poller; ``N:SIGINT`` or ``N:SIGTERM`` sends that signal instead (what Ctrl-C or a
scheduler's preemption would send).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from verirl.config import RL_TRAINERS, Recipe, RecipeError

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run left behind."""

    output_dir: str
    global_step: int
    metrics: dict[str, Any] = field(default_factory=dict)  # TrainOutput metrics (runtime, loss, ...)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    trainer: Any = None  # the TRL trainer (for callers that want to inspect it)


def _setup_reporting(training) -> None:
    report_to = training.report_to or []
    if isinstance(report_to, str):
        report_to = [report_to]
    if "wandb" in report_to:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise RecipeError(
                "report_to includes wandb but wandb is not installed; `pip install verirl[wandb]` or set "
                "report_to: [tensorboard]"
            ) from None
        if not os.environ.get("WANDB_API_KEY") and "WANDB_MODE" not in os.environ:
            os.environ["WANDB_MODE"] = "offline"
            logger.warning("no WANDB_API_KEY: Weights & Biases runs offline (sync later with `wandb sync`)")


def _model_init_kwargs(recipe: Recipe) -> dict[str, Any]:
    model = recipe.model
    kwargs = {
        "revision": model.model_revision,
        "trust_remote_code": getattr(recipe.training, "trust_remote_code", False),
        "attn_implementation": model.attn_implementation,
        "dtype": model.dtype,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if getattr(recipe.training, "model_init_kwargs", None):
        kwargs.update(recipe.training.model_init_kwargs)
    return kwargs


def load_tokenizer(recipe: Recipe):
    from transformers import AutoTokenizer

    path = recipe.model.model_name_or_path
    tok = AutoTokenizer.from_pretrained(path, revision=recipe.model.model_revision,
                                        trust_remote_code=getattr(recipe.training, "trust_remote_code", False))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def resolve_resume(recipe: Recipe, resume: str | bool | None) -> str | None:
    """The checkpoint to resume from: an explicit path, or the last one in output_dir for ``True``/``"auto"``."""
    from transformers.trainer_utils import get_last_checkpoint

    if resume is None:
        resume = recipe.training.resume_from_checkpoint
    if resume in (None, False, "", "false", "False"):
        return None
    if resume in (True, "true", "True", "auto", "last"):
        out = recipe.training.output_dir
        last = get_last_checkpoint(out) if os.path.isdir(out) else None
        if last is None:
            logger.info("no checkpoint in %s: starting from scratch", out)
        return last
    if not os.path.isdir(str(resume)):
        raise RecipeError(f"resume_from_checkpoint={resume!r} is not a checkpoint folder")
    return str(resume)


def build_trainer(recipe: Recipe, *, callbacks: list | None = None):
    """The TRL trainer for a parsed recipe (nothing trained yet)."""
    from trl import get_peft_config, get_quantization_config

    from verirl.train.data import build_datasets
    from verirl.train.metrics import JsonlMetricsCallback
    from verirl.train.provenance import run_record_callback

    check_local_inputs(recipe)
    if recipe.model.load_in_4bit or recipe.model.load_in_8bit:
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise RecipeError(
                "load_in_4bit/load_in_8bit (QLoRA) needs bitsandbytes and a CUDA GPU: `pip install bitsandbytes`, "
                "or remove the setting to train LoRA on the unquantized model"
            )
        if not recipe.model.use_peft:
            raise RecipeError("a 4/8-bit base model can only be trained through an adapter: add `use_peft: true`")
    _setup_reporting(recipe.training)
    from verirl.train.trl_hooks import use_plain_cpu_device

    use_plain_cpu_device(recipe.training)
    train_ds, eval_ds = build_datasets(recipe.training)
    tokenizer = load_tokenizer(recipe)
    recipe.training.model_init_kwargs = _model_init_kwargs(recipe)
    all_callbacks = [JsonlMetricsCallback(), run_record_callback(recipe)] + list(callbacks or [])
    stop = stop_after_checkpoint_callback()
    if stop is not None:
        all_callbacks.append(stop)
    trainer_class = _trainer_class(recipe.trainer)
    return trainer_class(
        model=recipe.model.model_name_or_path,
        args=recipe.training,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        callbacks=all_callbacks,
        peft_config=get_peft_config(recipe.model),
        quantization_config=get_quantization_config(recipe.model),
    )


def _trainer_class(trainer: str):
    """The TRL trainer class of a recipe's trainer.

    ``sft``: TRL's ``SFTTrainer`` (cold start on reasoning+code traces or task references); ``dpo``: TRL's
    ``DPOTrainer`` on preference pairs (its reference model is the frozen initial policy, or the base model with the
    adapter disabled under PEFT); ``grpo``/``dapo``: :class:`verirl.train.grpo.VerirlGRPOTrainer`, which builds the
    recipe's rewards itself.
    """
    if trainer in RL_TRAINERS:
        from verirl.train.grpo import VerirlGRPOTrainer

        return VerirlGRPOTrainer
    from trl import DPOTrainer, SFTTrainer

    return {"sft": SFTTrainer, "dpo": DPOTrainer}[trainer]


#: how to get what the shipped tiny recipes read (they point into runs/tiny/)
TINY_KIT_HINT = "for recipes/tiny/*.yaml, `verirl models tiny` builds runs/tiny/ (model, tasks, DPO pairs)"


def check_local_inputs(recipe: Recipe) -> None:
    """Fail early, with what to do, when the local model folder or data a recipe names are missing (what
    ``verirl train --check`` verifies besides parsing; a Hub id, ``name`` or ``org/name``, is not checked)."""
    from verirl.train.provenance import looks_local

    path = recipe.model.model_name_or_path
    if not path:
        raise RecipeError("the recipe has no `model_name_or_path:`; set it to a Hub id or a local model folder")
    if looks_local(path) and not os.path.isdir(os.path.expanduser(path)):
        raise RecipeError(
            f"model folder {path!r} does not exist; {TINY_KIT_HINT}; otherwise train the previous stage first, or "
            f"set model_name_or_path to a Hub id"
        )
    for key in ("dataset", "eval_dataset"):
        data = getattr(recipe.training, key)
        if data and not os.path.exists(os.path.expanduser(data)):
            raise RecipeError(f"{key} {data!r} does not exist; {TINY_KIT_HINT}; otherwise set `{key}:` to a JSONL "
                              f"or Parquet file or a dataset folder (`verirl data build` writes one)")


STOP_AFTER_CHECKPOINT = "VERIRL_STOP_AFTER_CHECKPOINT"


def stop_after_checkpoint_callback():
    """The callback behind ``VERIRL_STOP_AFTER_CHECKPOINT=N`` (None when the variable is unset)."""
    value = os.environ.get(STOP_AFTER_CHECKPOINT)
    if not value:
        return None
    step_text, _, signame = value.partition(":")
    signame = signame or "SIGKILL"
    try:
        step = int(step_text)
        if signame not in ("SIGKILL", "SIGINT", "SIGTERM"):
            raise ValueError(signame)
    except ValueError:
        raise RecipeError(f"{STOP_AFTER_CHECKPOINT}={value!r}: expected a checkpoint step N, or N:SIGINT / "
                          f"N:SIGTERM / N:SIGKILL") from None
    from transformers import TrainerCallback

    class StopAfterCheckpoint(TrainerCallback):
        """Signal every process once checkpoint ``step`` is on disk (all ranks past their save: a barrier)."""

        def on_save(self, args, state, control, **kwargs):
            if state.global_step < step:
                return
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.barrier()
            logger.warning("%s=%s: checkpoint-%d is written; sending %s to this process", STOP_AFTER_CHECKPOINT,
                           value, state.global_step, signame)
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), getattr(signal, signame))

    return StopAfterCheckpoint()


def train(recipe: Recipe, *, resume: str | bool | None = None, callbacks: list | None = None,
          save_final: bool = True) -> TrainResult:
    """Train with a parsed recipe; ``resume=True`` continues from the last checkpoint in output_dir."""
    trainer = build_trainer(recipe, callbacks=callbacks)
    checkpoint = resolve_resume(recipe, resume)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    output = trainer.train(resume_from_checkpoint=checkpoint)
    if save_final:
        trainer.save_model(recipe.training.output_dir)
        if trainer.accelerator.is_main_process:
            trainer.processing_class.save_pretrained(recipe.training.output_dir)
    return TrainResult(
        output_dir=recipe.training.output_dir,
        global_step=trainer.state.global_step,
        metrics=dict(output.metrics),
        log_history=list(trainer.state.log_history),
        trainer=trainer,
    )
