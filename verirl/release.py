"""``verirl push``: publish a trained model with its model card to the Hugging Face Hub.

    verirl push --model-dir runs/grpo --repo-id my-org/verilog-coder --eval runs/ve-spec --eval runs/rtllm \\
        [--revision v1] [--private] [--dry-run]

Steps: (1) a staging folder is built with the weights (``*.safetensors`` / ``pytorch_model*.bin`` / PEFT adapter),
``config.json``, ``generation_config.json`` (derived from the model config when the folder has none), the tokenizer
files, the run record ``verirl_run.json`` that ``verirl train`` wrote (the recipe as run, with its command-line
overrides, and the versions), the recipe, the evaluation summaries and a ``README.md`` model card
(:mod:`verirl.model_card`); optimizer states, RNG states and intermediate checkpoints are left out. (2) The folder is validated offline: config and tokenizer load with
``transformers``, weights are present, the card's YAML metadata parses, every eval summary has ``pass_at_k``.
(3) Unless ``--dry-run``, it is uploaded with ``huggingface_hub`` in one commit. An existing revision that already
holds files is never overwritten unless ``--overwrite`` is given (which replaces its content).

The token comes from huggingface_hub's usual places (``HF_TOKEN`` or ``huggingface-cli login``).
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import glob
import json
import logging
import os
import re
import shutil
import sys
import tempfile

logger = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json")
CONFIG_FILES = ("config.json", "generation_config.json", "adapter_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "added_tokens.json", "chat_template.jinja", "chat_template.json")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,99}$")


class ReleaseError(ValueError):
    """The model folder, the card inputs or the target revision are not fit to publish; says what to do."""


# ------------------------------------------------------------------------------------------------ staging


def stage_model(model_dir: str, stage_dir: str) -> list[str]:
    """Copy what a user of the model needs from ``model_dir`` into ``stage_dir``; returns the copied names."""
    if not os.path.isdir(model_dir):
        raise ReleaseError(f"--model-dir {model_dir} does not exist")
    names = sorted(os.listdir(model_dir))
    if not any(n in ("config.json", "adapter_config.json") for n in names):
        raise ReleaseError(f"{model_dir} is not a saved model: no config.json (or adapter_config.json); pass the "
                           "folder written by save_pretrained / verirl train")
    wanted = [n for n in names if os.path.isfile(os.path.join(model_dir, n)) and (
        n in CONFIG_FILES or n in TOKENIZER_FILES or any(fnmatch.fnmatch(n, p) for p in WEIGHT_PATTERNS))]
    os.makedirs(stage_dir, exist_ok=True)
    for name in wanted:
        shutil.copy2(os.path.join(model_dir, name), os.path.join(stage_dir, name))
    if "generation_config.json" not in wanted and "config.json" in wanted:
        from transformers import AutoConfig, GenerationConfig

        try:
            gen = GenerationConfig.from_model_config(AutoConfig.from_pretrained(stage_dir))
        except (OSError, ValueError) as exc:
            raise ReleaseError(f"{model_dir}/config.json does not load: {exc}") from exc
        gen.save_pretrained(stage_dir)
        wanted.append("generation_config.json")
    return sorted(wanted)


def validate_folder(folder: str) -> list[str]:
    """Offline checks of a staged release folder; returns the list of problems (empty when fit to publish)."""
    problems = []
    names = set(os.listdir(folder))
    adapter = "adapter_config.json" in names
    if not any(any(fnmatch.fnmatch(n, p) for p in WEIGHT_PATTERNS) for n in names):
        problems.append("no weights (*.safetensors or pytorch_model*.bin)")
    if "tokenizer_config.json" not in names:
        problems.append("no tokenizer (tokenizer_config.json): save the tokenizer next to the model")
    if not adapter:
        if "generation_config.json" not in names:
            problems.append("no generation_config.json")
        try:
            from transformers import AutoConfig

            AutoConfig.from_pretrained(folder)
        except Exception as exc:  # noqa: BLE001 - any load failure is a finding to report
            problems.append(f"config.json does not load with transformers: {exc}")
    if "tokenizer_config.json" in names:
        try:
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(folder)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"the tokenizer does not load with transformers: {exc}")
    card = os.path.join(folder, "README.md")
    if not os.path.isfile(card):
        problems.append("no README.md model card")
    else:
        from huggingface_hub import ModelCard

        try:
            data = ModelCard.load(card).data.to_dict()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"README.md metadata does not parse: {exc}")
        else:
            for key in ("license", "tags"):
                if not data.get(key):
                    problems.append(f"README.md metadata lacks {key!r}")
    for path in glob.glob(os.path.join(folder, "eval", "*", "summary.json")):
        with open(path, encoding="utf-8") as fh:
            summary = json.load(fh)
        if not isinstance(summary.get("pass_at_k"), dict):
            problems.append(f"{os.path.relpath(path, folder)} has no pass_at_k")
    return problems


# ------------------------------------------------------------------------------------------------ the card


def load_eval_summary(path: str) -> dict:
    """``summary.json`` of a ``verirl eval`` run (the run folder or the file itself)."""
    file = os.path.join(path, "summary.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ReleaseError(f"--eval {path}: no summary.json there; pass a `verirl eval --out` folder")
    with open(file, encoding="utf-8") as fh:
        try:
            summary = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ReleaseError(f"--eval {file} is not valid JSON: {exc}") from None
    for key in ("pass_at_k", "benchmark", "n"):
        if key not in summary:
            raise ReleaseError(f"--eval {file} is not a verirl eval summary: no {key!r}")
    summary["_path"] = os.path.dirname(os.path.abspath(file))
    return summary


# ---------------------------------------------------------------------------------------------------- upload


def push_folder(folder: str, repo_id: str, revision: str | None = None, private: bool = False,
                overwrite: bool = False, api=None, commit_message: str | None = None) -> str:
    """Upload ``folder`` to ``repo_id`` at ``revision`` (default ``main``); refuses to overwrite existing files."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    api = api or HfApi()
    revision = revision or "main"
    branches: set[str] = set()
    try:
        refs = api.list_repo_refs(repo_id)
        branches = {b.name for b in refs.branches}
        tags = {t.name for t in refs.tags}
        exists = True
    except RepositoryNotFoundError:
        exists, tags = False, set()
    if revision in tags:
        raise ReleaseError(f"{repo_id}@{revision} is a tag; tags are immutable: choose another --revision")
    if exists and revision in branches:
        try:
            files = [f for f in api.list_repo_files(repo_id, revision=revision) if f != ".gitattributes"]
        except RevisionNotFoundError:
            files = []
        if files and not overwrite:
            raise ReleaseError(f"{repo_id}@{revision} already holds {len(files)} files; refusing to overwrite it. "
                               "Choose another --revision, or pass --overwrite to replace its content")
    if not exists:
        api.create_repo(repo_id, private=private, exist_ok=False)
    if revision != "main" and revision not in branches:
        api.create_branch(repo_id, branch=revision, exist_ok=False)
    info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision,
                             commit_message=commit_message or "Upload model with verirl push",
                             delete_patterns=["*"] if overwrite else None)
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}/tree/{revision}"
    return str(url)


# ------------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, help="folder written by save_pretrained / verirl train")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hugging Face Hub")
    parser.add_argument("--revision", help="branch to push to (default main); created when missing")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--dry-run", action="store_true",
                        help="build and validate the release folder, print the card; no network")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the content of a revision that already holds files")
    parser.add_argument("--eval", action="append", default=[],
                        help="a `verirl eval --out` folder whose results go into the card (repeatable)")
    parser.add_argument("--recipe", help="the training recipe YAML, for a model trained without a run record "
                                         "(`verirl train` records the recipe it ran in <output_dir>/verirl_run.json, "
                                         "which wins)")
    parser.add_argument("--base-model", help="base model id (default: from the run record, else the recipe's "
                                             "model_name_or_path, else the adapter's base model)")
    parser.add_argument("--data", help="one line describing the training data (e.g. the data manifest)")
    parser.add_argument("--training-summary", help="JSON file with extra training figures for the card")
    parser.add_argument("--license", default="apache-2.0", help="license id for the card (default apache-2.0)")
    parser.add_argument("--stage-dir", help="where to build the release folder (default: a temporary folder; "
                                            "kept after --dry-run)")


def _recipe_from_file(path: str) -> tuple[str, dict]:
    import yaml

    if not os.path.isfile(path):
        raise ReleaseError(f"--recipe {path} does not exist")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ReleaseError(f"--recipe {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ReleaseError(f"--recipe {path} is not a recipe (a YAML mapping of settings)")
    return text, data


def _recipe_from_record(record: dict) -> str | None:
    """The recorded recipe (YAML mapping with the overrides merged in) as YAML text, headed by where it came from."""
    import yaml

    data = record.get("recipe")
    if not isinstance(data, dict) or not data:
        return None
    head = [f"# the recipe as run: {record.get('recipe_file') or 'built in Python'}"]
    if record.get("overrides"):
        head.append(f"# with command-line overrides: {json.dumps(record['overrides'], sort_keys=True)}")
    return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False)


def build_release(args: argparse.Namespace, *, warn=None) -> tuple[str, str]:
    """Stage, card and validate; returns (folder, card text). ``warn`` receives one line per inconsistency found
    between the inputs (default: the logger)."""
    from verirl.model_card import render_model_card, resolve_base_model, training_summary
    from verirl.train.provenance import RUN_RECORD, RunRecordError, read_run_record

    warn = warn or logger.warning
    if not _REPO_ID.match(args.repo_id or ""):
        raise ReleaseError(f"--repo-id must look like ORG/NAME, got {args.repo_id!r}")
    if args.revision and not _REVISION.match(args.revision):
        raise ReleaseError(f"--revision {args.revision!r} is not a valid branch name")
    evals = [load_eval_summary(p) for p in args.eval]
    try:
        record = read_run_record(args.model_dir) if os.path.isdir(args.model_dir) else None
    except RunRecordError as exc:
        raise ReleaseError(f"{exc}; fix or remove it (the card would otherwise misstate the training)") from None
    file_text, file_recipe = _recipe_from_file(args.recipe) if args.recipe else (None, {})
    recorded_text = _recipe_from_record(record) if record else None
    if recorded_text:
        recipe_text, recipe_name = recorded_text, os.path.basename(record.get("recipe_file") or "") or RUN_RECORD
        if file_recipe:
            differ = sorted(k for k in set(file_recipe) | set(record["recipe"])
                            if file_recipe.get(k) != record["recipe"].get(k))
            if differ:
                warn(f"--recipe {args.recipe} differs from the recipe recorded in {record['_path']} (keys: "
                     f"{', '.join(differ[:8])}); the card shows the recorded one, which is what was run")
    else:
        recipe_text, recipe_name = file_text, (os.path.basename(args.recipe) if args.recipe else None)
    stage = args.stage_dir or tempfile.mkdtemp(prefix="verirl-release-")
    if os.path.isdir(stage) and os.listdir(stage):
        raise ReleaseError(f"--stage-dir {stage} is not empty; give an empty or new folder")
    stage_model(args.model_dir, stage)
    adapter_base = None
    adapter_cfg = os.path.join(stage, "adapter_config.json")
    if os.path.isfile(adapter_cfg):
        with open(adapter_cfg, encoding="utf-8") as fh:
            adapter_base = json.load(fh).get("base_model_name_or_path")
    base = resolve_base_model(args.base_model, record, file_recipe, adapter_base)
    if recipe_text:
        with open(os.path.join(stage, "recipe.yaml"), "w", encoding="utf-8") as fh:
            fh.write(recipe_text)
    if record:
        with open(os.path.join(stage, RUN_RECORD), "w", encoding="utf-8") as fh:
            json.dump({k: v for k, v in record.items() if k != "_path"}, fh, indent=2)
            fh.write("\n")
    for summary in evals:
        b = summary["benchmark"]
        sub = os.path.join(stage, "eval", re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(
            x for x in (b.get("name"), b.get("task")) if x)))
        os.makedirs(sub, exist_ok=True)
        for name in ("summary.json", "report.md"):
            src = os.path.join(summary["_path"], name)
            if os.path.isfile(src):
                shutil.copy2(src, os.path.join(sub, name))
    from .eval.report import _tool_versions, _verirl_version

    card = render_model_card(
        repo_id=args.repo_id, base=base, recipe_name=recipe_name, recipe_text=recipe_text, data=args.data,
        training=training_summary(args.model_dir, args.training_summary, record), evals=evals, record=record,
        license=args.license, tools=_tool_versions(), verirl_version=_verirl_version())
    with open(os.path.join(stage, "README.md"), "w", encoding="utf-8") as fh:
        fh.write(card)
    problems = validate_folder(stage)
    if problems:
        raise ReleaseError(f"the release folder {stage} is not fit to publish:\n  - " + "\n  - ".join(problems))
    return stage, card


def run(args: argparse.Namespace, api=None) -> int:
    try:
        folder, card = build_release(args, warn=lambda line: print(f"verirl push: warning: {line}", file=sys.stderr))
    except (ReleaseError, OSError) as exc:
        print(f"verirl push: error: {exc}", file=sys.stderr)
        return 2
    files = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)
    if args.dry_run:
        print(card)
        print(f"dry run: release folder {folder} is valid ({len(files)} files: {', '.join(files)}); "
              "nothing was uploaded")
        return 0
    try:
        url = push_folder(folder, args.repo_id, revision=args.revision, private=args.private,
                          overwrite=args.overwrite, api=api,
                          commit_message=f"verirl push {datetime.date.today().isoformat()}")
    except ReleaseError as exc:
        print(f"verirl push: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - network/auth errors from huggingface_hub, reported plainly
        print(f"verirl push: upload failed ({type(exc).__name__}): {exc}; the release folder is kept at {folder}",
              file=sys.stderr)
        return 1
    if not args.stage_dir:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"pushed {len(files)} files to {url}")
    return 0
