"""Every document the repository points at exists, with the section named: `docs/NAME.md`, `README(.md)` and
`DESIGN.md` in code, docs, the Makefile and YAML files, and Markdown links in the docs, each optionally followed
by `#anchor` or by a quoted heading (`docs/serving.md, "Model configuration"`). Nothing points outside the
repository (the design folder beside it, this machine's absolute paths), and no reference uses section numbers.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from helpers import PROJECT

SCANNED_SUFFIXES = (".py", ".md", ".yml", ".yaml")
SCANNED_NAMES = ("Makefile",)
# Generated, never committed (.gitignore); hidden folders (.git, .venv) are skipped too.
GENERATED_DIRS = {"data", "runs", "artifacts", "build", "__pycache__"}

# A quoted heading after a reference: `, "Heading"`, ` "Heading"`, possibly wrapped onto the next line of a
# comment or docstring.
_WRAP = r"\n[ \t]*(?:#[ \t]*)?"
_QUOTED = (rf'(?:(?:,[ \t]*|[ \t]+)(?:{_WRAP})?|{_WRAP})'
           rf'"(?P<heading>[^"\n]{{1,100}}(?:{_WRAP}[^"\n]{{1,100}})?)"')
# docs/NAME.md, README, README.md, DESIGN.md (not part of a longer path such as model_repository/README.md).
DOC_REFERENCE = re.compile(r"(?<![\w./-])(?P<target>docs/[\w.-]+\.md|README(?:\.md)?|DESIGN\.md)(?![\w/-])"
                           rf"(?:#(?P<anchor>[\w-]+))?(?:{_QUOTED})?")
# Markdown links, in .md files: [text](target#anchor), relative to the file.
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\((?P<target>[^)#\s]*)(?:#(?P<anchor>[^)\s]+))?\)"
                           rf"(?:{_QUOTED})?")
# A bare NAME.md in docs/: a sibling document (or the README).
BARE_NAME = re.compile(r"(?<![\w./-])(?P<target>[\w-]+\.md)(?![\w/-])(?:#(?P<anchor>[\w-]+))?"
                       rf"(?:{_QUOTED})?")
# `owner/repo `docs/x.md`` names another repository's file, not ours.
UPSTREAM_PREFIX = re.compile(r"(?:^|[\s(])[\w-]+/[\w.-]+[ \t`]*$")
OUTSIDE = (
    (re.compile(r"\.\./shared\b"), "points at the design folder outside the repository"),
    (re.compile(r"(?<![\w.])/work(?=/)"), "an absolute path of this machine"),
    (re.compile(r"(?<![\w.])/(?:home|Users)/[\w.-]+"), "an absolute path in a home directory"),
    (re.compile("\N{SECTION SIGN}"), "a section number: name the heading (or its #anchor) instead"),
)


def scanned_files(root: Path) -> list[Path]:
    """The files a reference may live in; this test itself is left out (its examples are wrong on purpose)."""
    found = []
    for folder, subfolders, names in os.walk(root):  # symlinks (.venv) are not followed
        # digits-only folders are model version folders that exports write into model_repository/
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in GENERATED_DIRS
                               and not d.endswith(".egg-info") and not d.isdigit())
        found += [Path(folder) / n for n in sorted(names) if n.endswith(SCANNED_SUFFIXES) or n in SCANNED_NAMES]
    return [path for path in found if path.resolve() != Path(__file__).resolve()]


def _plain(text: str) -> str:
    """Heading or quoted text without Markdown code marks, comment markers or line breaks."""
    return " ".join(re.sub(_WRAP, " ", text).replace("`", "").split()).casefold()


def _slug(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.replace("`", "").strip().lower()).replace(" ", "-")


def headings(path: Path) -> tuple[list[str], set[str]]:
    """(heading texts, anchors) of a Markdown file, code blocks excluded."""
    texts, anchors, seen, fenced = [], set(), Counter(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match:
            texts.append(_plain(match.group(1)))
            slug = _slug(match.group(1))
            anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return texts, anchors


def _has_heading(texts: list[str], quoted: str) -> bool:
    wanted = _plain(quoted)
    return any(t == wanted or (t.startswith(wanted) and not t[len(wanted)].isalnum()) for t in texts)


def _check_target(root: Path, where: str, target: Path, shown: str, anchor: str | None,
                  heading: str | None) -> list[str]:
    if not target.exists() or root.resolve() not in (target.resolve(), *target.resolve().parents):
        return [f"{where}: {shown} does not exist in the repository"]
    if target.suffix != ".md" or not (anchor or heading):
        return []
    texts, anchors = headings(target)
    problems = []
    if anchor and anchor not in anchors:
        problems.append(f"{where}: {shown} has no heading with the anchor #{anchor}")
    if heading and not _has_heading(texts, heading):
        problems.append(f'{where}: {shown} has no heading "{" ".join(heading.split())}"')
    return problems


def reference_problems(root: Path) -> list[str]:
    """'file:line: problem' for every reference to a missing document, heading or anchor."""
    problems = []
    for path in scanned_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        relative = path.relative_to(root).as_posix()
        patterns = [(DOC_REFERENCE, lambda t: root / ("README.md" if t == "README" else t))]
        if path.suffix == ".md":
            patterns.append((MARKDOWN_LINK, lambda t: path.parent / t if t else path))
        if path.suffix == ".md" and path.parent == root / "docs":
            patterns.append((BARE_NAME, lambda t: next((d / t for d in (path.parent, root) if (d / t).exists()),
                                                       path.parent / t)))
        for pattern, resolve in patterns:
            for match in pattern.finditer(text):
                target = match.group("target")
                if "://" in target or target.startswith("mailto:"):
                    continue
                line_start = text.rfind("\n", 0, match.start()) + 1
                if UPSTREAM_PREFIX.search(text[line_start:match.start()]):
                    continue
                where = f"{relative}:{text.count(chr(10), 0, match.start()) + 1}"
                problems += _check_target(root, where, resolve(target), target or relative, match.group("anchor"),
                                          match.group("heading"))
    return sorted(set(problems))


def outside_problems(root: Path) -> list[str]:
    """'file:line: problem' for every reference outside the repository (and every section number)."""
    root_text = str(root.resolve())
    problems = []
    for path in scanned_files(root):
        relative = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if root_text in line:
                problems.append(f"{relative}:{number}: the repository's own absolute path")
            problems += [f"{relative}:{number}: {why}" for pattern, why in OUTSIDE if pattern.search(line)]
    return problems


def test_every_referenced_document_heading_and_anchor_exists():
    problems = reference_problems(PROJECT)
    assert not problems, "references to documents the repository does not have:\n" + "\n".join(problems)


def test_nothing_points_outside_the_repository():
    problems = outside_problems(PROJECT)
    assert not problems, "\n".join(problems)


def test_the_scan_covers_code_docs_makefile_and_yaml():
    names = {p.relative_to(PROJECT).as_posix() for p in scanned_files(PROJECT)}
    assert {"README.md", "Makefile", "docker-compose.yml", "docs/serving.md", "export/triton_config.py",
            "deploy/prometheus/rules/stanet-latency.yml"} <= names
    assert not any(name.startswith((".venv", ".git/")) for name in names)


def test_bad_references_are_named_by_file_and_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Project\n\n## Dataset format\n\n"
                                        "See [the guide](docs/guide.md#setup-make-install).\n"
                                        "And [gone](docs/gone.md), [bad anchor](docs/guide.md#nowhere).\n")
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Setup (`make install`)\n\nBack to "
                                                "[the README](../README.md), \"Dataset format\"; see other.md.\n")
    section = "\N{SECTION SIGN}"
    (tmp_path / "code.py").write_text(
        '"""Facts: docs/guide.md, "Setup"; docs/guide.md#setup-make-install; README "Dataset format"."""\n'
        "# Wrong: docs/missing.md, DESIGN.md and docs/guide.md, \"Teardown\".\n"
        "# Wrapped: docs/guide.md,\n# \"Setup\" is fine; onnx/onnx-tensorrt `docs/operators.md` is upstream.\n"
        f"# Numbered: docs/guide.md {section}3; outside: ../shared/docs/x.md\n"
        '# Wrapped and wrong: docs/guide.md,\n# "Set up"; README "Data format".\n'
        f"# Built in {tmp_path}/build.\n")
    (tmp_path / "Makefile").write_text("# the table of docs/table.md\n")
    problems = reference_problems(tmp_path)
    assert problems == sorted([
        "Makefile:1: docs/table.md does not exist in the repository",
        "README.md:6: docs/gone.md does not exist in the repository",
        "README.md:6: docs/guide.md has no heading with the anchor #nowhere",
        "code.py:2: DESIGN.md does not exist in the repository",
        "code.py:2: docs/guide.md has no heading \"Teardown\"",
        "code.py:2: docs/missing.md does not exist in the repository",
        "code.py:7: README has no heading \"Data format\"",
        "code.py:6: docs/guide.md has no heading \"Set up\"",
        "docs/guide.md:5: other.md does not exist in the repository",
    ]), problems
    assert outside_problems(tmp_path) == [
        "code.py:5: points at the design folder outside the repository",
        "code.py:5: a section number: name the heading (or its #anchor) instead",
        "code.py:8: the repository's own absolute path",
    ]
