"""What every command shares: the one-line parser, exit statuses, user errors, the common options."""
import argparse
import sys

# Exit statuses, the same for every command (README, "Exit status").
EXIT_OK, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 2, 3, 130


class UsageError(Exception):
    """Bad input from the command line: one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default; options without one (flags, None) say nothing extra."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


def user_errors():
    """Exceptions that mean bad input (reported in one line), not a bug."""
    from ..backend import BackendError
    from ..checkpoint import CheckpointError
    from ..data import DataError
    return (BackendError, CheckpointError, DataError, ValueError, TypeError, FileNotFoundError)


def say(line):
    """One line on stderr, prefixed with the program's name."""
    print(f"scratch-ae: {line}", file=sys.stderr, flush=True)


def fail(exc):
    """Report bad input in one line; returns EXIT_USAGE."""
    text = str(exc)
    say(f"error: {text.splitlines()[0] if text else type(exc).__name__}")
    return EXIT_USAGE


def interrupts():
    """The exceptions Ctrl-C becomes: KeyboardInterrupt, or TrainingInterrupted inside a Trainer's step."""
    from ..training import TrainingInterrupted
    return (KeyboardInterrupt, TrainingInterrupted)


def refuse_changes(args, may_change, what, saved=None):
    """On --resume: a ValueError naming the first option given that the saved `what` fixes.

    saved: the saved values, to quote (dest -> value); the options in `may_change` pass."""
    for dest in sorted(args.given - {"resume", "name", "command"}):
        if dest not in may_change:
            quoted = f" ({dest} = {saved.get(dest, 'not set')})" if saved is not None else ""
            raise ValueError(f"argument --{dest.replace('_', '-')}: --resume continues the saved {what}{quoted}; "
                             "only " + ", ".join("--" + d.replace("_", "-") for d in may_change) + " may change")


def add_common(p, out_help, dataset_default="mnist", dataset_help="which images", engine=True):
    """--dataset, --backend, --engine, --seed, --out, --data-dir."""
    from ..backend import BACKENDS
    from ..data import DATASETS
    p.add_argument("--dataset", choices=DATASETS, default=dataset_default, help=dataset_help)
    p.add_argument("--backend", choices=BACKENDS, default="numpy", help="array backend: CPU or GPU")
    if engine:
        add_engine(p)
    p.add_argument("--seed", type=int, default=0, help="seed for weights, batch order and noise")
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument("--data-dir", default=None, help="where to look for (and download) datasets")


def add_engine(p, default="auto", extra=""):
    from ..fast import ENGINES
    p.add_argument("--engine", choices=ENGINES, default=default,
                   help="the layers that run: reference (the derivations' code), fast (scratch_ae.fast, "
                        "needs Numba on the CPU), auto (fast where it is available)" + extra)

