"""Exact and near-duplicate removal.

* **Exact**: a SHA-256 of the module's significant tokens (comments and whitespace removed, by
  the lexer of :mod:`rewards.lexer`), so reformatted or re-commented copies are one module.
* **Near**: MinHash signatures of token shingles indexed in a ``datasketch.MinHashLSH``; a
  candidate returned by the index is a duplicate only when its estimated Jaccard similarity
  reaches the threshold (the LSH banding alone admits some pairs below it).

The first occurrence in corpus order is kept. :class:`Deduplicator` can export what it added
since the last export (:meth:`Deduplicator.take_delta`), so a sharded run stores each shard's
contribution and a resumed run rebuilds the exact same index (:meth:`Deduplicator.load_delta`).
Memory grows with the number of *kept* modules only: about ``8 * num_perm`` bytes plus the LSH
band keys per module (≈ 2 KiB at 128 permutations, ≈ 200 MB for 100k kept modules).
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from rewards import lexer

from .config import DedupeConfig

logger = logging.getLogger(__name__)


def code_tokens(code: str, *, normalize_identifiers: bool = False) -> list[str]:
    """Significant tokens of Verilog text; identifiers optionally replaced by ``ID``."""
    out = []
    for tok in lexer.tokenize(code):
        if not tok.significant:
            continue
        if normalize_identifiers and tok.kind == lexer.IDENT and not _is_keyword(tok.text):
            out.append("ID")
        else:
            out.append(tok.text)
    return out


_KEYWORDS = frozenset(
    """always always_comb always_ff always_latch and assign automatic begin buf case casex casez default
    defparam disable else end endcase endfunction endgenerate endmodule endtask for forever function
    generate genvar if initial inout input integer localparam logic module nand negedge nor not or
    output parameter posedge real reg repeat signed task unsigned while wire xor xnor bit byte int
    typedef enum struct packed unique priority""".split()
)


def _is_keyword(word: str) -> bool:
    return word in _KEYWORDS


def exact_hash(code: str) -> str:
    """Hash of the significant tokens: equal for copies that differ only in layout and comments."""
    return hashlib.sha256("\x1f".join(code_tokens(code)).encode("utf-8", errors="replace")).hexdigest()[:32]


def shingles(tokens: list[str], size: int) -> set[bytes]:
    if len(tokens) <= size:
        return {" ".join(tokens).encode("utf-8", errors="replace")}
    return {" ".join(tokens[i : i + size]).encode("utf-8", errors="replace") for i in range(len(tokens) - size + 1)}


class Deduplicator:
    """Stateful duplicate filter over a stream of modules (first occurrence wins)."""

    def __init__(self, cfg: DedupeConfig, seed: int = 1):
        from datasketch import MinHash, MinHashLSH

        self.cfg = cfg
        self._exact: dict[str, str] = {}
        self._template = MinHash(num_perm=cfg.num_perm, seed=seed)
        self._lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
        self._signatures: dict[str, np.ndarray] = {}
        self._delta_exact: list[tuple[str, str]] = []
        self._delta_near: list[tuple[str, np.ndarray]] = []

    # -- checks -----------------------------------------------------------------------------

    def exact_duplicate(self, key: str, code: str) -> str | None:
        """Key of an earlier module with the same normalized text, else record this one and return None."""
        if not self.cfg.exact:
            return None
        digest = exact_hash(code)
        first = self._exact.get(digest)
        if first is not None:
            return first
        self._exact[digest] = key
        self._delta_exact.append((digest, key))
        return None

    def exact_drop(self, key: str, code: str) -> tuple[str, str] | None:
        """``("exact_duplicate", detail)`` for a module seen before (see :meth:`exact_duplicate`), else None."""
        first = self.exact_duplicate(key, code)
        return None if first is None else ("exact_duplicate", f"same normalized text as {first}")

    def near_drop(self, key: str, code: str) -> tuple[str, str] | None:
        """``("near_duplicate", detail)`` for a module similar to an earlier one (see :meth:`near_duplicate`)."""
        found = self.near_duplicate(key, code)
        return None if found is None else ("near_duplicate", f"similar to {found[0]} (Jaccard ≈ {found[1]:.2f})")

    def minhash(self, code: str):
        from datasketch import MinHash

        mh = MinHash(num_perm=self.cfg.num_perm, permutations=self._template.permutations,
                     hashvalues=None, seed=self._template.seed, scheme=self._template.scheme)
        mh.update_batch(list(shingles(code_tokens(code), self.cfg.shingle_size)))
        return mh

    def near_duplicate(self, key: str, code: str) -> tuple[str, float] | None:
        """``(key, similarity)`` of an earlier similar module, else index this one and return None.

        Parameter variants of one module (keys ``<module key>@param:NAME=VALUE``) are similar by
        construction and are never duplicates of each other.
        """
        if not self.cfg.near:
            return None
        from .sources import variant_family

        mh = self.minhash(code)
        best: tuple[str, float] | None = None
        family = variant_family(key)
        for other in self._lsh.query(mh):
            if variant_family(other) == family:
                continue
            sim = float(np.mean(self._signatures[other] == mh.hashvalues))
            if sim >= self.cfg.threshold and (best is None or sim > best[1]):
                best = (other, sim)
        if best is not None:
            return best
        self._add_near(key, mh.hashvalues)
        self._delta_near.append((key, mh.hashvalues.copy()))
        return None

    def _add_near(self, key: str, values: np.ndarray) -> None:
        from datasketch import MinHash

        if key in self._signatures:
            return
        mh = MinHash(num_perm=self.cfg.num_perm, permutations=self._template.permutations,
                     hashvalues=values, seed=self._template.seed, scheme=self._template.scheme)
        self._lsh.insert(key, mh, check_duplication=False)
        self._signatures[key] = np.asarray(values, dtype=np.uint64)

    # -- resume -----------------------------------------------------------------------------

    def take_delta(self) -> dict:
        """What was added since the last call: ``{"exact": [[digest, key]...], "near_keys": [...],
        "near_signatures": uint64 array (n, num_perm)}``."""
        sigs = (np.stack([v for _, v in self._delta_near]).astype(np.uint64) if self._delta_near
                else np.zeros((0, self.cfg.num_perm), dtype=np.uint64))
        delta = {"exact": [list(x) for x in self._delta_exact],
                 "near_keys": [k for k, _ in self._delta_near],
                 "near_signatures": sigs}
        self._delta_exact, self._delta_near = [], []
        return delta

    def discard_delta(self) -> None:
        """Forget what was added since the last export (a shard that is redone from scratch)."""
        for digest, _ in self._delta_exact:
            self._exact.pop(digest, None)
        for key, _ in self._delta_near:
            if key in self._signatures:
                self._lsh.remove(key)
                del self._signatures[key]
        self._delta_exact, self._delta_near = [], []

    def load_delta(self, delta: dict) -> None:
        """Re-add a stored shard contribution (resume)."""
        for digest, key in delta.get("exact", []):
            self._exact.setdefault(digest, key)
        sigs = delta.get("near_signatures")
        for i, key in enumerate(delta.get("near_keys", [])):
            self._add_near(key, np.asarray(sigs[i], dtype=np.uint64))

    def __len__(self) -> int:
        return max(len(self._exact), len(self._signatures))
