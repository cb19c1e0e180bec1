"""What the page generators share: the repository root and a writer that leaves unchanged files alone."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

HEADER = "% Generated at build time by docs/_ext/{tool} from {source}: edit that, not this file.\n\n"


def write_if_changed(path, text):
    """Write `text` to `path` unless it already holds exactly that (so incremental builds stay incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def copy_if_changed(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    if target.is_file() and target.read_bytes() == data:
        return False
    target.write_bytes(data)
    return True


def remove_stale(folder, keep):
    """Delete files under `folder` that this build did not generate (a renamed source leaves none behind)."""
    keep = {Path(p).resolve() for p in keep}
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path.resolve() not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
