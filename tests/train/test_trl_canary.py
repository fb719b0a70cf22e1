"""TRL canary: every private member of TRL (and of the libraries under it) that verirl relies on is named in
verirl/train/trl_hooks.py, and is still what verirl expects. A TRL upgrade that changes one fails here with a message
naming the member and what verirl uses it for. No other verirl module names a private member of TRL's trainers."""

from __future__ import annotations

import ast
import glob
import importlib
import inspect
import os
import re
import textwrap

import pytest
import trl
from trl import GRPOTrainer

from verirl.train import trl_hooks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _changed(what: str) -> None:
    pytest.fail(f"TRL {trl.__version__} changed {what}; adapt verirl/train/trl_hooks.py (the one module that names "
                f"TRL's private members) and the canary's expectations", pytrace=False)


def _function_source(func) -> ast.FunctionDef:
    return ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(func)))).body[0]


@pytest.mark.parametrize("name", sorted(trl_hooks.PRIVATE_METHODS))
def test_private_methods_exist_with_the_parameters_verirl_uses(name):
    params, why = trl_hooks.PRIVATE_METHODS[name]
    method = getattr(GRPOTrainer, name, None)
    if method is None:
        _changed(f"GRPOTrainer.{name}: it is gone (verirl uses it for: {why})")
    found = tuple(p for p in inspect.signature(inspect.unwrap(method)).parameters if p != "self")
    if found != params:
        _changed(f"GRPOTrainer.{name}: parameters {found}, verirl passes {params} (for: {why})")


@pytest.mark.parametrize("name", sorted(trl_hooks.PRIVATE_ATTRIBUTES))
def test_private_attributes_are_still_kept_by_trl(name):
    source = inspect.getsource(GRPOTrainer)
    if not re.search(rf"self\.{name}\s*(=|\+=)", source):
        _changed(f"GRPOTrainer.{name}: TRL no longer sets it (verirl: {trl_hooks.PRIVATE_ATTRIBUTES[name]})")


def test_skip_micro_batch_repeats_trls_training_step():
    statements = tuple(ast.unparse(s) for s in _function_source(GRPOTrainer.training_step).body)
    if statements != trl_hooks.TRAINING_STEP_STATEMENTS:
        _changed("GRPOTrainer.training_step (GRPOHooks.skip_micro_batch repeats its bookkeeping for skipped "
                 "micro-batches); it now reads:\n" + "\n".join(statements))


def _output_keys() -> tuple[set[str], set[str]]:
    """Keys of the dict _generate_and_score_completions returns: (always present, added conditionally)."""
    fn = _function_source(GRPOTrainer._generate_and_score_completions)
    always, sometimes = set(), set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) \
                and any(isinstance(t, ast.Name) and t.id == "output" for t in node.targets):
            always |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "output" \
                and isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Constant):
            sometimes.add(node.slice.value)
    return always, sometimes


def test_generation_output_keys_are_the_ones_dynamic_sampling_batches():
    always, sometimes = _output_keys()
    known = set(trl_hooks.PROMPT_KEYS + trl_hooks.COMPLETION_KEYS + trl_hooks.ROW_KEYS + trl_hooks.RECOMPUTED_KEYS)
    required = set(trl_hooks.PROMPT_KEYS) | {"completion_ids", "completion_mask", "advantages", "num_items_in_batch"}
    if not required <= always:
        _changed(f"the output of _generate_and_score_completions: it no longer always has {sorted(required - always)}")
    new = (always | sometimes) - known - set(trl_hooks.MULTIMODAL_KEYS)
    if new:
        _changed(f"the output of _generate_and_score_completions: new keys {sorted(new)}; decide how dynamic sampling "
                 f"re-batches them (PROMPT_KEYS, COMPLETION_KEYS, ROW_KEYS, RECOMPUTED_KEYS or MULTIMODAL_KEYS)")


def test_rewards_are_computed_once_per_round_and_unscorable_rows_are_all_nan():
    source = inspect.getsource(inspect.unwrap(GRPOTrainer._generate_and_score_completions))
    if source.count("self._calculate_rewards(") != 1:
        _changed("_generate_and_score_completions: it no longer calls _calculate_rewards exactly once "
                 "(GRPOHooks.score_round captures the reward matrix of the round)")
    if "torch.isnan(rewards_per_func).all(dim=1)" not in source:
        _changed("its rule for unscorable completions (every reward None); verirl.train.sampling.mask_unscorable "
                 "makes a whole row NaN to exclude a completion")


def test_dynamic_sampling_follows_every_aggregation_trl_offers():
    source = inspect.getsource(GRPOTrainer)
    offered = set(re.findall(r"multi_objective_aggregation == \"(\w+)\"", source))
    if offered != set(trl_hooks.AGGREGATIONS):
        _changed(f"multi_objective_aggregation: TRL offers {sorted(offered)}, verirl.train.sampling.total_varies "
                 f"follows {sorted(trl_hooks.AGGREGATIONS)}")


@pytest.mark.parametrize("owner, name", sorted(trl_hooks.LIBRARY_INTERNALS))
def test_library_internals_exist(owner, name):
    module_name, _, class_name = owner.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not hasattr(cls, name):
        _changed(f"{owner}.{name} is gone (verirl: {trl_hooks.LIBRARY_INTERNALS[(owner, name)]})")


# ------------------------------------------------------------------------------------------ one module names them


def _trainer_private_names() -> set[str]:
    """Private names of TRL's and Transformers' trainers: class members and attributes their code assigns."""
    from transformers import Trainer, TrainingArguments
    from trl import DPOTrainer, SFTTrainer

    names: set[str] = set()
    for cls in (GRPOTrainer, SFTTrainer, DPOTrainer, Trainer, TrainingArguments):
        names |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
        for klass in cls.__mro__:
            if klass.__module__.split(".")[0] in ("trl", "transformers"):
                names |= set(re.findall(r"self\.(_[A-Za-z]\w*)\s*(?:=|\+=|:)", inspect.getsource(klass)))
    return names


def test_no_other_verirl_module_names_a_private_member_of_trls_trainers():
    """Inside classes and on objects called `trainer`, no private name of TRL's trainers appears outside
    trl_hooks.py (module-level helpers of unrelated classes may share a name like `_evaluate`)."""
    private = _trainer_private_names()
    hooks = os.path.join(ROOT, "verirl", "train", "trl_hooks.py")
    offenders = []
    for path in sorted(glob.glob(os.path.join(ROOT, "verirl", "**", "*.py"), recursive=True)
                       + glob.glob(os.path.join(ROOT, "scripts", "*.py"))):
        if path == hooks:
            continue
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            trainerish = any("Trainer" in ast.unparse(b) or "Hooks" in ast.unparse(b) for b in cls.bases)
            for node in ast.walk(cls):
                if trainerish and isinstance(node, ast.FunctionDef) and node.name in private:
                    offenders.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} def {node.name}")
                if trainerish and isinstance(node, ast.Attribute) and node.attr in private \
                        and ast.unparse(node.value) == "self":
                    offenders.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} self.{node.attr}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in private and "trainer" in ast.unparse(node.value):
                offenders.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, ("TRL private members named outside verirl/train/trl_hooks.py (add a hook there and use "
                           "it): " + ", ".join(offenders))
