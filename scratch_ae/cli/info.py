"""`scratch-ae info`: versions, backends, the engine `auto` picks, where data is found."""
HELP = "versions, available backends, the fast engine (Numba), where data is found"


def add_parser(sub, command):
    return command("info", HELP)


def run(args):
    import numpy

    from .. import __version__
    from ..backend import cupy_unavailable_reason, get_backend
    from ..data import DATASETS, dataset_location
    from ..fast import resolve_engine, unavailable_reason
    from ..train_job import versions
    print(f"scratch-ae {__version__}")
    for name, version in versions(get_backend("numpy")).items():
        print(f"  {name}: {version}")
    reason = cupy_unavailable_reason()
    print("backends:\n  numpy: available")
    print(f"  cupy: {'available' if reason is None else 'unavailable: ' + reason}")
    numba = unavailable_reason()
    if numba is None:
        import numba as numba_module
        print(f"numba: {numba_module.__version__}; --engine auto runs the fast engine on the CPU "
              f"(resolves to {resolve_engine('auto', numpy)})")
    else:
        print(f"numba: not used: {numba}; --engine auto runs the reference layers (same results)")
    print("data:")
    for name in DATASETS:
        print(f"  {name}: {dataset_location(name)}")
    return 0
