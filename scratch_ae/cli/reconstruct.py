"""`scratch-ae reconstruct MODEL.npz`: a grid of test images and a random-noise image, with their reconstructions."""
import os

from .common import EXIT_INTERRUPTED, fail, interrupts, say, user_errors
from .evaluate import add_model_arguments, load_model_and_test, output_folder
from .validators import positive_int

HELP = "write a grid of test images, a random-noise image and their reconstructions"


def add_parser(sub, command):
    r = command("reconstruct", HELP)
    add_model_arguments(r, "where reconstruct.png goes (default: the model's folder)")
    r.add_argument("--n", type=positive_int, default=10, help="how many test images")
    return r


def run(args):
    import numpy as np

    from ..plots import per_image_squared_error, plot_image_rows
    partial = None
    try:
        out = output_folder(args)
        model, test = load_model_and_test(args)
        originals = test.images[:args.n]
        say(f"reconstructing {args.model_path} ({model.family}): {originals.shape[0]} {args.dataset} test images and "
            f"a random-noise image")
        noise = np.random.default_rng(args.seed).uniform(0, 1, (1, model.input_size)).astype(np.float32)
        inputs = np.concatenate([originals, noise])
        recon = model.inverse_transform(model.transform(inputs))
        path, partial = os.path.join(out, "reconstruct.png"), os.path.join(out, ".reconstruct.partial.png")
        plot_image_rows([inputs, recon], ["test images + a random-noise image",
                                          "reconstructions (squared error per image below)"],
                        test.image_shape, partial, errors=[None, per_image_squared_error(recon, inputs)])
        os.replace(partial, path)  # a whole picture or none
    except interrupts():
        if partial and os.path.exists(partial):
            os.remove(partial)
        say("reconstruct interrupted before reconstruct.png was written; run it again")
        return EXIT_INTERRUPTED
    except user_errors() as exc:
        return fail(exc)
    print(f"wrote {path}")
    return 0
