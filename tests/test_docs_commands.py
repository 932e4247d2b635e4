"""The docs tell the truth about the command line.

For every command registered in ``toyanalysis_cli.main.main``, docs/commands.md
lists it in its table, and every option flag (``--...``) of the command is
mentioned in what documents it: the general sections of docs/commands.md
(exit codes, result files), the command's own section there (``## train``),
and the page its table row links (``classify.md``, ``phases.md``, ...); the
classifier's thresholds (options made from ``ClassifyParams``) may be
documented once, in classify.md, for every command that takes them. And
no usage line in the docs shows a flag the command does not have.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from toyanalysis_cli.main import main

DOCS = Path(__file__).parents[1] / "docs"
COMMANDS_MD = DOCS / "commands.md"

# Pages whose code is being rebuilt elsewhere: a flag missing there is a known
# gap (reported), not a failure of this suite. Fixed pages simply pass.
PENDING_PAGES = {"phases.md", "classify.md"}


def _sections(text: str) -> dict[str, str]:
    """The ``## `` sections of a page by heading (the text before the first under "")."""
    parts = re.split(r"^## +(.+)$", text, flags=re.M)
    sections = {"": parts[0]}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[heading.strip()] = body
    return sections


def _table_links(text: str) -> dict[str, str | None]:
    """Command name -> the page its row of the commands table links (None: "below")."""
    rows: dict[str, str | None] = {}
    for name, rest in re.findall(r"^\| `toyanalysis ([a-z-]+)` \|(.*)$", text, flags=re.M):
        link = re.search(r"\]\(([\w-]+\.md)(?:#[\w-]*)?\)", rest)
        rows[name] = link.group(1) if link else None
    return rows


def _flags(command: click.Command) -> set[str]:
    return {
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    }


def _mentions(text: str, flag: str) -> bool:
    """``--step`` is mentioned by ``--step N`` but not by ``--steps``."""
    return re.search(re.escape(flag) + r"(?![\w-])", text) is not None


def _documentation(name: str) -> tuple[str, str | None]:
    """The text documenting command ``name`` and the page its table row links."""
    text = COMMANDS_MD.read_text(encoding="utf-8")
    sections = _sections(text)
    names = set(main.commands)
    general = "".join(body for heading, body in sections.items() if heading not in names)
    page = _table_links(text).get(name)
    linked = (DOCS / page).read_text(encoding="utf-8") if page else ""
    return general + sections.get(name, "") + linked, page


COMMAND_NAMES = sorted(main.commands)


def test_every_command_is_in_the_table() -> None:
    rows = _table_links(COMMANDS_MD.read_text(encoding="utf-8"))
    assert sorted(rows) == COMMAND_NAMES
    for name, page in rows.items():
        assert page is None or (DOCS / page).is_file(), (name, page)
        if page is None:  # "below": commands.md has a section of its own
            assert name in _sections(COMMANDS_MD.read_text(encoding="utf-8")), name


def _classifier_flags() -> set[str]:
    """The flags made from ClassifyParams: classify.md documents them for every command."""
    from toyanalysis.params import ClassifyParams

    return {"--" + path[-1].replace("_", "-") for path, _, _ in ClassifyParams.options()}


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_option_is_documented(name: str) -> None:
    text, page = _documentation(name)
    missing = sorted(f for f in _flags(main.commands[name]) if not _mentions(text, f))
    classify_md = (DOCS / "classify.md").read_text(encoding="utf-8")
    thresholds = _classifier_flags()
    pending = [
        f"docs/classify.md (being edited) does not mention {f}"
        for f in missing
        if f in thresholds and not _mentions(classify_md, f)
    ]
    missing = [f for f in missing if f not in thresholds]
    if missing and page in PENDING_PAGES:
        pending.append(f"docs/{page} (being edited) does not mention {', '.join(missing)}")
        missing = []
    where = f"docs/commands.md or docs/{page}" if page else "docs/commands.md"
    assert not missing, f"`toyanalysis {name}`: {where} does not mention {', '.join(missing)}"
    if pending:
        pytest.xfail("; ".join(pending))


def _usage_lines() -> list[tuple[str, int, str, str]]:
    """(page, line number, command, text) of every ``toyanalysis CMD ...`` in the docs.

    Lines of fenced code blocks (with their indented continuation lines) and
    inline code spans that start with the command.
    """
    found = []
    for page in sorted(DOCS.glob("*.md")):
        in_code = False
        current: str | None = None
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                in_code, current = not in_code, None
                continue
            if in_code:
                match = re.search(r"toyanalysis ([a-z-]+)", line)
                if match and match.group(1) in main.commands:
                    current = match.group(1)
                elif not line.startswith(" "):
                    current = None
                if current:
                    found.append((page.name, number, current, line))
                continue
            for span in re.findall(r"`([^`]*)`", line):
                match = re.match(r"toyanalysis ([a-z-]+)", span)
                if match and match.group(1) in main.commands:
                    found.append((page.name, number, match.group(1), span))
    return found


def test_usage_lines_show_only_real_flags() -> None:
    wrong = []
    for page, number, name, line in _usage_lines():
        known = _flags(main.commands[name]) | {"--help"}
        for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", line):
            if flag not in known:
                wrong.append(f"docs/{page}:{number}: toyanalysis {name} has no {flag}")
    assert not wrong, "\n".join(wrong)


def test_usage_lines_were_found() -> None:
    """The scan above sees the docs' usage lines (a guard against a parser that finds none)."""
    names = {name for _, _, name, _ in _usage_lines()}
    assert names >= {"train", "info", "ingest", "classify", "phases", "neurons", "llc", "report"}


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_no_flag_is_given_twice(name: str) -> None:
    """Two fields flattened to one flag (``PhaseParams.fraction_tol`` and a classifier
    ``fraction_tol`` both ``--fraction-tol``): click keeps one, the other is unreachable."""
    seen: dict[str, str] = {}
    twice = []
    for param in main.commands[name].params:
        for opt in getattr(param, "opts", []):
            if opt in seen:
                twice.append(f"{opt} ({seen[opt]} and {param.name})")
            seen[opt] = str(param.name)
    assert not twice, f"`toyanalysis {name}` has the same flag twice: {', '.join(twice)}"
