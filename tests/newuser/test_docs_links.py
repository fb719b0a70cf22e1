"""Every document a user is pointed at exists: `docs/*.md` named in code, help texts and error messages, and the
relative links of README.md and docs/*.md (`verirl score --help` used to point at a docs/tasks.md that never
existed)."""

from __future__ import annotations

import os
import re

import pytest

from .conftest import ROOT

CODE_DIRS = ("rewards", "data_pipeline", "verirl", "scripts", "recipes")
DOC_REF = re.compile(r"\bdocs/[A-Za-z0-9_.-]+\.md\b")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _files(exts):
    for top in CODE_DIRS:
        for folder, _, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                if name.endswith(exts):
                    yield os.path.join(folder, name)


def _docs():
    yield os.path.join(ROOT, "README.md")
    docs = os.path.join(ROOT, "docs")
    yield from (os.path.join(docs, n) for n in sorted(os.listdir(docs)) if n.endswith(".md"))


def test_every_docs_path_named_in_code_exists():
    missing = []
    for path in _files((".py", ".yaml", ".sh", ".md")):
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                for ref in DOC_REF.findall(line):
                    if not os.path.isfile(os.path.join(ROOT, ref)):
                        missing.append(f"{os.path.relpath(path, ROOT)}:{lineno}: {ref}")
    assert not missing, "documents named but absent:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", [os.path.relpath(p, ROOT) for p in _docs()])
def test_relative_links_of_the_docs_resolve(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as fh:
        text = fh.read()
    broken = []
    for target in MD_LINK.findall(text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        if not os.path.exists(os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), target))):
            broken.append(target)
    for ref in DOC_REF.findall(text):  # plain-text mentions (in code blocks, help texts) are read from the root
        if not os.path.isfile(os.path.join(ROOT, ref)):
            broken.append(ref)
    assert not broken, f"{doc} points at missing files: {broken}"
