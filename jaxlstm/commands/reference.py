"""The command reference, docs/cli.md, rendered as Markdown from the ``jaxlstm`` argument parser itself.

:func:`cli_reference` walks the parser that :func:`jaxlstm.commands.build_parser` returns (the one ``jaxlstm``
runs): per subcommand, in the order ``jaxlstm --help`` lists them, its description, its usage line and one table
per argument group (option, value, help). ``make cli-docs`` writes the file (``python -m jaxlstm.commands.reference
> docs/cli.md``) and tests/test_cli_reference.py fails when it no longer matches the parser. Like the parser, this
module imports no JAX.
"""

import argparse

from jaxlstm.commands import build_parser

__all__ = ["USAGE_WIDTH", "cli_reference"]

USAGE_WIDTH = 100
"""Columns the usage lines are wrapped to (fixed, so that the file does not depend on the terminal)."""

_INTRO = (
    "Every subcommand of `jaxlstm`, with every option, as `jaxlstm COMMAND --help` prints them. This file is "
    "generated from the command's argument parser (`make cli-docs`, or "
    "`python -m jaxlstm.commands.reference > docs/cli.md`) and a test checks that it matches the parser, so do not "
    "edit it by hand: change the option's help in `jaxlstm/commands/` (or the field's in `jaxlstm/config.py`) and "
    "regenerate it. An option with no value is a switch."
)


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return parser.formatter_class(prog=parser.prog, width=USAGE_WIDTH)


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line, as ``--help`` prints it, wrapped to :data:`USAGE_WIDTH` columns."""
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, ``|`` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _shown(action: argparse.Action) -> bool:
    """Whether ``--help`` lists the action (not ``-h/--help``, a hidden option or the subcommands)."""
    return not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and (
        action.help is not argparse.SUPPRESS
    )


def _value(formatter: argparse.HelpFormatter, action: argparse.Action) -> str:
    """What the option takes: its choices, its metavar (as in the usage line), or nothing for a switch."""
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return "one of " + ", ".join(f"`{choice}`" for choice in action.choices)
    return f"`{formatter._format_args(action, formatter._get_default_metavar_for_optional(action))}`"


def _group(parser: argparse.ArgumentParser, group: argparse._ArgumentGroup) -> list[str]:
    """A ``###`` heading and a table for the argument group; nothing when it lists no argument."""
    actions = [action for action in group._group_actions if _shown(action)]
    if not actions:
        return []
    formatter = _formatter(parser)
    title = group.title or "arguments"
    lines = [f"### {title[0].upper()}{title[1:]}", ""]
    if group.description:
        lines += [" ".join(group.description.split()), ""]
    if all(not action.option_strings for action in actions):
        lines += ["| Argument | Help |", "| --- | --- |"]
        for action in actions:
            help_text = formatter._expand_help(action) if action.help else ""
            if action.choices is not None:
                help_text += ": one of " + ", ".join(f"`{choice}`" for choice in action.choices)
            lines.append(f"| `{_cell(action.dest)}` | {_cell(help_text)} |")
    else:
        lines += ["| Option | Value | Help |", "| --- | --- | --- |"]
        for action in actions:
            names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
            help_text = formatter._expand_help(action) if action.help else ""
            if action.required:
                help_text = f"**Required.** {help_text}"
            lines.append(f"| {_cell(names)} | {_cell(_value(formatter, action))} | {_cell(help_text)} |")
    return [*lines, ""]


def _command(parser: argparse.ArgumentParser, summary: str | None) -> list[str]:
    """The section of one command: description, usage, the options that exclude each other, one table per
    argument group."""
    lines = []
    for text in (parser.description or summary, parser.epilog):
        if text:
            lines += [" ".join(text.split()), ""]
    lines += ["```text", _usage(parser), "```", ""]
    for group in parser._mutually_exclusive_groups:
        names = [f"`{(action.option_strings or [action.dest])[0]}`" for action in group._group_actions]
        if not names:
            continue
        either = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        lines += [f"Give {'exactly' if group.required else 'at most'} one of {either}.", ""]
    for group in parser._action_groups:
        lines += _group(parser, group)
    return lines


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str | None]]:
    """(name, parser, one-line help) of each subcommand, in the order they were registered."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            found += [(name, sub, summaries.get(name)) for name, sub in action.choices.items()]
    return found


def cli_reference() -> str:
    """docs/cli.md: the ``jaxlstm`` command and each subcommand, with every option, rendered from the parser."""
    parser = build_parser()
    commands = _subcommands(parser)
    lines = [f"# Command reference: `{parser.prog}`", "", _INTRO, ""]
    if parser.description:
        lines += [" ".join(parser.description.split()), ""]
    lines += ["```text", _usage(parser), "```", "", "| Command | What it does |", "| --- | --- |"]
    for name, _, summary in commands:
        anchor = f"{parser.prog}-{name}".lower()
        lines.append(f"| [`{parser.prog} {name}`](#{anchor}) | {_cell(summary or '')} |")
    lines.append("")
    for group in parser._action_groups:
        lines += _group(parser, group)
    for name, sub, summary in commands:
        lines += [f"## {parser.prog} {name}", "", *_command(sub, summary)]
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(cli_reference(), end="")
