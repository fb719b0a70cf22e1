"""Task rows: the one place a module record becomes a row of the task schema (``rewards.task.Task``).

``verirl data build`` (:mod:`data_pipeline.build`) and the standalone ``roundtrip`` step (:mod:`data_pipeline.steps`)
both write rows with :func:`task_row`, so a task has the same id, the same ``metadata`` (provenance, interface,
description, round trip, difficulty, stats) and the same Arrow schema (:func:`task_features`) whichever way it was
built.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from .templates import interface_prompt

if TYPE_CHECKING:
    from .sources import ModuleRecord

#: reset ports named like resets; others that the front end calls synchronous resets (a strobe that loads a
#: constant: `i_wr`, `i_ce`) are not described as resets in prompts and metadata
_RESET_NAME = re.compile(r"(^|_)(a?rst|a?reset|clr|clear|init)(_?n|_b|_l|_ni?)?($|_)|^(a?rst|a?reset)", re.IGNORECASE)


def task_features():
    """`datasets.Features` of the task rows (the schema of rewards.task.Task plus typed metadata)."""
    from datasets import Features, List, Value

    port = {"name": Value("string"), "direction": Value("string"), "width": Value("int64"),
            "signed": Value("bool"), "packed": Value("bool")}
    interface = {
        "name": Value("string"), "kind": Value("string"), "ports": List(port),
        "parameters": List({"name": Value("string"), "value": Value("string"), "local": Value("bool")}),
        "clocks": List({"name": Value("string"), "edge": Value("string")}),
        "resets": List({"name": Value("string"), "polarity": Value("string"), "kind": Value("string")}),
        "internal_clocks": List(Value("string")),
    }
    metadata = {
        "provenance": {"source": Value("string"), "kind": Value("string"), "path": Value("string"),
                       "line": Value("int64"), "row": Value("int64"), "license": Value("string"),
                       "key": Value("string"), "dependencies": List(Value("string")),
                       "dependency_paths": List(Value("string")), "variant": Value("string")},
        "interface": interface,
        "description": Value("string"),
        "roundtrip": {"model": Value("string"), "method": Value("string"), "attempts": Value("int64"),
                      "equivalent_attempt": Value("int64")},
        "difficulty": {"pass_rate": Value("float64"), "samples": Value("int64"), "model": Value("string")},
        "stats": {"lines": Value("int64"), "ports": Value("int64"), "cells": Value("int64"),
                  "area": Value("float64"), "depth": Value("int64")},
    }
    return Features({"id": Value("string"), "prompt": Value("string"), "top": Value("string"),
                     "reference": Value("string"), "testbench": Value("string"), "harness": Value("string"),
                     "metadata": metadata})


def normalize_interface(iface: dict, string_parameters: dict | None = None) -> dict:
    """The interface fields of the declared schema, as a task should describe them.

    ``string_parameters`` (declared default text of string-valued parameters, from the splitter) replaces
    the front end's elaborated value, which prints a string as a number (``"ABC"`` → ``24'd4276803``). A
    synchronous "reset" the front end inferred is kept only when the port is named like a reset: a strobe
    that loads a constant (``if (i_wr) busy <= 1;``) is not a reset to a reader of the prompt.
    """
    strings = string_parameters or {}
    resets = [r for r in iface.get("resets", [])
              if str(r.get("kind", "")) != "sync" or _RESET_NAME.search(str(r["name"]))]
    return {
        "name": str(iface.get("name", "")),
        "kind": str(iface.get("kind", "")),
        "ports": [{"name": str(p["name"]), "direction": str(p["direction"]), "width": int(p.get("width", 1)),
                   "signed": bool(p.get("signed", False)), "packed": bool(p.get("packed", True))}
                  for p in iface.get("ports", [])],
        "parameters": [{"name": str(p["name"]), "value": str(strings.get(p["name"], p.get("value", ""))),
                        "local": bool(p.get("local"))}
                       for p in iface.get("parameters", [])],
        "clocks": [{"name": str(c["name"]), "edge": str(c.get("edge", ""))} for c in iface.get("clocks", [])],
        "resets": [{"name": str(r["name"]), "polarity": _polarity(r), "kind": _reset_kind(r)} for r in resets],
        "internal_clocks": [str(x) for x in iface.get("internal_clocks", [])],
    }


def _polarity(reset: dict) -> str:
    if "polarity" in reset:
        return str(reset["polarity"])
    return "low" if reset.get("active_low") else "high"


def _reset_kind(reset: dict) -> str:
    if "kind" in reset:
        return str(reset["kind"])
    return "sync" if reset.get("synchronous") else "async"


def task_id(rec: ModuleRecord, digest: str, id_prefix: str = "") -> str:
    """``<prefix><top>-<12 hex digits of the module's normalized text>``; the prefix defaults to ``<source>/``."""
    prefix = id_prefix or f"{rec.source.get('name', 'src')}/"
    return f"{prefix}{rec.top}-{digest[:12]}"


class TaskIds:
    """Unique task ids for one output.

    A task's id is :func:`task_id`, so the same module gets the same id in every build. A module whose id was
    already given in this output — its text and top repeat an earlier module's, which happens when exact dedupe is
    off or the ``roundtrip`` step runs on records that were not deduplicated — gets 8 hex digits of its key's hash
    appended, so ids stay unique.
    """

    def __init__(self, id_prefix: str = ""):
        self.id_prefix = id_prefix
        self.given: set[str] = set()

    def reserve(self, ids) -> None:
        """Ids written before (the committed shards of a resumed build)."""
        self.given.update(ids)

    def assign(self, rec: ModuleRecord, digest: str) -> str:
        ident = task_id(rec, digest, self.id_prefix)
        if ident in self.given:
            ident = f"{ident}-{hashlib.sha256(rec.key.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
            base, n = ident, 1
            while ident in self.given:  # the same key twice in one output: only a corpus listing it twice
                n += 1
                ident = f"{base}.{n}"
        self.given.add(ident)
        return ident


def provenance(rec: ModuleRecord) -> dict[str, Any]:
    """Where a task's reference came from (the fields of ``metadata.provenance``)."""
    source = rec.source
    return {"source": source.get("name"), "kind": source.get("kind"), "path": source.get("path"),
            "line": source.get("line"), "row": source.get("row"), "license": source.get("license"),
            "key": rec.key, "dependencies": list(rec.dependencies), "dependency_paths": list(rec.dependency_paths),
            "variant": source.get("variant")}


def task_row(rec: ModuleRecord, *, ident: str, interface: dict, lines: int, figures: dict | None = None,
             prompt: str | None = None, description: str | None = None,
             roundtrip: dict | None = None) -> dict[str, Any]:
    """The task row of a module that passed the pipeline.

    ``ident``: from :meth:`TaskIds.assign`; ``interface``: from :func:`normalize_interface`; ``lines``: lines of
    code; ``figures``: synthesis figures (cells, area, depth).
    ``prompt`` and ``description`` come from the round trip, which ``roundtrip`` describes (model, method,
    attempts, equivalent_attempt); without one the prompt is the interface (:func:`interface_prompt`).
    """
    figures = figures or {}
    return {
        "id": ident,
        "prompt": prompt if prompt is not None else interface_prompt(rec.top, interface),
        "top": rec.top,
        "reference": rec.code,
        "testbench": None,
        "harness": "verirl",
        "metadata": {
            "provenance": provenance(rec),
            "interface": interface,
            "description": description,
            "roundtrip": roundtrip,
            "difficulty": None,
            "stats": {"lines": lines, "ports": rec.ports, "cells": figures.get("cells"), "area": figures.get("area"),
                      "depth": figures.get("depth")},
        },
    }


def roundtrip_metadata(model: str | None, outcome) -> dict[str, Any]:
    """``metadata.roundtrip`` of a task kept by the round trip (``outcome``: a ``RoundTripOutcome``)."""
    return {"model": model, "method": outcome.method, "attempts": outcome.attempts,
            "equivalent_attempt": outcome.equivalent_attempt}
