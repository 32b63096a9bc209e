"""The documentation holds together: every relative link and anchor in README.md, ARCHITECTURE.md and
docs/ resolves, and README.md stays a page a newcomer reads in five minutes (at most 300 lines).

A link is `[text](target)` (or `![alt](target)`, or a reference definition `[name]: target`)
outside fenced code blocks and inline code. http(s)://, mailto: and other scheme links are not
checked. A relative target is resolved against the linking file's folder and must exist; a link to
a folder or a non-Markdown file only needs to exist. A `#anchor` into a Markdown file (or a bare
`#anchor` into the same file) must be an explicit `id="..."` / `name="..."` there, or the GitHub
slug of one of its headings (lower case; characters other than letters, digits, spaces, hyphens and
underscores dropped; spaces become hyphens; a repeated heading gets -1, -2, ...).

docs/configuration.md is generated from the config models by its own generator. While it is absent,
links into it are left to `test_links_into_the_generated_configuration_page`, which skips saying
how many wait for it; once it exists, the main test checks them like any other.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "docs" / "configuration.md"
README_MAX_LINES = 300

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_EXPLICIT_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md, ARCHITECTURE.md and every Markdown file under docs/ that exist under `root`."""
    files = [root / name for name in ("README.md", "ARCHITECTURE.md") if (root / name).is_file()]
    docs = root / "docs"
    if docs.is_dir():
        files += sorted(docs.rglob("*.md"))
    return files


def _prose_lines(text: str):
    """(line number, line) of every line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            yield number, line
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            if not line.strip()[len(match.group(1)) :].strip():
                fence = None


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text (before duplicate suffixes)."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a link may name in a Markdown file: explicit ids and heading slugs."""
    text = path.read_text(encoding="utf-8")
    found = set(_EXPLICIT_ID.findall(text))
    seen: dict[str, int] = {}
    for _, line in _prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        found.update(_EXPLICIT_ID.findall(match.group(2)))
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _paragraphs(text: str):
    """(first line number, text) of every run of non-blank prose lines outside fenced code."""
    block: list[tuple[int, str]] = []
    for number, line in _prose_lines(text):
        if line.strip() and (not block or block[-1][0] == number - 1):
            block.append((number, line))
            continue
        if block:
            yield block[0][0], "\n".join(line for _, line in block)
        block = [(number, line)] if line.strip() else []
    if block:
        yield block[0][0], "\n".join(line for _, line in block)


def links(path: Path):
    """(line number, target) of every link in a Markdown file, outside code (inline code spans
    may run over a line break, so they are found per paragraph)."""
    text = path.read_text(encoding="utf-8")
    for first, paragraph in _paragraphs(text):
        spans = [m.span() for m in _CODE_SPAN.finditer(paragraph)]
        for match in _INLINE_LINK.finditer(paragraph):
            if any(start <= match.start() < end for start, end in spans):
                continue
            yield first + paragraph.count("\n", 0, match.start()), match.group(2)
        for offset, line in enumerate(paragraph.split("\n")):
            definition = _REFERENCE_DEF.match(line)
            if definition:
                yield first + offset, definition.group(2)


def broken_links(files: list[Path], root: Path = ROOT) -> list[tuple[str, Path]]:
    """('file:line: target: why', resolved file) of every link that does not resolve."""
    problems = []
    cache: dict[Path, set[str]] = {}
    for path in files:
        for number, target in links(path):
            if not target or _SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            file_part = unquote(file_part)
            if not file_part:
                resolved = path
            elif file_part.startswith("/"):
                resolved = root / file_part.lstrip("/")
            else:
                resolved = path.parent / file_part
            resolved = Path(resolved)
            where = f"{path.relative_to(root)}:{number}: {target}"
            if not resolved.exists():
                problems.append((f"{where}: no such file or folder", resolved))
                continue
            if anchor and resolved.is_file() and resolved.suffix.lower() == ".md":
                key = resolved.resolve()
                if key not in cache:
                    cache[key] = anchors(resolved)
                if unquote(anchor) not in cache[key]:
                    problems.append((f"{where}: no anchor #{anchor} in {resolved.name}", resolved))
    return problems


def _is_generated_page(path: Path, root: Path = ROOT) -> bool:
    return path.resolve() == (root / "docs" / "configuration.md").resolve()


def test_every_relative_link_and_anchor_resolves():
    problems = broken_links(doc_files())
    if not GENERATED.exists():
        problems = [p for p in problems if not _is_generated_page(p[1])]
    assert not problems, "broken links:\n" + "\n".join(p[0] for p in problems)


def test_links_into_the_generated_configuration_page():
    waiting = [p for p in broken_links(doc_files()) if _is_generated_page(p[1])]
    if not GENERATED.exists():
        pytest.skip(f"docs/configuration.md is not generated yet; {len(waiting)} links wait for it")
    assert not waiting, "broken links into docs/configuration.md:\n" + "\n".join(p[0] for p in waiting)


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_the_checker_catches_broken_links_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "table.tsv").write_text("x\n")
    (tmp_path / "README.md").write_text(
        "# Title\n\n"
        "[ok](docs/page.md) [ok anchor](docs/page.md#a-heading-with-code) "
        "[dup](docs/page.md#same-1) [explicit](docs/page.md#data.qa.key) [folder](data) "
        "[file](data/table.tsv) [web](https://example.com/missing.md) [mail](mailto:a@b.c)\n"
        "[self](#title) `[in code](missing_in_code.md)` `a code span\nover two lines [x](nope2.md)`\n"
        "[missing file](docs/nope.md)\n"
        "[missing anchor](docs/page.md#no-such-heading)\n"
        "```\n[in a fence](missing_in_fence.md)\n```\n"
        "[ref]: docs/also_missing.md\n"
    )
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n## A heading, with `code`!\n\n## Same\n\n## Same\n\n"
        '<a id="data.qa.key"></a>\n\n[back](../README.md#title) [bad self](#nowhere)\n'
    )
    problems = [p[0] for p in broken_links(doc_files(tmp_path), tmp_path)]
    assert problems == [
        "README.md:6: docs/nope.md: no such file or folder",
        "README.md:7: docs/page.md#no-such-heading: no anchor #no-such-heading in page.md",
        "README.md:11: docs/also_missing.md: no such file or folder",
        "docs/page.md:11: #nowhere: no anchor #nowhere in page.md",
    ]


def test_github_slugs():
    assert github_slug("Running on a Ray cluster") == "running-on-a-ray-cluster"
    assert github_slug("v1.1 recipe: theirs vs ours") == "v11-recipe-theirs-vs-ours"
    assert github_slug("Export (`jobs.export_dataset`)") == "export-jobsexport_dataset"
    assert github_slug("W&B") == "wb"
    assert github_slug("[Linked](x.md) heading") == "linked-heading"
