"""scratch_ae/fast/threads.py: chunks, split_run, and the counted BLAS hold (threads_held)."""
import os
import subprocess
import sys
import threading

import pytest

from scratch_ae.fast.threads import batch_chunks, halves, split_run, split_threads, threads_held

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_libraries_or_skip():
    libraries = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    if not libraries:
        pytest.skip("threadpoolctl finds no BLAS library to hold at one thread")
    return libraries


def counts(libraries):
    return [lib.get_num_threads() for lib in libraries]


def test_batch_chunks_cover_the_batch_within_the_byte_limit():
    assert batch_chunks(10, 100, chunk_bytes=300) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert batch_chunks(5, 10 ** 9, chunk_bytes=1) == [(n, n + 1) for n in range(5)]  # one image at least
    assert batch_chunks(5, 1, chunk_bytes=1 << 40) == [(0, 5)]
    assert halves(7) == [(0, 4), (4, 7)] and halves(1) == [(0, 1)]


def test_the_hold_splits_with_blas_at_one_thread_and_gives_blas_its_threads_back():
    """Two split threads inside the hold only where BLAS may use two; BLAS at one thread inside;
    each library's own count again afterwards, also when the block raises; nesting keeps the hold."""
    libraries = blas_libraries_or_skip()
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        assert split_threads() == 1  # outside a hold: one thread
        with threads_held():
            assert split_threads() == 2
            assert counts(libraries) == [1] * len(libraries)
            with threads_held():
                assert split_threads() == 2
            assert split_threads() == 2 and counts(libraries) == [1] * len(libraries)
        assert split_threads() == 1
        assert counts(libraries) == [2] * len(libraries)
        with pytest.raises(RuntimeError):
            with threads_held():
                raise RuntimeError("a failing step")
        assert counts(libraries) == [2] * len(libraries) and split_threads() == 1
    with threadpoolctl.threadpool_limits(1, user_api="blas"):  # one BLAS thread asked for: one core
        with threads_held():
            assert split_threads() == 1
            assert counts(libraries) == [1] * len(libraries)


def test_two_python_threads_holding_and_releasing_leave_blas_as_it_was():
    """Thread A enters, thread B enters, one leaves while the other is still inside (the hold and BLAS's
    counts stay as they were with both inside), then the other leaves (BLAS's own counts back, no split).
    Both orders of leaving.  (OpenBLAS may ignore a thread count set from a thread other than the one
    that last set it, so the test compares with what the hold made of it, not with a fixed 1.)"""
    libraries = blas_libraries_or_skip()
    for first_out in ("a", "b"):
        with threadpoolctl.threadpool_limits(2, user_api="blas"):
            before = counts(libraries)
            entered = {name: threading.Event() for name in "ab"}
            leave = {name: threading.Event() for name in "ab"}
            left = {name: threading.Event() for name in "ab"}
            seen = {}

            def step(name):
                with threads_held():
                    entered[name].set()
                    leave[name].wait(30)
                    seen[name] = (split_threads(), counts(libraries))
                left[name].set()

            workers = {name: threading.Thread(target=step, args=(name,)) for name in "ab"}
            workers["a"].start()
            assert entered["a"].wait(30)
            workers["b"].start()
            assert entered["b"].wait(30)
            both_inside = (split_threads(), counts(libraries))
            assert both_inside[0] == 2
            second_out = "b" if first_out == "a" else "a"
            leave[first_out].set()
            assert left[first_out].wait(30)
            # one model has finished its step, the other is still inside: nothing given back yet
            assert (split_threads(), counts(libraries)) == both_inside
            leave[second_out].set()
            for worker in workers.values():
                worker.join(30)
            assert seen[first_out] == seen[second_out] == both_inside
            assert counts(libraries) == before and split_threads() == 1


def test_split_run_gives_the_results_in_order_on_one_or_two_threads():
    libraries = blas_libraries_or_skip()
    ranges = [(0, 2), (2, 4), (4, 5)]
    names = []

    def fn(n0, n1):
        names.append(threading.current_thread().name)
        return (n0, n1)
    assert split_run(fn, ranges) == ranges
    assert set(names) == {threading.current_thread().name}
    names.clear()
    with threadpoolctl.threadpool_limits(2, user_api="blas"), threads_held():
        assert split_run(fn, ranges) == ranges
    assert len(set(names)) == (2 if libraries else 1)  # the later part on the helper thread


def test_omp_num_threads_1_keeps_everything_on_one_thread():
    """A fresh process with OMP_NUM_THREADS=1: BLAS starts at one thread, so the hold splits nothing."""
    code = ("from scratch_ae.fast.threads import threads_held, split_threads, split_run\n"
            "import threading\n"
            "with threads_held():\n"
            "    names = split_run(lambda a, b: threading.current_thread().name, [(0, 1), (1, 2)])\n"
            "    print(split_threads(), len(set(names)))\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1"]


def _split_in_child(queue):
    with threads_held():
        queue.put(split_run(lambda n0, n1: (n0, n1), [(0, 1), (1, 2), (2, 3)]))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_split_run_works_in_a_forked_child_of_a_process_that_split_before():
    """The helper thread does not survive fork: the child makes its own instead of waiting on a dead one."""
    import multiprocessing
    blas_libraries_or_skip()
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with threads_held():
            assert split_run(lambda n0, n1: n0, [(0, 1), (1, 2)]) == [0, 1]  # the parent's helper exists
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_split_in_child, args=(queue,))
        child.start()
        child.join(60)
        if child.is_alive():
            child.kill()
            pytest.fail("split_run hung in the forked child")
        assert child.exitcode == 0 and queue.get(timeout=5) == [(0, 1), (1, 2), (2, 3)]
