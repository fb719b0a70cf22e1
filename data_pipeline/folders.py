"""Folder sources: the files of a checkout, and where an instantiated module is defined.

:func:`walk_files` lists the files to read without ever looping: directories are entered by their
real path and at most once (a ``lib/eth -> ../../..`` link cannot recurse), files are keyed by real
path (a file reached through two links is read once) and recorded by their path relative to the
source root (the real one when it lies inside the root, so provenance never depends on which
link was seen first). Links that lead outside the source folder are not followed: a corpus cannot
make the build read host files.

:class:`NearestIndex` answers "which file defines ``stage`` for ``cpu/core/top.v``?" the way a
project's own build usually does: the file itself, else the definition in the nearest folder
(fewest steps up and down the tree), else, among equally near ones, one under the earliest
``include_dirs`` entry; a remaining tie is :class:`Ambiguous` (two
unrelated ``stage`` modules are never guessed between).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Ambiguous(Exception):
    """A name is defined in two equally near places."""


def _matches(rel: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if fnmatch.fnmatchcase(rel, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:]):
            return True  # `**/` also matches no folder at all
    return False


def walk_files(root: str, patterns: list[str], on_skip: Callable[[str], None] | None = None,
               exclude: list[str] | None = None) -> list[tuple[str, str]]:
    """``(relative path, real path)`` of the regular files under ``root`` matching ``patterns`` and none
    of ``exclude``, sorted."""
    exclude = list(exclude or [])
    real_root = os.path.realpath(root)
    skip = on_skip or (lambda reason: None)
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    found: dict[str, str] = {}
    stack = [real_root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            skip("unreadable_folder")
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen_dirs:
            skip("folder_seen_through_link")
            continue
        seen_dirs.add(ident)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            skip("unreadable_folder")
            continue
        for entry in entries:
            real = os.path.realpath(entry.path)
            if real != real_root and not real.startswith(real_root + os.sep):
                skip("link_outside_source")
                continue
            try:
                mode = os.stat(real).st_mode
            except OSError:
                skip("broken_link")
                continue
            if stat.S_ISDIR(mode):
                stack.append(real)
            elif stat.S_ISREG(mode):
                rel = os.path.relpath(real, real_root)
                if real in seen_files or not _matches(rel, patterns):
                    continue
                if exclude and _matches(rel, exclude):
                    skip("excluded")
                    continue
                seen_files.add(real)
                found[rel] = real
    return sorted(found.items())


def _parts(rel: str) -> tuple[str, ...]:
    folder = os.path.dirname(rel)
    return tuple(p for p in folder.split(os.sep) if p and p != ".")


def tree_distance(a: str, b: str) -> int:
    """Steps up from ``a``'s folder and down to ``b``'s folder (0: same folder)."""
    pa, pb = _parts(a), _parts(b)
    common = 0
    for x, y in zip(pa, pb):
        if x != y:
            break
        common += 1
    return (len(pa) - common) + (len(pb) - common)


class NearestIndex:
    """Unit name → files defining it, per namespace (``unit`` or ``package``)."""

    def __init__(self, include_dirs: list[str] | None = None):
        self._names: dict[tuple[str, str], list[str]] = {}
        self.include_dirs = [d for d in (include_dirs or []) if not d.startswith("..")]

    def add(self, namespace: str, name: str, rel: str) -> None:
        files = self._names.setdefault((namespace, name), [])
        if rel not in files:
            files.append(rel)

    def candidates(self, namespace: str, name: str) -> list[str]:
        return list(self._names.get((namespace, name), []))

    def nearest(self, namespace: str, name: str, at: str) -> str | None:
        files = self._names.get((namespace, name))
        if not files:
            return None
        if at in files:
            return at
        best = min(tree_distance(at, f) for f in files)
        nearest = [f for f in files if tree_distance(at, f) == best]
        if len(nearest) == 1:
            return nearest[0]
        for inc in self.include_dirs:
            inside = [f for f in nearest if f.startswith(inc.rstrip(os.sep) + os.sep) or inc in ("", ".")]
            if len(inside) == 1:
                return inside[0]
        raise Ambiguous(f"defined in {len(nearest)} equally near files: {', '.join(sorted(nearest)[:4])}")

    def __len__(self) -> int:
        return len(self._names)
