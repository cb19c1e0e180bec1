"""The command line's little languages: `--lr-schedule SPEC` and `--space SPEC`.

--lr-schedule: constant, step:STEP_SIZE[:GAMMA], cosine[:MIN_FRACTION],
warmup-cosine[:WARMUP_FRACTION[:MIN_FRACTION]], one-cycle[:PCT_START[:DIV_FACTOR[:FINAL_DIV_FACTOR]]]
(the schedules themselves, and `make_schedule` that reads these strings, are scratch_ae.schedules).

--space (repeatable): `name=low:high` (uniform), `name=low:high:log` (log-uniform), `name=a,b,c`
(a list to pick from), `name=v` (fixed), or a JSON object, inline or in a file, whose values are
such strings, lists, numbers or {"low": .., "high": .., "log": true}.  The result is the dict
`scratch_ae.search.search` takes: name -> {"low", "high", "log"} or {"values": [...]}.
"""
import argparse
import json
import math

from ..schedules import ScheduleSpecError, make_schedule
from ..search import DEFAULT_SPACE, INTEGER_NAMES, SPACE_NAMES


def parse_lr_schedule(text):
    """argparse `type=` for --lr-schedule: the canonical spec string (JSON-able, for the saved config).

    Raises argparse.ArgumentTypeError, so argparse prints "argument --lr-schedule: <what is wrong>".
    """
    try:
        return make_schedule(text).spec()
    except ScheduleSpecError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


class SearchSpaceError(ValueError):
    """A --space entry that cannot be parsed or names an unknown hyperparameter."""


def _number(text, name, integer):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SearchSpaceError(f"argument --space: {name}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise SearchSpaceError(f"argument --space: {name}: expected a finite number, got {text!r}")
    if integer:
        if value != int(value) or value < 1:
            raise SearchSpaceError(f"argument --space: {name}: expected positive integers, got {text!r}")
        return int(value)
    return value


def _check_bounds(name, spec):
    """Refuse values no model accepts, here, before any data is loaded."""
    values = spec["values"] if "values" in spec else [spec["low"], spec["high"]]
    for v in values:
        if name == "dropout" and not 0 <= v < 1:
            raise SearchSpaceError(f"argument --space: dropout (the drop probability) must lie in [0, 1), got {v!r}")
        if name == "lr" and not v > 0:
            raise SearchSpaceError(f"argument --space: lr must be > 0, got {v!r}")
        if name in ("weight_decay", "l1") and not v >= 0:
            raise SearchSpaceError(f"argument --space: {name} must be >= 0, got {v!r}")
    if "values" not in spec:
        if not spec["low"] < spec["high"]:
            raise SearchSpaceError(f"argument --space: {name}: low must be below high, got {spec['low']!r}:{spec['high']!r}")
        if spec["log"] and not spec["low"] > 0:
            raise SearchSpaceError(f"argument --space: {name}: a log-uniform range needs low > 0, got {spec['low']!r}")
        if name in INTEGER_NAMES:
            raise SearchSpaceError(f"argument --space: {name} takes a list of integers (e.g. {name}=4,8), not a range")
    return spec


def parse_range(name, value):
    """One space entry -> {"low", "high", "log"} or {"values": [...]}; `value` as in the module docstring."""
    if name not in SPACE_NAMES:
        raise SearchSpaceError(f"argument --space: unknown hyperparameter {name!r}; expected one of: "
                               + ", ".join(SPACE_NAMES))
    integer = name in INTEGER_NAMES
    if isinstance(value, dict):
        if "values" in value:
            return parse_range(name, list(value["values"]))
        if set(value) - {"low", "high", "log"} or not {"low", "high"} <= set(value):
            raise SearchSpaceError(f"argument --space: {name}: a range is {{\"low\": .., \"high\": .., \"log\": "
                                   f"true/false}}, got {json.dumps(value)}")
        spec = {"low": _number(value["low"], name, False), "high": _number(value["high"], name, False),
                "log": bool(value.get("log", False))}
    elif isinstance(value, (list, tuple)):
        if not value:
            raise SearchSpaceError(f"argument --space: {name}: the list of values is empty")
        spec = {"values": [_number(v, name, integer) for v in value]}
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        spec = {"values": [_number(value, name, integer)]}
    elif isinstance(value, str):
        text = value.strip()
        if ":" in text:
            parts = text.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "uniform")):
                raise SearchSpaceError(f"argument --space: {name}: expected low:high or low:high:log, got {value!r}")
            spec = {"low": _number(parts[0], name, False), "high": _number(parts[1], name, False),
                    "log": len(parts) == 3 and parts[2] == "log"}
        else:
            spec = {"values": [_number(v, name, integer) for v in text.split(",")]}
    else:
        raise SearchSpaceError(f"argument --space: {name}: cannot read {value!r}")
    return _check_bounds(name, spec)


def _entry_items(entry):
    """(name, value) pairs of one --space entry: a dict, name=spec text, or a JSON object or file."""
    if isinstance(entry, dict):
        return entry.items()
    text = str(entry).strip()
    if text.startswith("{") or text.endswith(".json"):
        try:
            if text.startswith("{"):
                obj = json.loads(text)
            else:
                with open(text) as f:
                    obj = json.load(f)
        except FileNotFoundError:
            raise SearchSpaceError(f"argument --space: no such file: {text}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise SearchSpaceError(f"argument --space: cannot read {text!r} as JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise SearchSpaceError(f"argument --space: the JSON must be an object of name: range, got {text!r}")
        return obj.items()
    if "=" in text:
        name, _, spec = text.partition("=")
        return [(name.strip(), spec)]
    raise SearchSpaceError(f"argument --space: expected name=low:high[:log], name=a,b,c or a JSON "
                           f"object or file, got {text!r}")


def parse_space(entries=(), base=None):
    """--space entries over `base` (default: search.DEFAULT_SPACE): a dict name -> spec.  Later entries win."""
    space = {name: dict(spec) for name, spec in (DEFAULT_SPACE if base is None else base).items()}
    for entry in entries or ():
        for name, value in _entry_items(entry):
            space[name] = parse_range(name, value)
    return space
