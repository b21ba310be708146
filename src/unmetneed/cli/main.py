"""Entry point of the ``unmetneed`` command (also ``python -m unmetneed``).

Commands: ``demo`` (the main job on the embedded synthetic England), ``run
CONFIG.toml`` (the same on your files), ``validate CONFIG.toml``.
Exit codes: 0 success, 2 invalid config or input (an
:class:`~unmetneed.errors.UnmetneedError`), 1 unexpected failure (full
traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from unmetneed.errors import UnmetneedError

__all__ = ["main"]

DEFAULT_OUT = "unmetneed-output"


def _add_output_options(parser: argparse.ArgumentParser, *, default_out: str | None) -> None:
    parser.add_argument("--out", default=default_out, help=f"output folder (default ./{DEFAULT_OUT}/)")
    parser.add_argument(
        "--format",
        choices=["csv", "parquet"],
        default=None,
        help="also write Parquet tables (CSV is always written)",
    )
    parser.add_argument(
        "--save-draws",
        action="store_true",
        help="also write the unprotected draws (netCDF) to internal/, not for publication",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unmetneed",
        description="Unmet need for adult social care and self-funders in England.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on failure")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="run the main job on the embedded synthetic England")
    _add_output_options(demo, default_out=DEFAULT_OUT)
    demo.add_argument("--draws", type=int, default=None, help="draws per model (default 200; at least 100)")
    run = commands.add_parser("run", help="run the pipeline from a TOML config file")
    run.add_argument("config", help="path to the config file (see examples/config.toml)")
    _add_output_options(run, default_out=None)
    validate = commands.add_parser("validate", help="validate a config file and its inputs, do nothing else")
    validate.add_argument("config", help="path to the config file")
    return parser


def _summary(written: dict[str, Path]) -> str:
    folder = Path(written["provenance.json"]).parent
    lines = [f"wrote {len(written)} files to {folder}:"]
    lines += [f"  {name}" for name in sorted(written)]
    # The same published England figures as estimates_england.csv and report.html.
    lines.append(Path(written["summary.txt"]).read_text(encoding="utf-8").rstrip("\n"))
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    from unmetneed.cli.pipeline import DEMO_SETTINGS, demo_inputs, run_pipeline

    settings = replace(
        DEMO_SETTINGS,
        draws=DEMO_SETTINGS.draws if args.draws is None else args.draws,
        output_format=args.format or "csv",
        save_draws=args.save_draws,
    )
    written = run_pipeline(
        demo_inputs(), settings, Path(args.out), progress=not args.quiet, config={"command": "demo"}
    )
    print(_summary(written))
    return 0


def _run(args: argparse.Namespace) -> int:
    from unmetneed.cli.config import load_config
    from unmetneed.cli.pipeline import inputs_from_config, run_pipeline, settings_from_config

    config = load_config(args.config, out=args.out)
    inputs = inputs_from_config(config)
    settings = settings_from_config(config, output_format=args.format, save_draws=args.save_draws)
    written = run_pipeline(inputs, settings, config.output_dir, progress=not args.quiet, config=config.raw)
    print(_summary(written))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from unmetneed.cli.config import load_config
    from unmetneed.cli.pipeline import inputs_from_config, preflight, settings_from_config

    config = load_config(args.config)
    inputs = inputs_from_config(config)
    # Every check run makes before fitting any model: passing here means run gets past them.
    preflight(inputs, settings_from_config(config))
    print(
        f"{args.config}: valid ({len(config.surveys)} surveys, by {', '.join(config.settings.by)}; inputs "
        "loaded and checked)"
    )
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
            from unmetneed._provenance import package_version

            print(f"unmetneed {package_version()}")
            return 0
        handlers = {"demo": _demo, "run": _run, "validate": _validate}
        if args.command in handlers:
            return handlers[args.command](args)
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
