"""`scratch-ae lab NAME`: one of the classic labs (scratch_ae.labs), with Ctrl-C, --resume and diverged rows.

A lab rewrites results.json / results.md after every row it finishes (marked "partial": true)
and keeps each trained model in DIR/checkpoints/ (labs.common.LabRecord).  Ctrl-C ends it with
exit status 130 and one line; `--resume DIR` runs the lab again in DIR, loading the models it
trained instead of training them again, so the finished rows are skipped and the row it was in
is re-run.  A row whose training diverged is marked "diverged" in the table; the lab then exits
with status 3.  When the lab completes, checkpoints/ is removed.  (deep-30, one long training,
also keeps the Trainer's DIR/resume.npz, so its --resume continues mid-training.)
"""
import os
import shutil

from .common import EXIT_DIVERGED, EXIT_INTERRUPTED, add_common, fail, interrupts, refuse_changes, say, user_errors
from .validators import positive_int

HELP = "run a classic autoencoder lab"
RESUME_MAY_CHANGE = ("no_progress", "backend", "engine", "data_dir")


def add_parser(sub, command):
    from ..labs import LABS
    lab = command("lab", HELP)
    lab.add_argument("name", choices=list(LABS), help="which lab")
    # Each lab knows its own images (colored-denoise runs on colored-mnist), so --dataset has no
    # global default here: left out, the lab's own `run(dataset=...)` default applies.
    add_common(lab, "output folder (default: a fresh runs/lab-NAME, or runs/lab-NAME-quick with --quick; then -2, "
                    "-3, ...)", dataset_default=None,
               dataset_help="which images (default: the lab's own; mnist except colored-denoise: colored-mnist)")
    lab.add_argument("--quick", action="store_true", help="small subset and few epochs")
    lab.add_argument("--epochs", type=positive_int, default=None, help="override the lab's number of epochs")
    lab.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    lab.add_argument("--config", metavar="SEARCH.json", default=None,
                     help="encoded-space: use this search's best configuration")
    lab.add_argument("--overwrite", action="store_true", help="allow --out to replace a finished lab")
    lab.add_argument("--resume", metavar="DIR", default=None,
                     help="continue the interrupted lab in DIR (give the same NAME and options)")
    return lab


IDENTITY = ("name", "quick", "epochs", "seed", "dataset", "config")  # what names a lab run (checkpoints/lab.json)


def _saved_options(args):
    """On --resume: apply the interrupted run's options (checkpoints/lab.json); contradictions refused."""
    import json
    path = os.path.join(args.resume, "checkpoints", "lab.json")
    try:
        with open(path) as f:
            saved = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"argument --resume: {args.resume} holds no interrupted lab ({path} does not exist)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"argument --resume: {path} is not readable ({type(exc).__name__})") from None
    if saved.get("name") != args.name:
        raise ValueError(f"argument --resume: {args.resume} holds lab {saved.get('name')}, not {args.name}")
    refuse_changes(args, RESUME_MAY_CHANGE, "lab")
    for name in IDENTITY:
        setattr(args, name, saved.get(name))


def _save_options(args, out):
    import json
    folder = os.path.join(out, "checkpoints")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "lab.json"), "w") as f:
        json.dump({name: getattr(args, name) for name in IDENTITY}, f)


def run(args):
    from ..labs import run_lab
    from ..outputs import OutputError, claim_folder, claim_fresh_folder
    claim, out, started = None, None, False
    try:
        if args.resume:
            _saved_options(args)
            claim = claim_folder(args.resume, "--resume")
        elif args.out:
            claim = claim_folder(args.out)
            kept = [name for name in ("results.json", "checkpoints", "resume.npz")
                    if os.path.exists(os.path.join(args.out, name))]
            if kept and not args.overwrite:
                raise OutputError(f"argument --out: {args.out} already holds a lab ({kept[0]}); continue an "
                                  f"interrupted one with --resume {args.out}, pass --overwrite to replace it, "
                                  f"or choose another --out")
            _forget_interrupted(args.out)  # a fresh run never continues another run's trainings
        else:
            claim = claim_fresh_folder(os.path.join("runs", "lab-" + args.name + ("-quick" if args.quick else "")))
        out = claim.path
        if args.config and args.name != "encoded-space":
            raise ValueError("argument --config: only lab encoded-space takes a search configuration")
        if not args.resume:
            _save_options(args, out)
            started = True
        results = run_lab(args.name, out, quick=args.quick, backend=args.backend, seed=args.seed,
                          progress=not args.no_progress, engine=args.engine,
                          **({"dataset": args.dataset} if args.dataset else {}),
                          **({"epochs": args.epochs} if args.epochs else {}),
                          **({"config": args.config} if args.config else {}))
    except interrupts():
        if out is None:
            say(f"lab {args.name} interrupted before it started; nothing written")
            return EXIT_INTERRUPTED
        kept = _kept_rows(out)
        say(f"lab {args.name} interrupted; kept {kept} finished row{'s' if kept != 1 else ''} in {out}/results.json "
            f"and results.md (marked partial) and the trained models in {out}/checkpoints/; continue with: "
            f"scratch-ae lab {args.name} --resume {out}")
        return EXIT_INTERRUPTED
    except user_errors() as exc:
        if started:  # this run's own options file and models go (a lab's bad input shows before any training)
            _forget_interrupted(claim.path)
            claim.release(discard=True)
        elif claim is not None and not args.resume:
            claim.release(discard=True)
        return fail(exc)
    finally:
        if claim is not None:
            claim.release()
    _forget_interrupted(out)
    rows = results.get("rows", [])
    diverged = [row for row in rows if row.get("diverged")]
    wrote = f"wrote {out}/results.json, results.md and figures/ ({len(rows)} rows)"
    if diverged:
        say(f"lab {args.name}: {len(diverged)} of {len(rows)} rows diverged (marked in results.md); {wrote}")
        return EXIT_DIVERGED
    print(f"lab {args.name}: {wrote}")
    return 0


def _forget_interrupted(out):
    """Remove what an interrupted lab keeps to resume: its models (checkpoints/) and deep-30's resume.npz."""
    shutil.rmtree(os.path.join(out, "checkpoints"), ignore_errors=True)
    if os.path.exists(os.path.join(out, "resume.npz")):
        os.remove(os.path.join(out, "resume.npz"))


def _kept_rows(out):
    import json
    try:
        with open(os.path.join(out, "results.json")) as f:
            return len(json.load(f).get("rows", []))
    except (OSError, ValueError):
        return 0

