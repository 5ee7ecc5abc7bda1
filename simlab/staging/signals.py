"""SIGINT and SIGTERM as Ctrl-C, so a staging command's cleanup runs however it is stopped."""
from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Treat SIGTERM and SIGINT as Ctrl-C while the block runs, so cleanup code runs for both.

    SIGINT is made to interrupt even when this process inherited it ignored: a
    non-interactive shell starts background jobs (`cmd &`, as CI scripts do)
    with SIGINT ignored, and Python then leaves it ignored, so `kill -INT` of a
    deploy would be lost and the fleet left mid-rollout.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
