"""The `scratch-ae` command line: train, evaluate, reconstruct, search, lab, info.

One module per command (add_parser + run), the argument types written once (validators), the
--lr-schedule and --space languages (specs), and what the commands share (common).  The library
never imports this package.

Exit status, every command: 0 done; 2 bad input (one line on stderr naming the argument and what
was expected; nothing trained and nothing written); 3 diverged (train: the run; search: every
trial; lab: a row; what was kept is said in the line); 130 interrupted by Ctrl-C (one line saying
what was kept and how to continue: `train --resume DIR`, `search --resume DIR`,
`lab NAME --resume DIR`; evaluate and reconstruct write nothing and are simply run again).
"""
import sys

from . import evaluate, info, lab, reconstruct, search, train
from .common import EXIT_INTERRUPTED, EXIT_USAGE, HelpFormatter, OneLineParser, UsageError, say
from .train import given_options

COMMANDS = {"train": train, "evaluate": evaluate, "reconstruct": reconstruct, "search": search, "lab": lab,
            "info": info}


def build_parser():
    parser = OneLineParser(prog="scratch-ae", description="Autoencoders from scratch in NumPy/CuPy.",
                           formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    def command(name, help):
        return sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)

    for module in COMMANDS.values():
        module.add_parser(sub, command)
    parser.subcommands = sub.choices
    return parser


def _version():
    from .. import __version__
    return __version__


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one clean line that does not tear a progress bar (no source line glued on)."""
    from tqdm import tqdm
    tqdm.write(f"scratch-ae: warning: {message}", file=sys.stderr)


def main(argv=None):
    import warnings
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 0
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("give a command: " + ", ".join(COMMANDS) + " (scratch-ae --help)")
        args.argv = argv[argv.index(args.command) + 1:]  # the command's own options, as typed
        args.given = given_options(parser.subcommands[args.command], args.argv)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return COMMANDS[args.command].run(args)
    except UsageError as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("interrupted before any work started; nothing written")
        return EXIT_INTERRUPTED


__all__ = ["main", "build_parser", "COMMANDS", "OneLineParser", "UsageError"]
