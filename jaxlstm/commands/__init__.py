"""The ``jaxlstm`` command: one thin module per subcommand (parse, build a :class:`~jaxlstm.config.RunConfig`, call
the library, write). Commands import the library; the library never imports a command.

Start-up is cheap: building the parser and checking the arguments import only :mod:`jaxlstm.config` and
:mod:`argparse`; each command imports the library modules it uses when it runs, after its arguments are checked, so
``jaxlstm --help`` and a bad argument answer without importing JAX.

Every user error (bad file, bad argument, existing output) prints one line and exits with status 2; the catalogue
of them is docs/errors.md. An interrupted ``train`` (Ctrl-C) exits with 130 and can be finished with ``--resume``.
"""

import argparse
import sys
import warnings
from collections.abc import Sequence

from jaxlstm import __version__
from jaxlstm.commands import backtest, convert, fetch, forecast, gates, gradflow, lab, predict, train
from jaxlstm.errors import JaxlstmError

__all__ = ["build_parser", "main"]

COMMANDS = (train, predict, backtest, forecast, gates, gradflow, lab, convert, fetch)
"""The subcommands, in the order ``jaxlstm --help`` lists them; each has ``add_parser`` and ``run``."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jaxlstm`` command; each subcommand sets ``args.handler``."""
    parser = argparse.ArgumentParser(
        prog="jaxlstm",
        description="Forecast next-day stock prices with a hand-written JAX LSTM (the classic Keras tutorial, jitted).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subcommands)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, like the errors (no source line)."""
    print(f"jaxlstm: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, with a one-line message; 130 on Ctrl-C)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args.handler(args)
        except JaxlstmError as error:
            print(f"jaxlstm: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as interrupt:
            if interrupt.args:  # how to finish the interrupted run (jaxlstm.runs.lifecycle)
                print(f"jaxlstm: interrupted; {interrupt}", file=sys.stderr)
            return 130
    return 0
