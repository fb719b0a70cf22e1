"""Configuration of a data build: one dataclass per stage, loaded from a YAML recipe.

Precedence: dataclass defaults < YAML (``--config``) < command-line flags. Unknown keys are
errors that name the key and the section, so a typo never silently falls back to a default.
YAML is read by :mod:`data_pipeline.yaml_loader`, as training recipes are (``1e-5`` is a float).
Every field carries its help text once, in ``metadata["help"]``; ``docs/data_pipeline.md``
lists them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from typing import Any

import yaml

from .llm import LLMConfig
from .prompting import check_template
from .yaml_loader import help_field as _field
from .yaml_loader import load_yaml

SOURCE_KINDS = ("folder", "jsonl", "hf")
_MACRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclasses.dataclass
class SourceConfig:
    """One corpus of raw Verilog."""

    kind: str = _field("folder", "`folder` (.v/.sv files), `jsonl` (one JSON object per line), or `hf` (a datasets dataset)")
    path: str = _field("", "folder, JSONL file, or dataset path / Hub id (for `hf`)")
    name: str = _field("", "short name recorded as provenance (default: the last path component, or as many as "
                       "make it unique among the sources)")
    glob: str = _field("**/*.[vV]", "folder sources: files to read, plus `*.sv` files when `include_sv` is set")
    include_sv: bool = _field(True, "folder sources: also read `**/*.sv` files")
    exclude: list[str] = _field(
        factory=list, help="folder sources: glob patterns of relative paths to leave out (`bench/**`, "
        "`**/*_quartus.sv`): testbenches, alternative implementations the project's build would not use"
    )
    code_field: str = _field("code", "jsonl/hf sources: the column holding Verilog text")
    path_field: str = _field("", "jsonl/hf sources: optional column with the original file path (provenance)")
    license_field: str = _field("", "jsonl/hf sources: optional column with the license (provenance)")
    split: str = _field("train", "hf sources: split to read")
    streaming: bool = _field(True, "hf sources given as a Hub id: stream instead of downloading the whole dataset")
    resolve_across_files: bool = _field(
        True, "folder sources: resolve instantiated modules defined in other files of the folder (the file's own "
        "folder first, then the nearest one; equally near definitions in two folders are ambiguous)"
    )
    max_file_bytes: int = _field(1_000_000, "skip (and count) source files larger than this")
    include_dirs: list[str] = _field(
        factory=list, help="folders searched by `include (after the including file's folder); relative paths are "
        "relative to a folder source, else to the working directory"
    )
    defines: dict = _field(
        factory=dict, help="macros defined before every file, as the source's own build defines them "
        "(`{NAME: value}`; an empty value defines NAME without a value)"
    )
    expand_macros: bool = _field(
        True, "true: macro uses are replaced by what they expand to (the text the compiler saw; robust to macro "
        "features the reward engine's simulator lacks: default arguments, `\", nested directives); false: macro uses "
        "stay as written and each module carries the definitions it uses"
    )
    language: str = _field(
        "auto", "`auto` (.sv/.svh: SystemVerilog; .v: SystemVerilog, or Verilog-2005 keywords when only that "
        "parses), `verilog2005` or `sv`"
    )
    stubs: list[str] = _field(
        factory=list, help="vendor primitive library: files or folders of modules used when the source itself does "
        "not define an instantiated name (e.g. simulation models of FPGA primitives)"
    )
    parameter_variants: int = _field(
        0, "extra tasks per module with other defaults of its parameters (each decimal default doubled, then "
        "halved), kept only where the change alters the module's ports: a width parameter"
    )
    license: str = _field(
        "", "license recorded for every task of this source (an SPDX tag in a file still wins); default: detected "
        "from the nearest LICENSE/COPYING file (folder sources) or `license_field`"
    )

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"sources[].kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if not self.path:
            raise ValueError(f"sources[] of kind {self.kind!r} needs `path` (a folder, JSONL file or dataset id)")
        self._default_name = not self.name
        if not self.name:
            self.name = os.path.basename(os.path.normpath(self.path)) or self.path
        if self.max_file_bytes <= 0:
            raise ValueError("sources[].max_file_bytes must be positive")
        if not isinstance(self.parameter_variants, int) or self.parameter_variants < 0:
            raise ValueError(f"sources[].parameter_variants must be an integer >= 0, got {self.parameter_variants!r}")
        if self.language not in ("auto", "verilog2005", "sv"):
            raise ValueError(f"sources[].language must be auto, verilog2005 or sv, got {self.language!r}")
        if isinstance(self.defines, list):  # also accept ["NAME", "NAME=value"]
            pairs = [str(d).split("=", 1) for d in self.defines]
            self.defines = {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}
        if not isinstance(self.defines, dict):
            raise ValueError("sources[].defines must be a mapping {NAME: value} or a list of NAME[=value]")
        bad = [k for k in self.defines if not _MACRO_NAME.match(str(k))]
        if bad:
            raise ValueError(f"sources[].defines: {bad} are not macro names")
        self.defines = {str(k): "" if v is None or v is True else str(v) for k, v in self.defines.items()}
        for key in ("include_dirs", "stubs", "exclude"):
            if not isinstance(getattr(self, key), list):
                raise ValueError(f"sources[].{key} must be a list of paths")

    def resolve_path(self, path: str) -> str:
        """A path of `include_dirs` / `stubs`: relative to a folder source, else to the working directory."""
        if os.path.isabs(path) or self.kind != "folder":
            return os.path.abspath(path)
        return os.path.abspath(os.path.join(self.path, path))

    def check_paths(self) -> None:
        """Fail before the run when a configured path is missing (names the source and the key)."""
        if self.kind == "folder" and not os.path.isdir(self.path):
            raise FileNotFoundError(f"source {self.name!r}: folder {self.path!r} does not exist")
        if self.kind == "jsonl" and not os.path.isfile(self.path):
            raise FileNotFoundError(f"source {self.name!r}: JSONL file {self.path!r} does not exist")
        for key in ("include_dirs", "stubs"):
            for path in getattr(self, key):
                if not os.path.exists(self.resolve_path(path)):
                    raise FileNotFoundError(f"source {self.name!r}: {key} entry {path!r} does not exist "
                                            f"(looked at {self.resolve_path(path)})")


#: equivalence settings of the scorability check: the reference against itself, by simulation (the path
#: every golden design must survive: formal falls back to it), with a short stimulus
SCORABLE_EQUIVALENCE = {"method": "simulation", "sequences": 2, "cycles": 64, "long_cycles": 0, "reset_pulses": 1,
                        "vectors": 128, "sim_timeout": 20.0}


@dataclasses.dataclass
class FilterConfig:
    """Cheap structural limits, then the tools: compile (Icarus), the reward engine, synthesize (Yosys)."""

    min_lines: int = _field(3, "drop modules with fewer lines of code (comment-only and blank lines do not count)")
    max_lines: int = _field(600, "drop modules (with their dependencies) longer than this many lines of code")
    max_chars: int = _field(40_000, "drop modules (with their dependencies) longer than this many characters")
    min_ports: int = _field(1, "drop modules with fewer ports (a module without ports cannot be checked)")
    max_ports: int = _field(64, "drop modules with more ports")
    max_dependencies: int = _field(16, "drop modules that need more than this many other modules")
    compile: bool = _field(True, "require `iverilog -g2012` to compile the module with its dependencies")
    scorable: bool = _field(
        True, "require the reward engine to accept the reference: rewards.hierarchy.score_completion scores the "
        "reference as a candidate of its own task (same extraction, sanitizer, standalone elaboration and "
        "equivalence path as training) and it must pass"
    )
    scorable_equivalence: dict = _field(
        factory=lambda: dict(SCORABLE_EQUIVALENCE), help="rewards.equivalence.EquivConfig settings of that check "
        "(default: simulation of the reference against itself with a short stimulus)"
    )
    synthesize: bool = _field(True, "require Yosys to synthesize the module (`synth -top`) to at least one cell")
    max_cells: int = _field(20_000, "drop designs whose synthesized netlist has more cells (0: no limit)")
    max_memory_bits: int = _field(
        16_384, "with `synthesize`: drop designs whose memory arrays hold more bits, before Yosys runs (synthesis "
        "to gates turns every bit into a flip-flop: minutes of Yosys for a netlist near max_cells); 0: no limit"
    )
    synth_figures: bool = _field(
        True, "true: rewards.synth (ABC mapping, cells/area/depth stored in metadata.stats); false: a 2x faster "
        "check (`synth -noabc`, cell count only) for very large corpora"
    )
    tool_timeout_s: float = _field(60.0, "CPU-time budget of one compile run and of the scorability check's compiles")
    synth_timeout_s: float = _field(
        20.0, "CPU-time budget of one synthesis; a design that needs longer is dropped as `timeout` (never as "
        "`synth`), so slow designs cannot dominate the build"
    )

    def __post_init__(self) -> None:
        if self.min_lines < 0 or self.max_lines < self.min_lines:
            raise ValueError(f"filters: need 0 <= min_lines <= max_lines, got {self.min_lines}, {self.max_lines}")
        if self.min_ports < 0 or self.max_ports < self.min_ports:
            raise ValueError(f"filters: need 0 <= min_ports <= max_ports, got {self.min_ports}, {self.max_ports}")
        if self.tool_timeout_s <= 0 or self.synth_timeout_s <= 0 or self.max_chars <= 0 or self.max_cells < 0 \
                or self.max_dependencies < 0 or self.max_memory_bits < 0:
            raise ValueError("filters: tool_timeout_s, synth_timeout_s and max_chars must be positive, max_cells and "
                             "max_dependencies >= 0")
        if not isinstance(self.scorable_equivalence, dict):
            raise ValueError("filters.scorable_equivalence must be a mapping of EquivConfig settings")
        if self.scorable:
            from rewards.equivalence import EquivConfig

            try:
                EquivConfig(**self.scorable_equivalence)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"filters.scorable_equivalence: {exc}") from None


@dataclasses.dataclass
class DedupeConfig:
    exact: bool = _field(True, "drop modules whose normalized text (comments and whitespace removed) was seen")
    near: bool = _field(True, "drop near-duplicates with MinHash LSH (datasketch)")
    threshold: float = _field(0.85, "estimated Jaccard similarity of token shingles at which two modules are duplicates")
    num_perm: int = _field(128, "MinHash permutations (memory: 8 bytes each per kept module)")
    shingle_size: int = _field(5, "tokens per shingle")

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"dedupe.threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 16 or self.shingle_size < 1:
            raise ValueError("dedupe: num_perm must be >= 16 and shingle_size >= 1")


@dataclasses.dataclass
class BenchmarkConfig:
    kind: str = _field("verilog-eval", "`verilog-eval` (VerilogEval v2 checkout) or `rtllm` (RTLLM checkout)")
    path: str = _field("", "path of the benchmark checkout (read in place, never copied)")

    def __post_init__(self) -> None:
        if self.kind not in ("verilog-eval", "rtllm"):
            raise ValueError(f"decontaminate.benchmarks[].kind must be `verilog-eval` or `rtllm`, got {self.kind!r}")
        if not self.path:
            raise ValueError(f"decontaminate.benchmarks[] of kind {self.kind!r} needs `path`")


@dataclasses.dataclass
class DecontaminationConfig:
    enabled: bool = _field(True, "drop modules and descriptions that overlap a benchmark problem")
    benchmarks: list[BenchmarkConfig] = _field(factory=list, help="benchmark checkouts to protect")
    ngram: int = _field(8, "n-gram length (tokens) of the overlap measure")
    threshold: float = _field(
        0.5, "drop when this fraction of a benchmark item's n-grams (or of the candidate's) occur in the other"
    )
    normalize_identifiers: bool = _field(
        False, "compare code with identifiers replaced by a placeholder (catches renamed copies; more false alarms)"
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"decontaminate.threshold must be in (0, 1], got {self.threshold}")
        if self.ngram < 2:
            raise ValueError(f"decontaminate.ngram must be >= 2, got {self.ngram}")
        if self.enabled and not self.benchmarks:
            raise ValueError(
                "decontaminate.enabled is true but no benchmarks are listed; add "
                "`benchmarks: [{kind: verilog-eval, path: ...}]` or set `enabled: false`"
            )


@dataclasses.dataclass
class RoundTripConfig:
    enabled: bool = _field(True, "describe, regenerate and keep only modules whose regeneration is equivalent")
    llm: LLMConfig | None = _field(None, "the LLM backend (required when enabled)")
    describe_template: str = _field("", "file or inline text of the description prompt (default: built-in)")
    regenerate_template: str = _field("", "file or inline text of the regeneration prompt (default: built-in)")
    task_template: str = _field("", "file or inline text of the task prompt written to the dataset (default: built-in)")
    system_prompt: str = _field("", "optional system message sent with both LLM prompts")
    regenerations: int = _field(1, "regenerated candidates per description; the pair is kept if any is equivalent")
    equivalence: dict = _field(
        factory=dict, help="fields of rewards.equivalence.EquivConfig (method, sequences, cycles, vectors, formal_timeout, "
        "sim_timeout, ...); its seed defaults to the build seed + 1"
    )

    def __post_init__(self) -> None:
        if self.enabled and self.llm is None:
            raise ValueError("roundtrip.enabled is true but `roundtrip.llm` is missing; configure a backend")
        if self.regenerations < 1:
            raise ValueError(f"roundtrip.regenerations must be >= 1, got {self.regenerations}")
        if self.enabled:  # a bad template fails when the recipe is read, not after hours of filtering
            from .templates import load_template

            for kind in ("describe", "regenerate", "task"):
                load_template(kind, getattr(self, f"{kind}_template"))


@dataclasses.dataclass
class BuildConfig:
    """A whole `verirl data build` run."""

    output_dir: str = _field("", "where shards, the dataset and manifest.json are written")
    sources: list[SourceConfig] = _field(factory=list, help="the raw corpora, read in order")
    filters: FilterConfig = _field(factory=FilterConfig, help="structural limits and tool checks")
    dedupe: DedupeConfig = _field(factory=DedupeConfig, help="exact and near-duplicate removal")
    decontaminate: DecontaminationConfig | None = _field(
        None, "benchmark decontamination: required (give `benchmarks`, or `enabled: false` to build without it)"
    )
    roundtrip: RoundTripConfig = _field(
        factory=lambda: RoundTripConfig(enabled=False), help="NL round trip and equivalence filter"
    )
    seed: int = _field(0, "seed of every random choice (LLM sampling, equivalence stimulus), recorded in the manifest")
    shard_size: int = _field(256, "modules per shard; a shard is the unit of resume and is written atomically")
    workers: int = _field(2, "parallel tool runs (compile, synthesis, equivalence)")
    max_modules: int = _field(0, "stop after this many split modules (0: the whole corpus)")
    formats: list[str] = _field(factory=lambda: ["jsonl", "parquet"], help="dataset files to write: jsonl, parquet")
    dataset_name: str = _field("tasks", "base name of the dataset files")
    id_prefix: str = _field("", "prefix of task ids (default: the source name)")

    def __post_init__(self) -> None:
        if self.shard_size < 1 or self.workers < 1 or self.max_modules < 0:
            raise ValueError("shard_size and workers must be >= 1, max_modules >= 0")
        bad = [f for f in self.formats if f not in ("jsonl", "parquet")]
        if bad or not self.formats:
            raise ValueError(f"formats must be a non-empty subset of [jsonl, parquet], got {self.formats}")
        unique_source_names(self.sources)

    def validate_for_run(self) -> None:
        """Checks that only matter when a build actually starts."""
        if not self.output_dir:
            raise ValueError("output_dir is not set: give it in the recipe or with --output-dir")
        if not self.sources:
            raise ValueError("no sources configured: add `sources: [{kind: folder, path: ...}]` to the recipe")
        require_decontamination(self)


def require_decontamination(cfg: BuildConfig) -> None:
    """Decontamination is on unless a recipe says otherwise: a missing section is an error, not a silent off."""
    if cfg.decontaminate is None:
        raise ValueError(
            "the recipe has no `decontaminate` section: decontamination is on by default and needs the benchmarks "
            "to protect, e.g. `decontaminate: {benchmarks: [{kind: verilog-eval, path: ...}, {kind: rtllm, path: "
            "...}]}`; to build without it, say so: `decontaminate: {enabled: false}`"
        )


def unique_source_names(sources: list[SourceConfig]) -> None:
    """Give every source a distinct provenance name; two explicit equal names are an error.

    A defaulted name grows by parent folders (``a/rtl``, ``b/rtl``) until it is unique, so tasks of two
    sources with the same folder name never share ids or provenance keys.
    """
    explicit: dict[str, int] = {}
    for i, src in enumerate(sources):
        if not getattr(src, "_default_name", False):
            if src.name in explicit:
                raise ValueError(f"sources[{explicit[src.name]}] and sources[{i}] are both named {src.name!r}; "
                                 f"give them distinct `name`s")
            explicit[src.name] = i
    for depth in range(1, 64):
        names = [s.name for s in sources]
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            return
        changed = False
        for src in sources:
            if src.name in clashes and getattr(src, "_default_name", False):
                parts = [p for p in os.path.normpath(os.path.abspath(src.path)).split(os.sep) if p]
                longer = "/".join(parts[-(depth + 1):]) or src.path
                changed |= longer != src.name
                src.name = longer
        if not changed:
            break
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"sources share the name(s) {dupes}; give them distinct `name`s")


@dataclasses.dataclass
class PolicySamplingConfig:
    """What `verirl data preferences` and `verirl data difficulty` share: the tasks, the policy and how its prompts
    are rendered, how samples are scored, and the output (see data_pipeline/policy_samples.py)."""

    tasks: str = _field("", "task dataset (.jsonl or .parquet, e.g. written by `verirl data build`)")
    output: str = _field("", "output JSONL")
    llm: LLMConfig | None = _field(None, "the policy to sample from")
    system_prompt: str | None = _field(None, "system message the policy is sampled with: the recipe's system_prompt")
    prompt_template: str = _field("{prompt}", "format string of text prompts (fields prompt, top, id): the recipe's")
    reward: dict = _field(factory=dict, help="settings of rewards.hierarchy.RewardConfig (weights, sim, equivalence)")
    workers: int = _field(2, "parallel scoring jobs")
    batch_size: int = _field(16, "prompts sampled and scored together")
    seed: int = _field(0, "sampling seed")

    def __post_init__(self) -> None:
        if self.workers < 1 or self.batch_size < 1:
            raise ValueError("workers and batch_size must be >= 1")
        check_template(self.prompt_template)


@dataclasses.dataclass
class PreferenceConfig(PolicySamplingConfig):
    """`verirl data preferences`: DPO pairs from scored samples (the policy: the DPO recipe's rendering)."""

    output: str = _field("", "JSONL file of prompt/chosen/rejected pairs")
    completions: str = _field("", "JSONL of sampled completions ({task_id, completion}); empty: sample with `llm`")
    llm: LLMConfig | None = _field(None, "the policy to sample from when `completions` is empty")
    samples_per_prompt: int = _field(8, "completions sampled per prompt (policy mode)")
    margin: float = _field(0.25, "chosen must pass at least this much larger a fraction of the checks than rejected")
    max_pairs_per_prompt: int = _field(2, "at most this many pairs per prompt")
    require_chosen_pass: bool = _field(True, "chosen must pass every check (not only more than rejected)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.margin <= 1.0:
            raise ValueError(f"margin must be in (0, 1], got {self.margin}")
        if self.samples_per_prompt < 2 or self.max_pairs_per_prompt < 1:
            raise ValueError("need samples_per_prompt >= 2, max_pairs_per_prompt >= 1")

    def validate_for_run(self) -> None:
        if not self.tasks or not self.output:
            raise ValueError("preferences: `tasks` and `output` are required")
        if not self.completions and self.llm is None:
            raise ValueError("preferences: give `completions` (a JSONL of samples) or `llm` (a policy to sample)")


@dataclasses.dataclass
class DifficultyConfig(PolicySamplingConfig):
    """`verirl data difficulty`: pass-rate estimation with a model (the policy: the RL recipe's rendering)."""

    output: str = _field("", "JSONL of the tasks kept, with metadata.difficulty filled in")
    llm: LLMConfig | None = _field(None, "the model whose pass rate is measured")
    samples: int = _field(8, "completions per prompt")
    drop_always_solved: bool = _field(True, "drop prompts whose every sample passes (no learning signal for RL)")
    drop_never_solved: bool = _field(True, "drop prompts no sample passes (no learning signal for RL)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples < 1:
            raise ValueError("difficulty: samples must be >= 1")

    def validate_for_run(self) -> None:
        if not self.tasks or not self.output or self.llm is None:
            raise ValueError("difficulty: `tasks`, `output` and `llm` are required")


# ---------------------------------------------------------------------------------------- loading


def _strip_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclasses; unknown keys are errors."""
    if data is None:
        data = {}
    if dataclasses.is_dataclass(data):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        tp = _strip_optional(hints[name])
        sub = f"{where}.{name}"
        if dataclasses.is_dataclass(tp) and value is not None:
            kwargs[name] = from_dict(tp, value, sub)
        elif typing.get_origin(tp) is list and value is not None:
            (item_tp,) = typing.get_args(tp) or (Any,)
            if not isinstance(value, list):
                raise ValueError(f"{sub}: expected a list, got {type(value).__name__}")
            if dataclasses.is_dataclass(item_tp):
                kwargs[name] = [from_dict(item_tp, v, f"{sub}[{i}]") for i, v in enumerate(value)]
            else:
                kwargs[name] = list(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def load_build_config(path: str | os.PathLike | None, overrides: dict | None = None, cls: type | None = None):
    """Read a YAML recipe (``None``: defaults only) and apply top-level ``overrides`` (e.g. from flags).

    ``cls`` is the config class (default :class:`BuildConfig`; also PreferenceConfig, DifficultyConfig).
    """
    cls = cls or BuildConfig
    data: dict = {}
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data recipe {path!s} does not exist (see recipes/data/ for examples)")
        with open(path, encoding="utf-8") as fh:
            try:
                data = load_yaml(fh) or {}
            except yaml.YAMLError as exc:
                raise ValueError(f"data recipe {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a data recipe must be a YAML mapping")
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    return from_dict(cls, data, where=str(path or "config"))


def to_dict(cfg: Any) -> Any:
    """A JSON-serializable view of a config (recorded in the manifest)."""
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
