"""The license of each source file, recorded in every task's provenance.

In order: an ``SPDX-License-Identifier:`` tag in the file's first lines; the source's
``license`` setting; the nearest ``LICENSE``/``COPYING``/``LICENCE`` file from the file's folder up
to the source root, identified by its wording (MIT, Apache-2.0, BSD, ISC, GPL/LGPL, MPL-2.0,
Solderpad, CERN-OHL, Unlicense, CC0). A license file that matches none of them is recorded as
``LicenseRef-unknown:<relative path>``, so a user can look at it; no license file gives ``None``.
"""

from __future__ import annotations

import os
import re

_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-() ]+?)\s*(?:\*/|$)", re.MULTILINE)
_NAMES = ("LICENSE", "LICENCE", "COPYING", "COPYRIGHT", "UNLICENSE")
_READ_LIMIT = 64 * 1024

#: (identifier, patterns that must all occur, patterns that must not occur), first match wins
_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Apache-2.0", (r"apache license", r"version 2\.0"), ()),
    ("LGPL-3.0", (r"gnu lesser general public license", r"version 3"), ()),
    ("LGPL-2.1", (r"gnu lesser general public license", r"version 2\.1"), ()),
    ("LGPL-2.0", (r"gnu library general public license",), ()),
    ("AGPL-3.0", (r"gnu affero general public license",), ()),
    ("GPL-3.0", (r"gnu general public license", r"version 3"), ()),
    ("GPL-2.0", (r"gnu general public license", r"version 2"), ()),
    ("MPL-2.0", (r"mozilla public license", r"2\.0"), ()),
    ("SHL-2.1", (r"solderpad hardware licen[cs]e", r"version 2\.1"), ()),
    ("SHL-2.0", (r"solderpad hardware licen[cs]e", r"version 2\.0"), ()),
    ("SHL-0.51", (r"solderpad hardware licen[cs]e", r"0\.51"), ()),
    ("SHL-0.5", (r"solderpad hardware licen[cs]e",), ()),
    ("CERN-OHL-S-2.0", (r"cern open hardware licen[cs]e", r"strongly reciprocal"), ()),
    ("CERN-OHL-W-2.0", (r"cern open hardware licen[cs]e", r"weakly reciprocal"), ()),
    ("CERN-OHL-P-2.0", (r"cern open hardware licen[cs]e", r"permissive"), ()),
    ("CERN-OHL-1.2", (r"cern ohl v\.? ?1\.2|cern open hardware licen[cs]e v1\.2",), ()),
    ("Unlicense", (r"free and unencumbered software released into the public domain",), ()),
    ("CC0-1.0", (r"cc0 1\.0 universal",), ()),
    ("ISC", (r"permission to use, copy, modify, and(/or)? distribute this software for any purpose",), ()),
    ("MIT", (r"permission is hereby granted, free of charge",), ()),
    ("BSD-3-Clause", (r"redistribution and use in source and binary forms", r"neither the name"), ()),
    ("BSD-2-Clause", (r"redistribution and use in source and binary forms",), (r"neither the name",)),
)
_COMPILED = tuple((name, tuple(re.compile(p) for p in need), tuple(re.compile(p) for p in avoid))
                  for name, need, avoid in _RULES)


def spdx_tag(text: str) -> str | None:
    """The ``SPDX-License-Identifier`` of a source text (first 40 lines), if any."""
    head = "\n".join(text.splitlines()[:40])
    match = _SPDX.search(head)
    return match.group(1).strip() if match else None


def identify(text: str) -> str | None:
    """SPDX identifier of a license text, or ``None`` when it is not recognised."""
    tag = spdx_tag(text)
    if tag:
        return tag
    body = re.sub(r"\s+", " ", text.lower())
    for name, need, avoid in _COMPILED:
        if all(p.search(body) for p in need) and not any(p.search(body) for p in avoid):
            return name
    return None


class LicenseFinder:
    """Nearest license file of a path inside a source folder (results cached per folder)."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        self._cache: dict[str, str | None] = {}

    def for_file(self, real_path: str) -> str | None:
        folder = os.path.dirname(real_path)
        if os.path.commonpath([folder, self.root]) != self.root:
            folder = self.root  # a file reached through a link to outside the source: the source's license
        return self._for_folder(folder)

    def _for_folder(self, folder: str) -> str | None:
        if folder in self._cache:
            return self._cache[folder]
        found = None
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            names = []
        for name in names:
            stem = name.upper().split(".")[0].replace("-", "_")
            if stem in _NAMES or stem.startswith(("LICENSE_", "LICENCE_", "COPYING_")):
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    try:
                        with open(path, "rb") as fh:
                            text = fh.read(_READ_LIMIT).decode("utf-8", errors="replace")
                    except OSError:
                        continue
                    found = identify(text) or f"LicenseRef-unknown:{os.path.relpath(path, self.root)}"
                    break
        if found is None and folder != self.root and os.path.dirname(folder) != folder:
            found = self._for_folder(os.path.dirname(folder))
        self._cache[folder] = found
        return found
