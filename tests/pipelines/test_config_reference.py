"""docs/configuration.md: generated from the config models, current, one anchor per key, and
saying what `--help` says."""

from __future__ import annotations

import html
import re

import pytest

from pipelines.config import help_text, reference
from pipelines.config.reference import PAGE, main, markdown_text, render, section_of
from pipelines.config.run import RunConfig, _key_paths, config_keys

KEYS = [path for path, _ in _key_paths(RunConfig)]
ANCHOR = re.compile(r'^<a id="([^"]+)"></a>$', re.M)


def _words(text: str) -> list[str]:
    return text.split()


def _page_sections(page: str) -> dict[str, str]:
    """Anchor id -> the page text after it, up to the next anchor."""
    parts = ANCHOR.split(page)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _page_description(body: str) -> str:
    """A key's paragraph (after its heading and default line), its Markdown escapes undone."""
    lines = body.strip().splitlines()
    assert lines[0].startswith("### ") and lines[2].startswith("Default: "), body
    text = "\n".join(lines[3:])
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text))


def _help_descriptions() -> dict[str, str]:
    """Key -> its description as `--help` prints it (the indented lines under `  key = default`)."""
    out: dict[str, list[str]] = {}
    for line in help_text().splitlines()[1:]:
        if m := re.match(r"  (\S+) = ", line):
            current = out.setdefault(m[1], [])
        else:
            current.append(line)
    return {key: "\n".join(lines) for key, lines in out.items()}


def test_page_is_current():
    assert PAGE.is_file(), f"{PAGE} is missing: run `make docs`"
    assert PAGE.read_text(encoding="utf-8") == render(), f"{PAGE} is stale: run `make docs`"
    assert main(["--check"]) == 0


def test_every_key_has_exactly_one_anchor_and_heading():
    page = PAGE.read_text(encoding="utf-8")
    anchors = ANCHOR.findall(page)
    sections = {section_of(key) for key in KEYS}
    assert sorted(anchors) == sorted(KEYS + list(sections)), "anchors differ from the config keys"
    for key in KEYS:
        assert page.count(f"\n### `{key}`\n") == 1, key
        assert re.search(rf"^## `{re.escape(section_of(key))}`$", page, re.M), key


def test_every_key_has_a_description():
    missing = [key.key for key in config_keys() if not key.description.strip()]
    assert not missing, f"config keys without a description (add an attribute docstring): {missing}"


def test_page_and_help_say_the_same_words():
    sections = _page_sections(PAGE.read_text(encoding="utf-8"))
    helps = _help_descriptions()
    assert list(helps) == KEYS
    for key in KEYS:
        assert _words(_page_description(sections[key])) == _words(helps[key]), key


def test_page_paragraphs_render_as_their_text():
    """Read by a CommonMark parser, every paragraph is the description's own text: its code spans
    code, no emphasis, link, HTML or list made by accident."""
    markdown_it = pytest.importorskip("markdown_it")
    md = markdown_it.MarkdownIt("commonmark").enable("strikethrough")
    for key in config_keys():
        tokens = md.parse(markdown_text(key.description))
        blocks = [t.type for t in tokens if t.type != "inline"]
        assert blocks == ["paragraph_open", "paragraph_close"], key.key
        text = ""
        for child in tokens[1].children:
            assert child.type in ("text", "code_inline", "softbreak"), (key.key, child.type)
            text += {"code_inline": child.markup + child.content + child.markup, "softbreak": "\n"}.get(
                child.type, child.content)  # fmt: skip
        assert _words(text) == _words(key.description), key.key


@pytest.mark.parametrize(("text", "shown"), [
    ("# not a heading", None), ("> not a quote", None), ("- not a list", None),
    ("1. not a list\n2) nor this", None), ("= not\n---", None),
    ("a_b _not em_ *nor* [no](link) <b>no html</b> &amp; ~~no~~ a lone ` tick \\ backslash", None),
    ("code `x_<y>*` and ``a ` b`` kept", "code x_<y>* and a ` b kept"),
])  # fmt: skip
def test_markdown_text_keeps_the_text(text, shown):
    markdown_it = pytest.importorskip("markdown_it")
    html_out = markdown_it.MarkdownIt("commonmark").enable("strikethrough").render(markdown_text(text))
    plain = html.unescape(re.sub(r"</?(p|code)>", "", html_out))
    assert _words(plain) == _words(shown or text), html_out


def test_write_is_atomic_and_exact(tmp_path, monkeypatch):
    target = tmp_path / "docs" / "configuration.md"
    target.parent.mkdir()
    target.write_text("old\n")
    monkeypatch.setattr(reference, "PAGE", target)
    assert main(["--write"]) == 0
    assert target.read_text(encoding="utf-8") == render()
    assert [p.name for p in target.parent.iterdir()] == ["configuration.md"]  # no temporary left
