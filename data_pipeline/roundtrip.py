"""The NL round trip: code → description → regenerated code → keep only if equivalent.

For each module an LLM writes a natural-language specification (``describe`` template); the
same LLM (or another) re-implements it from the specification alone (``regenerate`` template);
the regenerated code is scored against the original with the reward engine's own equivalence
path (:class:`rewards.pool.RewardPool` on a task that has a ``reference`` and no testbench:
extraction, sanitizing, then :func:`rewards.equivalence.check_equivalence`). The pair is kept
when any of ``regenerations`` candidates is equivalent; the task prompt written to the dataset
is rendered from the ``task`` template.

Templates (:mod:`data_pipeline.templates`) are plain text with ``{{name}}`` placeholders; the LLM prompts are
chat messages rendered by :func:`data_pipeline.prompting.render_prompt` with the recipe's ``system_prompt``.

Drop reasons: ``llm_rejected`` (the endpoint refused the request), ``empty_description``,
``description_contains_code`` (the "description" pastes Verilog), ``contaminated_description``,
``unsupported_ports`` (inout or unpacked-array ports, which the checker cannot drive; checked before
any LLM call), ``no_code`` (the regeneration holds no module), ``not_equivalent``, ``interface_mismatch``,
``candidate_rejected`` (the regeneration does not compile or uses forbidden constructs),
``golden_unsupported``, ``equivalence_infrastructure`` (the checker failed: not the data's fault, but the
pair is unverified).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from concurrent.futures import ThreadPoolExecutor

from .config import RoundTripConfig
from .llm import LLMBackend
from .prompting import render_prompt
from .templates import TEMPLATE_FIELDS, interface_text, load_template, render

logger = logging.getLogger(__name__)

_ENDMODULE = re.compile(r"\bendmodule\b")


@dataclasses.dataclass
class RoundTripOutcome:
    ok: bool
    reason: str | None = None
    detail: str = ""
    description: str | None = None
    regenerated: str | None = None
    method: str | None = None
    attempts: int = 0
    equivalent_attempt: int | None = None


@dataclasses.dataclass
class RoundTripItem:
    key: str
    top: str
    code: str
    interface: dict


class RoundTrip:
    """Runs the round trip on batches of modules."""

    def __init__(self, cfg: RoundTripConfig, backend: LLMBackend, *, decontaminator=None, seed: int = 0,
                 workers: int = 2, sandbox=None, stop=None):
        """``sandbox``: where the equivalence checker's tools run (the build's scratch folder);
        ``stop``: a ``threading.Event`` that, once set, starts no further check."""
        from rewards.equivalence import EquivConfig

        self.cfg = cfg
        self.backend = backend
        self.decontaminator = decontaminator
        self.seed = seed
        self.workers = workers
        self.stop = stop
        self.templates = {kind: load_template(kind, getattr(cfg, f"{kind}_template")) for kind in TEMPLATE_FIELDS}
        settings = {"seed": seed + 1, **dict(cfg.equivalence)}
        if sandbox is not None and "sandbox" not in settings:
            settings["sandbox"] = sandbox
        try:
            self.equiv_config = EquivConfig(**settings)
        except TypeError as exc:
            raise ValueError(f"roundtrip.equivalence: bad settings {dict(cfg.equivalence)}: {exc}") from None

    def close(self) -> None:
        """Nothing to release (the backend is owned by the caller)."""

    def _messages(self, user: str) -> list[dict]:
        return render_prompt(user, system_prompt=self.cfg.system_prompt or None)

    def task_prompt(self, item: RoundTripItem, description: str) -> str:
        return render(self.templates["task"], description=description.strip(), top=item.top,
                      interface=interface_text(item.interface))

    def run(self, items: list[RoundTripItem], *, seed_offset: int = 0) -> list[RoundTripOutcome]:
        """Round-trip a batch; one outcome per item, in order. Raises LLMUnavailable on endpoint outages."""
        if not items:
            return []
        seed = self.seed + seed_offset
        outcomes: list[RoundTripOutcome | None] = [None] * len(items)
        todo = []
        for i, it in enumerate(items):
            bad = [p["name"] for p in it.interface.get("ports", [])
                   if p.get("direction") not in ("input", "output") or not p.get("packed", True)]
            if bad:  # the equivalence checker cannot drive these: do not spend LLM calls on them
                outcomes[i] = RoundTripOutcome(False, "unsupported_ports",
                                               f"inout or unpacked-array ports: {', '.join(bad)}")
            else:
                todo.append(i)
        describe = [self._messages(render(self.templates["describe"], code=items[i].code, top=items[i].top,
                                          interface=interface_text(items[i].interface))) for i in todo]
        descriptions = self.backend.generate(describe, n=1, seed=seed) if todo else []
        pending: list[int] = []
        for i, texts in zip(todo, descriptions):
            if texts is None:
                outcomes[i] = RoundTripOutcome(False, "llm_rejected", "the LLM endpoint rejected the describe request")
                continue
            text = (texts[0] if texts else "").strip()
            if not text:
                outcomes[i] = RoundTripOutcome(False, "empty_description", "the LLM returned an empty description")
            elif _ENDMODULE.search(text):
                outcomes[i] = RoundTripOutcome(False, "description_contains_code",
                                               "the description contains Verilog (`endmodule`)", description=text)
            elif self.decontaminator is not None and (match := self.decontaminator.check_description(text)):
                outcomes[i] = RoundTripOutcome(False, "contaminated_description", match.describe(), description=text)
            else:
                outcomes[i] = RoundTripOutcome(False, description=text)
                pending.append(i)
        if not pending:
            return outcomes  # type: ignore[return-value]

        regen = [self._messages(render(self.templates["regenerate"], description=outcomes[i].description,
                                       top=items[i].top, interface=interface_text(items[i].interface)))
                 for i in pending]
        candidates = self.backend.generate(regen, n=self.cfg.regenerations, seed=seed + 1_000_003)
        jobs = []
        for i, texts in zip(pending, candidates):
            out = outcomes[i]
            if texts is None:
                out.reason, out.detail = "llm_rejected", "the LLM endpoint rejected the regenerate request"
                continue
            out.attempts = len(texts)
            jobs += [(i, k, text) for k, text in enumerate(texts)]
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            verdicts = list(pool.map(lambda job: self._check(items[job[0]], job[2]), jobs))
        finally:  # on a stop, queued checks are cancelled instead of run
            pool.shutdown(wait=True, cancel_futures=True)
        best: dict[int, tuple[str, str]] = {}
        for (i, k, _), (reason, detail, code, method) in zip(jobs, verdicts):
            out = outcomes[i]
            if out.ok:
                continue
            if reason is None:
                out.ok, out.reason, out.detail = True, None, ""
                out.regenerated, out.method, out.equivalent_attempt = code, method, k
                continue
            # remember the most informative failure: a counterexample beats a missing module
            if i not in best or _RANK.get(reason, 0) > _RANK.get(best[i][0], 0):
                best[i] = (reason, detail)
        for i in pending:
            out = outcomes[i]
            if not out.ok and out.reason is None:
                out.reason, out.detail = best.get(i, ("no_code", "no regenerated candidate"))
        return outcomes  # type: ignore[return-value]

    def _check(self, item: RoundTripItem, text: str) -> tuple[str | None, str, str | None, str | None]:
        """``(drop reason or None, detail, extracted code, method)`` for one regenerated completion."""
        from rewards.equivalence import check_equivalence
        from rewards.errors import InfrastructureError
        from rewards.extract import extract_verilog

        if self.stop is not None and self.stop.is_set():
            return "equivalence_infrastructure", "the build was stopped", None, None
        code = extract_verilog(text).code
        if code is None:
            return "no_code", "the regeneration holds no Verilog module", None, None
        try:
            res = check_equivalence(item.code, code, item.top, config=self.equiv_config)
        except InfrastructureError as exc:
            logger.warning("equivalence check of %s failed (infrastructure): %s", item.key, exc)
            return "equivalence_infrastructure", str(exc)[:500], code, None
        if res.verdict == "equivalent":
            return None, "", code, res.method
        if res.verdict == "not_equivalent":
            cex = res.counterexample
            return "not_equivalent", (f"{res.method}: counterexample {cex}" if cex else res.reason)[:500], code, None
        if res.verdict == "interface_mismatch":
            return "interface_mismatch", res.reason[:500], code, None
        if res.fault == "candidate":
            return "candidate_rejected", res.reason[:500], code, None
        if res.fault == "golden":
            return "golden_unsupported", res.reason[:500], code, None
        return "equivalence_infrastructure", res.reason[:500], code, None


_RANK = {"no_code": 1, "candidate_rejected": 2, "interface_mismatch": 3, "not_equivalent": 4,
         "golden_unsupported": 5, "equivalence_infrastructure": 6}

