"""The classic autoencoder labs, one module each: `scratch-ae lab NAME`.

Every lab module has `run(out_dir, quick=False, backend="numpy", seed=0,
progress=False, dataset="mnist") -> dict` that writes `results.json`,
`results.md` and `figures/*.png` under out_dir and returns the results.
`quick=True` uses a small subset and few epochs (the test suite runs it).
"""
import importlib

# lab name -> module (imported lazily, so `scratch-ae train` does not pay for t-SNE)
LABS = {
    "pca-vs-ae": "pca_vs_ae",
    "hidden-sizes": "hidden_sizes",
    "code-sizes": "code_sizes",
    "sparse": "sparse",
    "denoising": "denoising",
    "manifold": "manifold",
    "latent": "latent",
    "anomaly": "anomaly",
    "deep-30": "deep30",
    "conv": "conv",
    "colored-denoise": "colored_denoise",
    "vae": "vae",
    "encoded-space": "encoded_space",
}


def run_lab(name, out_dir, **options):
    """Run lab `name`; unknown names raise ValueError listing the valid ones."""
    if name not in LABS:
        raise ValueError(f"unknown lab {name!r}; expected one of: {', '.join(LABS)}")
    module = importlib.import_module(f"{__name__}.{LABS[name]}")
    return module.run(out_dir, **options)
