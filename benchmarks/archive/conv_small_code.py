"""The small-code target: a pooled conv autoencoder whose code has at most 128 values, trained for the
tutorial's 50 epochs with its loss (BCE), scored by test MSE and BCE per pixel (targets 0.005 and 0.094).

    python benchmarks/conv_small_code.py --out /tmp/small-code            # 50 epochs, all of MNIST
    python benchmarks/conv_small_code.py --out /tmp/sc --epochs 1 --limit 2000   # a smoke test

The network is lab conv's small-code row (channels 16-8-8, three conv + ReLU + 2x2 max-pool stages,
28 -> 14 -> 7 -> 3: a code of 8x3x3 = 72 values, stride-2 transposed convolutions back up, sigmoid
output), Adam 1e-3, batch 100, seed 0; `--channels 16,8,14` gives a code of 14x3x3 = 126 values.
`--dense-code K` puts a linear Dense code of K values after the last stage's maps instead
(ConvAutoencoder's dense_code), e.g. `--channels 32,16 --dense-code 128`: two pooled stages
(28 -> 14 -> 7), 16x7x7 maps, a code of 128 values.
Writes small_code.json, model.npz, loss.png, reconstructions.png.
"""
import argparse, json, os, sys, time
import numpy as np
from scratch_ae.data import load_dataset
from scratch_ae.metrics import reconstruction_metrics
from scratch_ae.models.conv import ConvAutoencoder
from scratch_ae.labs.conv import _bce_per_pixel
from scratch_ae.plots import plot_loss_curves, plot_image_rows, per_image_squared_error

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--out", required=True)
p.add_argument("--epochs", type=int, default=50)
p.add_argument("--loss", default="bce", choices=["bce", "mse"])
p.add_argument("--channels", default="16,8,8", help="each pooled stage's channels (three stages: maps of last x 3 x 3; two: last x 7 x 7)")
p.add_argument("--dense-code", type=int, default=None, help="a linear Dense code of this many values after the maps")
p.add_argument("--limit", type=int, default=None, help="train on the first N images only (a smoke test)")
args = p.parse_args()
out = args.out
train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
X = train.images if args.limit is None else train.images[:args.limit]
model = ConvAutoencoder(input_shape=(1, 28, 28), channels=tuple(int(c) for c in args.channels.split(",")), decoder="deconv", dense_code=args.dense_code, loss=args.loss,
                        output_activation="sigmoid", epochs=args.epochs, batch_size=100, lr=1e-3, seed=0,
                        progress=True)
t = time.time()
model.fit(X)
m = reconstruction_metrics(model, test.images)
row = {"channels": "-".join(map(str, model.channels)), "dense_code": args.dense_code, "decoder": "deconv", "loss": args.loss, "code_size": model.code_size, "epochs": args.epochs,
       "train_images": int(X.shape[0]), "command": "python benchmarks/conv_small_code.py " + " ".join(sys.argv[1:]),
       "test_sse_per_image": m["sse_per_image"], "test_mse_per_pixel": m["mse_per_pixel"],
       "test_bce_per_pixel": _bce_per_pixel(model, test.images),
       "train_seconds": sum(model.history_["epoch_seconds"]), "wall_seconds": time.time() - t,
       "train_loss": model.history_["train_loss"]}
os.makedirs(out, exist_ok=True)
json.dump(row, open(os.path.join(out, "small_code.json"), "w"), indent=1)
model.save(os.path.join(out, "model.npz"))
plot_loss_curves(model.history_, os.path.join(out, "loss.png"), title=f"small code ({model.code_size} values), {args.loss.upper()}, {args.epochs} epochs",
                 ylabel=f"{args.loss.upper()} per pixel", test_value=row["test_bce_per_pixel"], test_label="test BCE")
recon = model.inverse_transform(model.transform(test.images[:10]))
plot_image_rows([test.images[:10], recon], ["test images", f"small code ({model.code_size} values)"], (28, 28),
                os.path.join(out, "reconstructions.png"), errors=[None, per_image_squared_error(recon, test.images[:10])])
print({k: v for k, v in row.items() if k != "train_loss"})
