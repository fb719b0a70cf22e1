"""DPO on preference pairs (prompt/chosen/rejected) from the data pipeline: TRL's ``DPOTrainer``."""

from __future__ import annotations

from verirl.config import Recipe


def build_dpo_trainer(recipe: Recipe, model, tokenizer, train_dataset, eval_dataset, callbacks, peft_config,
                      quantization_config):
    from trl import DPOTrainer

    # ref_model=None: TRL builds the frozen reference from the same checkpoint (or disables the adapter with PEFT)
    return DPOTrainer(
        model=model,
        ref_model=None,
        args=recipe.training,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=peft_config,
        quantization_config=quantization_config,
    )
