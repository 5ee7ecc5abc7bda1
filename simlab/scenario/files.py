"""The files a scenario is read from and names, read as untrusted input: bounded before anything is parsed.

A scenario file is at most MAX_SCENARIO_BYTES of UTF-8 (it may be a pipe:
only that much is ever read). A data file it names (a replay CSV, a file of
service-time samples) must be a regular file of at most MAX_DATA_BYTES, so
`/dev/zero`, a FIFO or a multi-gigabyte log is refused before it is opened,
never read until memory runs out.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_SCENARIO_BYTES = 1 << 20
"""A scenario is a few kilobytes; data it needs in bulk goes in the files it names."""
MAX_DATA_BYTES = 16 << 20
"""A month of per-second rates, or a million latency samples."""

_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"),
)


def size_text(n: int) -> str:
    """Bytes as a reader says them: 1 MiB, 16 MiB, 100 MiB, 512 KiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def utf8(data: bytes) -> str:
    """`data` as text; ValueError saying what it is instead (`found ...`) when it is not UTF-8 text."""
    for mark, name in _BOMS:
        if data.startswith(mark):
            raise ValueError(f"{name} text (byte order mark {mark[:2].hex(' ').upper()})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"a byte that is not UTF-8 (0x{data[exc.start]:02x} at offset {exc.start}; "
                         f"a binary file?)") from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise ValueError(f"a NUL byte at line {line}, column {column} (a binary file?)")
    return text


def read_scenario_text(path: Path, what: str = "scenario") -> str:
    """The text of a scenario file (or another input of that kind, e.g. an experiment); ScenarioError (one line)
    when it is missing, too large or not UTF-8."""
    from simlab.errors import ScenarioError

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCENARIO_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: expected a {what} file, found a directory") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{path}: expected a {what} file of at most {size_text(MAX_SCENARIO_BYTES)}, "
                            f"found a larger one")
    try:
        return utf8(data)
    except ValueError as exc:
        raise ScenarioError(f"{path}: expected UTF-8 text, found {exc}") from None


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def read_data_text(path: Path, shown: str, what: str) -> str:
    """The text of a data file a scenario names (`shown` as written); ValueError `file: expected ...` otherwise.

    Opened without blocking and checked on the open descriptor, so a FIFO never waits for a writer and
    nothing can swap the file between the check and the read. Messages start with `file:` so the scenario
    loader reports them at the `file` key.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError(f"file: expected a readable {what}, found {shown!r} ({exc.strerror})") from None
    except ValueError:  # a NUL in the name
        raise ValueError(f"file: expected a readable {what}, found {shown!r} (not a valid file name)") from None
    with os.fdopen(fd, "rb") as f:
        mode, size = os.fstat(fd).st_mode, os.fstat(fd).st_size
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise ValueError(f"file: expected a regular {what}, found {shown!r} ({kind})")
        if size > MAX_DATA_BYTES:
            raise ValueError(f"file: expected a file of at most {size_text(MAX_DATA_BYTES)}, found {shown!r} "
                             f"({size_text(size)})")
        try:
            data = f.read(MAX_DATA_BYTES + 1)  # it may have grown since
        except OSError as exc:
            raise ValueError(f"file: expected a readable {what}, found {shown!r} ({exc.strerror})") from None
    if len(data) > MAX_DATA_BYTES:
        raise ValueError(f"file: expected a file of at most {size_text(MAX_DATA_BYTES)}, found {shown!r} (larger)")
    try:
        return utf8(data)
    except ValueError as exc:
        raise ValueError(f"file: expected UTF-8 text in {shown!r}, found {exc}") from None
