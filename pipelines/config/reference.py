"""docs/configuration.md, the configuration reference, rendered from the config models.

    python -m pipelines.config.reference            # print the page
    python -m pipelines.config.reference --write    # regenerate docs/configuration.md (`make docs`)
    python -m pipelines.config.reference --check    # exit 1 when the page on disk is stale

The keys, defaults and descriptions come from `config_keys()`, the same walk that
`python -m jobs.<job> --help` prints, so the page and `--help` cannot disagree.

Anchors. Every key is preceded by `<a id="KEY"></a>` with its full dotted path, and every section
by `<a id="SECTION"></a>` (top-level keys: `top-level`), so other pages link a key as
`configuration.md#data.qa.rel_distance_margin` (from docs/) or
`docs/configuration.md#data.qa.rel_distance_margin` (from the repository root). The `###`
heading also gets GitHub's own anchor (lower-cased, every character but letters, digits, `-`,
`_` and spaces dropped, spaces to `-`: `#dataqarel_distance_margin`), but the explicit id is the
stable one: it needs no rule and cannot collide.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pipelines.config.run import ConfigKey, config_keys
from pipelines.run_meta import write_text_atomic

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
COMMAND = "make docs"  # = python -m pipelines.config.reference --write
TOP_LEVEL = "top-level"

# A code span: a run of backticks, its text, the same run (CommonMark's rule).
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
# Outside code spans these could start emphasis, links, HTML, entities or strikethrough.
_INLINE = re.compile(r"[\\*\[\]<&~`]")
# An underscore that could open or close emphasis (GitHub ignores intraword ones: run_dir).
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# A line start that would begin a heading, quote, list, rule or setext underline: the
# punctuation that would (after an ordered list's digits) gets a backslash.
_BLOCK_START = re.compile(r"^(\d+(?=[.)])|(?=[#>+=-]))(.)")


def _escape_text(text: str) -> str:
    text = _INLINE.sub(lambda m: "&lt;" if m[0] == "<" else "\\" + m[0], text)
    return _UNDERSCORE.sub(r"\\_", text)


def markdown_text(description: str) -> str:
    """A description as Markdown that renders as its own text: code spans (`...`) kept as code,
    everything else escaped, lines kept (soft breaks), blank lines kept as paragraph breaks."""
    out = []
    for line in description.splitlines():
        line = line.strip()
        parts, last = [], 0
        for m in _CODE_SPAN.finditer(line):
            parts += [_escape_text(line[last : m.start()]), m[0]]
            last = m.end()
        parts.append(_escape_text(line[last:]))
        line = "".join(parts)
        out.append(_BLOCK_START.sub(r"\1\\\2", line, count=1))
    return "\n".join(out)


def _code(text: str) -> str:
    """`text` as one code span, however many backticks it holds."""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def section_of(key: str) -> str:
    """The section a key is listed under: its parent's dotted path (`data.qa` for
    `data.qa.num_frames`), or `top-level` for the keys at the top of the tree."""
    return key.rpartition(".")[0] or TOP_LEVEL


def _sections(keys: list[ConfigKey]) -> dict[str, list[ConfigKey]]:
    """Keys by section, sections in the order their first key is declared."""
    out: dict[str, list[ConfigKey]] = {}
    for key in keys:
        out.setdefault(section_of(key.key), []).append(key)
    return out


def render() -> str:
    """The whole page."""
    sections = _sections(config_keys())
    lines = [
        "# Configuration reference",
        "",
        f"Generated from the config models by `{COMMAND}` (`python -m pipelines.config.reference --write`); "
        "edit the models' descriptions, not this page. `python -m jobs.<job> --help` prints the same keys, "
        "defaults and descriptions.",
        "",
        "Set a key in the YAML file given by `--config`, nested by its dots, or on the command line as "
        "`key=value` (e.g. `sft.max_steps=3`). Every key below has a link anchor named by its dotted path: "
        "`configuration.md#data.qa.num_frames`.",
        "",
        "Sections:",
        "",
    ]
    lines += [f"- [{_code(name)}](#{name}) ({len(items)} keys)" for name, items in sections.items()]
    for name, items in sections.items():
        lines += ["", f'<a id="{name}"></a>', "", f"## {_code(name)}"]
        for key in items:
            lines += ["", f'<a id="{key.key}"></a>', "", f"### {_code(key.key)}", "",
                      f"Default: {_code(key.default)}"]  # fmt: skip
            if key.description:
                lines += ["", markdown_text(key.description)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in ([], ["--write"], ["--check"]):
        text = render()
        if not argv:
            sys.stdout.write(text)
        elif argv == ["--write"]:
            write_text_atomic(PAGE, text)
            print(f"wrote {PAGE}")
        elif not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    print("usage: python -m pipelines.config.reference [--write | --check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
