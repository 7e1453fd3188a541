"""Command line: ``python -m equinb run <chapter> [-p NAME VALUE]... [--out PATH] [--profile NAME]``,
``python -m equinb list``, ``python -m equinb sweep table1 [--profile NAME] [--seeds K] [--only ROW...] [--out CSV]``,
``python -m equinb usage --results CSV [--out CSV] [--only ROW...] [--n-test N]``.
"""

from __future__ import annotations

import argparse
import sys

from . import sweep
from .analysis import collect
from .profiles import PROFILES
from .runner import ChapterFailed, RunnerError, find_book_root, read_parameters, run_chapter, toc_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m equinb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute one chapter through papermill")
    run.add_argument("chapter", help="chapter path (book/intro.md) or name (intro)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a parameter of the chapter (repeatable)")
    run.add_argument("--profile", help=f"named parameter set: {', '.join(PROFILES)}")
    run.add_argument("--out", help="executed notebook path (default _build/executed/<chapter>.ipynb)")
    run.add_argument("--log-output", action="store_true", help="stream the cells' output")
    commands.add_parser("list", help="list the chapters and their parameters")
    sweep.add_parser(commands)
    collect.add_parser(commands)
    return parser


def _list() -> None:
    for path in toc_files(find_book_root()):
        defaults = read_parameters(path)
        print(path.stem)
        for name, value in defaults.items():
            print(f"    {name} = {value!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for a bad request, 1 for a failing chapter)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            _list()
            return 0
        if args.command == "sweep":
            print(sweep.command(args))
            return 0
        if args.command == "usage":
            print(collect.command(args))
            return 0
        names = [name for name, _ in args.parameter]
        if len(set(names)) != len(names):
            raise RunnerError(f"a parameter is given twice: {names}")
        out = run_chapter(args.chapter, dict(args.parameter), args.profile, args.out, log_output=args.log_output)
    except (RunnerError, collect.UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ChapterFailed, sweep.SweepFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
