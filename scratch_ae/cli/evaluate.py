"""`scratch-ae evaluate MODEL.npz`: test metrics of a saved model, in its family's units.

Dense and conv models: squared error per image and MSE per pixel on the test set, optionally
with corrupted inputs (--noise or --occlusion) against the clean targets.  A VAE adds what
`train --model vae` reports, computed by the same function (train_job.vae_metrics) with the
same seeds: -ELBO, the importance-sampled NLL (--is-samples), KL, reconstruction and active
units, in nats per image on the test set binarised once when the model trained with dynamic
binarisation.  With --noise/--occlusion a VAE's squared errors are of its corrupted inputs, while
its nats stay those of the clean test set (the likelihood of a corrupted image is not a
denoising score); evaluation.json says so in "nats_on".
"""
import json
import os
import sys

from .common import EXIT_INTERRUPTED, add_common, add_engine, fail, interrupts, say, user_errors
from .validators import fraction

HELP = "test metrics of a saved model (a VAE's in nats), optionally under noise or occlusion"


def add_model_arguments(p, out_help):
    """MODEL.npz and the options evaluate and reconstruct share (--engine defaults to the checkpoint's)."""
    p.add_argument("model_path", metavar="MODEL.npz", help="a checkpoint written by train")
    add_common(p, out_help, engine=False)
    add_engine(p, default=None, extra=" (default: the one the checkpoint records)")


def add_parser(sub, command):
    from ..train_job import DEFAULTS
    from .train import add_is_samples
    e = command("evaluate", HELP)
    add_model_arguments(e, "where evaluation.json goes (default: the model's folder)")
    e.add_argument("--noise", default=None, help="corrupt the test inputs, e.g. gaussian:0.5")
    e.add_argument("--occlusion", type=fraction, default=None, help="occlude a fraction p of each test input")
    add_is_samples(e, None, f" (VAE checkpoints only; default {DEFAULTS['is_samples']}, as in train)")
    return e


def output_folder(args):
    """--out, or the model's own folder; checked before the model or any data is loaded."""
    from ..outputs import check_writable
    out = args.out or os.path.dirname(os.path.abspath(args.model_path))
    check_writable(out)
    return out


def load_model_and_test(args):
    from ..data import load_dataset
    from ..models import load
    model = load(args.model_path, backend=args.backend, engine=args.engine)
    test = load_dataset(args.dataset, "test", data_dir=args.data_dir)
    if test.images.shape[1] != model.input_size:
        raise ValueError(f"argument --dataset: {args.dataset} images have {test.images.shape[1]} pixels, "
                         f"the model expects {model.input_size}")
    return model, test


def run(args):
    import numpy as np

    from ..data import parse_corruption
    from ..metrics import reconstruction_metrics
    from ..train_job import DEFAULTS, vae_metrics, write_json
    try:
        if args.noise and args.occlusion is not None:
            raise ValueError("argument --occlusion: give either --noise or --occlusion, not both")
        out = output_folder(args)
        model, test = load_model_and_test(args)
        spec = f"occlusion:{args.occlusion}" if args.occlusion is not None else args.noise
        corrupt = parse_corruption(spec, test.image_shape) if spec else None
        if model.family != "vae" and args.is_samples is not None:
            raise ValueError(f"argument --is-samples: only a VAE checkpoint has an importance-sampled NLL; "
                             f"{args.model_path} holds a {model.family} model")
        say(f"evaluating {args.model_path} ({model.family}) on {test.images.shape[0]} {args.dataset} test images")
        result = {"model": args.model_path, "family": model.family, "dataset": args.dataset, "corruption": spec,
                  "engine": {"requested": args.engine, "resolved": model.engine_},
                  "test": reconstruction_metrics(model, test.images, corrupt=corrupt,
                                                 rng=np.random.default_rng(args.seed))}
        if model.family == "vae":
            is_samples = DEFAULTS["is_samples"] if args.is_samples is None else args.is_samples
            result.update(vae_metrics(model, test.images, {"seed": args.seed, "is_samples": is_samples}))
            result["nats_on"] = "the test set" + (", binarised once" if result["test_binarized"] else "") + \
                (f"; not corrupted: --{'occlusion' if args.occlusion is not None else 'noise'} applies to the "
                 f"squared errors only" if spec else "")
    except interrupts():
        say("evaluate interrupted; nothing written (evaluation.json is written only when complete); run it again")
        return EXIT_INTERRUPTED
    except user_errors() as exc:
        return fail(exc)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "evaluation.json")
    write_json(path, result)
    print(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0

