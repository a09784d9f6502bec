"""docs/cli.md, the command reference, matches the ``jaxlstm`` parser: it is what ``make cli-docs`` writes, it names
every subcommand and option (checked by walking the parser, apart from the renderer), and its renderer imports no
JAX."""

import argparse
import ast
import inspect
import sys
from pathlib import Path

from jaxlstm.commands import build_parser, reference
from jaxlstm.commands.reference import cli_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
ALLOWED = {"jaxlstm.commands", "jaxlstm.config", "jaxlstm.errors"}
"""The jaxlstm modules the renderer may import: those the parser itself is built from, which import no JAX."""


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return dict(action.choices)


def test_docs_cli_md_is_what_make_cli_docs_writes() -> None:
    assert DOC.read_text() == cli_reference(), "docs/cli.md is stale: run make cli-docs"


def test_every_subcommand_and_option_is_in_docs_cli_md() -> None:
    text = DOC.read_text()
    parser = build_parser()
    commands = subcommands(parser)
    for option in (name for action in parser._actions for name in action.option_strings):
        assert option in ("-h", "--help") or f"`{option}`" in text, f"jaxlstm {option} is missing from docs/cli.md"
    sections = {section.split("\n", 1)[0]: section for section in text.split("\n## jaxlstm ")[1:]}
    assert list(sections) == list(commands), "docs/cli.md is stale: run make cli-docs"
    for name, sub in commands.items():
        for action in sub._actions:
            names = action.option_strings or [action.dest]
            missing = [item for item in names if item not in ("-h", "--help") and f"`{item}`" not in sections[name]]
            assert not missing, f"jaxlstm {name} {missing} missing from docs/cli.md: run make cli-docs"


def test_the_renderer_imports_only_the_parsers_modules() -> None:
    """JAX is already imported in the test process, so the check reads the source: besides the standard library,
    the renderer imports only the modules the parser is built from (import-linter's contract keeps those, and every
    jaxlstm.commands module, free of JAX)."""
    tree = ast.parse(inspect.getsource(reference))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    outside = sorted(
        name for name in imported if name not in ALLOWED and name.split(".")[0] not in sys.stdlib_module_names
    )
    assert not outside, f"jaxlstm.commands.reference imports {outside}; it must stay JAX-free"
