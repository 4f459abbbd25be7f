"""A private PostgreSQL cluster from Debian's packages, listening on 127.0.0.1:15432 only."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from deploy.local import ServiceStatus, StackError, logs_dir, stack_dir
from deploy.local.process import locked, port_open, read_pid, rotate_log, run_sync, tail

HOST = "127.0.0.1"
PORT = 15432
USER = "nudge"
PASSWORD = "nudge"
DATABASE = "nudge"
# The bootstrap superuser; only reachable through the unix socket inside the stack dir.
ADMIN = "postgres"
# When run as root, PostgreSQL (which refuses to run as root) runs as this system user.
OS_USER = "nudge"
PG_MAJOR = "15"
START_TIMEOUT = 60

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def home() -> Path:
    """The cluster's folder in the stack dir: `data/` (PGDATA) and `run/` (unix socket)."""
    return stack_dir() / "postgres"


def data_dir() -> Path:
    """PGDATA: deleting it (with the server stopped) resets every database."""
    return home() / "data"


def socket_dir() -> Path:
    """The unix socket directory; the admin connection uses it (trust auth, no password)."""
    return home() / "run"


def log_file() -> Path:
    """The server's log."""
    return logs_dir() / "postgres.log"


def dsn(database: str = DATABASE) -> str:
    """The TCP DSN of `database` for the application role (what NUDGE_DATABASE_URL holds)."""
    return f"postgresql://{USER}:{PASSWORD}@{HOST}:{PORT}/{database}"


def bin_dir() -> Path:
    """Debian's PostgreSQL binaries (major 15, or the newest installed)."""
    preferred = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (preferred / "pg_ctl").exists():
        return preferred
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if found:
        return found[-1].parent
    raise StackError(
        "PostgreSQL server binaries not found under /usr/lib/postgresql; run deploy/install.sh "
        "or `apt-get install postgresql`"
    )


def _as_server_user() -> list[str]:
    # PostgreSQL refuses to run as root: as root, run its tools as the unprivileged OS_USER.
    return ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []


def _ensure_os_user() -> None:
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(OS_USER)
        return
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home",
         "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", OS_USER],
        check=True, capture_output=True,
    )


def _ensure_traversable(path: Path, uid: int) -> None:
    # The server user must be able to reach PGDATA, e.g. through /root (mode 0700).
    # Grant only search permission (o+x: pass through, not list) where it is missing.
    for parent in path.parents:
        mode = parent.stat()
        if mode.st_uid == uid or mode.st_mode & stat.S_IXOTH:
            continue
        os.chmod(parent, stat.S_IMODE(mode.st_mode) | stat.S_IXOTH)
        print(
            f"nudge: gave other users search permission (o+x) on {parent} so that the "
            f"'{OS_USER}' user running PostgreSQL can reach {path}",
            file=sys.stderr,
        )


def _prepare_dirs() -> None:
    home().mkdir(parents=True, exist_ok=True)
    socket_dir().mkdir(parents=True, exist_ok=True)
    rotate_log(log_file())
    log_file().touch()
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(OS_USER)
    _ensure_traversable(home(), entry.pw_uid)
    for path in (home(), socket_dir(), log_file()):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    if data_dir().exists():
        for root, dirs, files in os.walk(data_dir()):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                if os.lstat(name).st_uid != entry.pw_uid:
                    os.lchown(name, entry.pw_uid, entry.pw_gid)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run([*_as_server_user(), *argv], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(
            f"{what} failed (exit {result.returncode}); see {log_file()}\n"
            f"{(result.stdout + result.stderr)[-2000:]}\n{tail(log_file(), 20)}"
        )


def _initdb() -> None:
    if (data_dir() / "PG_VERSION").exists():
        return
    if data_dir().exists():
        shutil.rmtree(data_dir())  # an earlier initdb was interrupted
    _run(
        [str(bin_dir() / "initdb"), "-D", str(data_dir()), "-U", ADMIN, "-E", "UTF8",
         "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256"],
        f"initdb of {data_dir()}",
    )
    with open(data_dir() / "postgresql.conf", "a") as conf:
        conf.write("\n# Nudge's local stack: settings in nudge.conf, rewritten on every start.\n"
                   "include 'nudge.conf'\n")


def _write_config() -> None:
    (data_dir() / "nudge.conf").write_text(
        "# Written by deploy/local/postgres.py on every `nudge stack up`.\n"
        f"listen_addresses = '{HOST}'\n"
        f"port = {PORT}\n"
        f"unix_socket_directories = '{socket_dir()}'\n"
        "max_connections = 200\n"
        # A development database: losing the last few hundred ms of commits in a crash is
        # fine, and skipping the WAL flush per commit makes tests much faster.
        "synchronous_commit = off\n"
        "log_min_messages = warning\n"
        "log_line_prefix = '%m [%p] %q%u@%d '\n"
    )
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        os.chown(data_dir() / "nudge.conf", entry.pw_uid, entry.pw_gid)


def pid() -> int | None:
    """The postmaster's pid if the server is running."""
    return read_pid(data_dir() / "postmaster.pid", str(data_dir()))


def status() -> ServiceStatus:
    """Whether the server runs (postmaster alive and port open)."""
    current = pid()
    return ServiceStatus(
        name="postgres",
        running=current is not None and port_open(HOST, PORT),
        address=f"{HOST}:{PORT}",
        pid=current,
        log=log_file(),
    )


async def _admin_connect(database: str = "postgres"):  # -> asyncpg.Connection
    from streams.database import connect_server

    return await connect_server(
        host=str(socket_dir()), port=PORT, user=ADMIN, database=database, timeout=10
    )


async def _ensure_role_and_database() -> None:
    conn = await _admin_connect()
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", USER):
            await conn.execute(f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
    finally:
        await conn.close()


def migrate(target_dsn: str) -> list[str]:
    """Apply the project's migrations (streams.migrations) to `target_dsn`, if that module exists."""
    if importlib.util.find_spec("streams.migrations") is None:
        return []
    import asyncpg

    module = importlib.import_module("streams.migrations")
    try:
        return list(run_sync(module.apply_migrations(target_dsn)))
    # MigrationError is a RuntimeError; connection trouble is an OSError or a PostgresError.
    except (RuntimeError, OSError, asyncpg.PostgresError) as exc:
        raise StackError(
            f"applying deploy/migrations/*.sql to {target_dsn.split('@')[-1]} failed: {exc}"
        ) from exc


def up() -> ServiceStatus:
    """Start the server unless it runs, create role and database `nudge`, apply migrations."""
    with locked(stack_dir() / "postgres.lock"):
        return _up(time.monotonic())


def _up(started: float) -> ServiceStatus:
    action = "already running"
    if pid() is None:
        if port_open(HOST, PORT):
            raise StackError(
                f"port {PORT} on {HOST} is taken by a process this stack did not start (no live "
                f"postmaster for {data_dir()}); stop it, then run `nudge stack up` again"
            )
        bin_dir()
        _ensure_os_user()
        _prepare_dirs()
        _initdb()
        _write_config()
        _run(
            [str(bin_dir() / "pg_ctl"), "-D", str(data_dir()), "-l", str(log_file()),
             "-w", "-t", str(START_TIMEOUT), "start"],
            "starting PostgreSQL",
        )
        action = "started"
    import asyncpg

    try:
        run_sync(_ensure_role_and_database())
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise StackError(
            f"PostgreSQL runs but creating role/database '{DATABASE}' failed: {exc}; "
            f"see {log_file()}"
        ) from exc
    migrate(dsn())
    return replace(status(), action=action, seconds=time.monotonic() - started)


def down() -> bool:
    """Stop the server (fast shutdown: running sessions are cut); True if it was running."""
    if pid() is None:
        return False
    _run(
        [str(bin_dir() / "pg_ctl"), "-D", str(data_dir()), "-m", "fast", "-w", "-t", "30", "stop"],
        "stopping PostgreSQL",
    )
    return True


def _check_name(name: str) -> str:
    if not _NAME.match(name) or name in (DATABASE, "postgres", "template0", "template1"):
        raise ValueError(
            f"database name {name!r} must be a plain identifier (letters, digits, _; at most "
            f"63) and not one of nudge/postgres/template0/template1"
        )
    return name


async def _recreate(name: str) -> None:
    conn = await _admin_connect()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" OWNER {USER}')
    finally:
        await conn.close()


async def _drop(name: str) -> None:
    conn = await _admin_connect()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database(name: str, *, migrate_schema: bool = True) -> str:
    """Create a fresh, empty database `name` (dropped first if it exists), migrated; return its DSN."""
    _check_name(name)
    if pid() is None:
        raise StackError("PostgreSQL is not running; start it with `nudge stack up`")
    run_sync(_recreate(name))
    target = dsn(name)
    if migrate_schema:
        migrate(target)
    return target


def drop_database(name: str) -> None:
    """Drop database `name` (closing its sessions); no error if it does not exist."""
    _check_name(name)
    if pid() is None:
        return
    run_sync(_drop(name))
