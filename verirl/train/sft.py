"""SFT cold start (distill-then-RL): TRL's ``SFTTrainer`` on reasoning+code traces or task references."""

from __future__ import annotations

from verirl.config import Recipe


def build_sft_trainer(recipe: Recipe, model, tokenizer, train_dataset, eval_dataset, callbacks, peft_config,
                      quantization_config):
    from trl import SFTTrainer

    return SFTTrainer(
        model=model,
        args=recipe.training,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=peft_config,
        quantization_config=quantization_config,
    )
