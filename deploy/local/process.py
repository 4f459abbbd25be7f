"""Detached processes with pid files: start, find, stop, and read their logs."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# A log that grew past this is moved aside (one generation kept) before the next start.
MAX_LOG_BYTES = 20 * 1024 * 1024


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file`, so two `up` calls never start a service twice."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int, marker: str = "") -> bool:
    """True if `pid` is a live (not zombie) process whose command line contains `marker`."""
    _reap(pid)
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # The state letter follows the parenthesised command name, which may hold spaces.
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        if state in (b"Z", b"X"):
            return False
        if marker:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return marker.encode() in handle.read()
        return True
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _reap(pid: int) -> None:
    # A service started from a long-lived process (a pytest session) stays its child;
    # once it exits it must be reaped, or it lingers as a zombie that looks alive.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def read_pid(pid_file: Path, marker: str = "") -> int | None:
    """The pid recorded in `pid_file` if that process is still alive, else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid, marker) else None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def rotate_log(log_file: Path) -> None:
    """Move a log that grew too large to `<name>.1` so logs stay bounded across restarts."""
    try:
        if log_file.stat().st_size > MAX_LOG_BYTES:
            log_file.replace(log_file.with_name(log_file.name + ".1"))
    except FileNotFoundError:
        pass


def spawn(
    argv: Sequence[str],
    log_file: Path,
    pid_file: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start `argv` detached (own session, output appended to `log_file`) and record its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    rotate_log(log_file)
    with open(log_file, "ab") as log, open(os.devnull, "rb") as devnull:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            # Its own session: Ctrl-C in the terminal that ran `nudge stack up` must not kill it.
            start_new_session=True,
            close_fds=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pid: int, *, timeout: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Send `sig`, wait up to `timeout` seconds, then SIGKILL. True if it had to be killed."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return False
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    return True


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file ("" if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code (an async fixture, `nudge dev`): use a private loop in a thread.
    result: list[T] = []
    error: list[BaseException] = []

    def runner() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=runner, name="nudge-stack-sync")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
