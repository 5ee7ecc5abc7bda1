"""The state directory's files: private to the user (0700 directory, 0600 files) and replaced atomically.

A staging's state directory holds its HAProxy admin socket, its identity token
and its logs, so other local users may not read it. Files that other processes
read while simlab rewrites them (the state, Prometheus' target list, the
dependency fault) are replaced by a rename, so a reader sees the old file or
the new one, never half of one; the state file is also flushed to disk first,
so a machine that stops mid-write leaves the previous state, not an empty file.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from simlab.errors import ScenarioError

SOCKET_PATH_LIMIT = 107
"""Bytes in a Unix socket's path (sun_path holds 108 with the closing NUL on Linux)."""

HAPROXY_SOCKET_LIMIT = 97
"""HAProxy 2.6 binds its admin socket under a temporary name and renames it, so it takes 10 bytes fewer."""

LONGEST_HOST_SOCKET = "hosts/host-old-99999.sock"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by its owner only; an existing directory of ours is made so too."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str, *, durable: bool = False) -> None:
    """Replace `path` by `text` at once (a temporary file renamed over it), mode 0600.

    `durable` flushes the file and the rename to disk before returning (for the state file).
    """
    # Per thread as well as per process: a Chaos Toolkit experiment deploys in a background thread while an
    # action in the main thread saves the state too; a shared temporary name let one rename the other's file away.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def open_private(path: Path, mode: str = "a"):
    """`open(path, mode)` for appending or writing, creating the file 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode)


def check_socket_room(state_dir: Path, hosts: bool) -> None:
    """ScenarioError if the Unix sockets a staging makes in `state_dir` (`hosts`: instance hosts' too) are too long."""
    base = len(os.fsencode(state_dir))
    sockets = [(base + len("/haproxy.sock"), HAPROXY_SOCKET_LIMIT, "HAProxy's admin socket")]
    if hosts:
        sockets.append((base + 1 + len(LONGEST_HOST_SOCKET), SOCKET_PATH_LIMIT, "an instance host's control socket"))
    room = min(limit - (length - base) for length, limit, _ in sockets)
    if base > room:
        length, limit, what = max(sockets, key=lambda s: s[0] - s[1])
        raise ScenarioError(
            f"--dir {state_dir}: too long for a Unix socket ({what} would be {length} bytes, the limit is "
            f"{limit}): use a state directory whose absolute path has at most {room} bytes")
