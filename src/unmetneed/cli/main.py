"""Entry point of the ``unmetneed`` command (also ``python -m unmetneed``).

Exit codes: 0 success, 2 invalid input (an :class:`~unmetneed.errors.UnmetneedError`),
1 unexpected failure (traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from unmetneed.errors import UnmetneedError

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unmetneed",
        description="Unmet need for adult social care and self-funders in England.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on failure")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run the main job on the embedded example data and print the results"
    )
    demo.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    return parser


def _demo(args: argparse.Namespace) -> int:
    from unmetneed.cli.demo import run_demo

    print(run_demo(level=args.level))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Examples
    --------
    >>> from unmetneed.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    unmetneed ...
    0
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.version:
            from unmetneed import __version__

            print(f"unmetneed {__version__}")
            return 0
        if args.command == "demo":
            return _demo(args)
        parser.print_help()
        return 2
    except UnmetneedError as error:
        print(f"unmetneed: error: {error}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 2
    except Exception as error:  # noqa: BLE001 - the last line of defence of a command
        print(f"unmetneed: unexpected failure: {type(error).__name__}: {error}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        else:
            print("rerun with --debug for the full traceback", file=sys.stderr)
        return 1
