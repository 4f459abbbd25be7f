"""A private PostgreSQL server from Debian's packages, listening on 127.0.0.1 only (port 15432).

Run as an ordinary user, the server runs as that user with its data in `<stack dir>/postgres`.
Run as root (PostgreSQL refuses to run as root), it runs as `postgres`, the system user that
Debian's `postgresql` package creates, with its data under that user's own home,
`/var/lib/postgresql/nudge/<stack id>/`: no user is created and no permission is changed on
anyone's home. `Server` values describe private servers (own folder, own port) that tests start,
stop and restart without touching the stack's.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from deploy.local import ServiceStatus, StackError, logs_dir, stack_dir
from deploy.local.process import locked, port_open, read_pid, rotate_log, run_sync, tail

HOST = "127.0.0.1"
DEFAULT_PORT = 15432
USER = "nudge"
PASSWORD = "nudge"
DATABASE = "nudge"
# The bootstrap superuser; only reachable through the unix socket inside the server's folder.
ADMIN = "postgres"
# As root, the server runs as the system user Debian's postgresql package creates.
DEBIAN_USER = "postgres"
DEBIAN_HOME = Path("/var/lib/postgresql")
# Earlier versions created this system user to run the server as root; purge removes it.
LEGACY_OS_USER = "nudge"
PG_MAJOR = "15"
START_TIMEOUT = 60

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def port() -> int:
    """The stack's PostgreSQL port (NUDGE_POSTGRES_PORT, default 15432)."""
    return int(os.environ.get("NUDGE_POSTGRES_PORT") or DEFAULT_PORT)


PORT = port()


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server: PGDATA in `<home>/data`, its socket in `<home>/run`, its log in `logs`."""

    home: Path
    logs: Path
    # Held while starting, so two `up` calls never start it twice.
    lock_file: Path
    port: int = DEFAULT_PORT
    host: str = HOST

    @property
    def data_dir(self) -> Path:
        """PGDATA: deleting it (with the server stopped) resets every database."""
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        """The unix socket directory; the admin connection uses it (trust auth, no password)."""
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.logs / "postgres.log"

    def dsn(self, database: str = DATABASE) -> str:
        """The TCP DSN of `database` for the application role."""
        return f"postgresql://{USER}:{PASSWORD}@{self.host}:{self.port}/{database}"


def _root_home() -> Path:
    # One folder per stack dir, so two stacks (a private one in tests) never share PGDATA.
    key = hashlib.sha256(str(stack_dir()).encode()).hexdigest()[:12]
    return DEBIAN_HOME / "nudge" / key


def server(home: Path | None = None, *, server_port: int | None = None) -> Server:
    """The stack's server by default; with `home`, a private one logging to `<home>/logs`."""
    chosen_port = port() if server_port is None else server_port
    if home is not None:
        return Server(home=home, logs=home / "logs", lock_file=home / "postgres.lock",
                      port=chosen_port)
    in_stack = stack_dir() / "postgres"
    lock = stack_dir() / "postgres.lock"
    # Data made by an earlier version in the stack dir stays where it is.
    if os.geteuid() != 0 or (in_stack / "data" / "PG_VERSION").exists():
        return Server(home=in_stack, logs=logs_dir(), lock_file=lock, port=chosen_port)
    root_home = _root_home()
    return Server(home=root_home, logs=root_home, lock_file=lock, port=chosen_port)


# The stack's server, for callers of the module-level functions.
def home() -> Path:
    """The stack server's folder: `data/` (PGDATA) and `run/` (unix socket)."""
    return server().home


def data_dir() -> Path:
    """The stack server's PGDATA."""
    return server().data_dir


def socket_dir() -> Path:
    """The stack server's unix socket directory."""
    return server().socket_dir


def log_file() -> Path:
    """The stack server's log."""
    return server().log_file


def dsn(database: str = DATABASE) -> str:
    """The TCP DSN of `database` on the stack's server (what NUDGE_DATABASE_URL holds)."""
    return server().dsn(database)


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


def server_user(srv: Server) -> pwd.struct_passwd | None:
    """Who runs the server: None for the current user; as root, PGDATA's owner or `postgres`."""
    if os.geteuid() != 0:
        return None
    if srv.data_dir.exists() and srv.data_dir.stat().st_uid != 0:
        return pwd.getpwuid(srv.data_dir.stat().st_uid)
    try:
        return pwd.getpwnam(DEBIAN_USER)
    except KeyError:
        raise StackError(
            f"running as root, PostgreSQL runs as the '{DEBIAN_USER}' user that Debian's "
            f"postgresql package creates, and there is none; run deploy/install.sh"
        ) from None


def _as_server_user(srv: Server) -> list[str]:
    user = server_user(srv)
    return [] if user is None else ["runuser", "-u", user.pw_name, "--"]


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    # Whether `user` can pass through every parent of `path` (search permission).
    for parent in path.parents:
        info = parent.stat()
        if info.st_uid == user.pw_uid:
            if not info.st_mode & 0o100:
                return False
        elif info.st_gid == user.pw_gid:
            if not info.st_mode & 0o010:
                return False
        elif not info.st_mode & 0o001:
            return False
    return True


def _prepare_dirs(srv: Server) -> None:
    user = server_user(srv)
    srv.home.mkdir(parents=True, exist_ok=True)
    if user is not None and srv.home.parent == DEBIAN_HOME / "nudge":
        # Our own folder under the server user's home; the home itself is left as it is.
        os.chown(srv.home.parent, user.pw_uid, user.pw_gid)
    srv.socket_dir.mkdir(parents=True, exist_ok=True)
    srv.logs.mkdir(parents=True, exist_ok=True)
    rotate_log(srv.log_file)
    srv.log_file.touch()
    if user is None:
        return
    if not _reachable(srv.home, user):
        raise StackError(
            f"PostgreSQL runs as '{user.pw_name}', which cannot reach {srv.home} (a parent folder "
            f"has no search permission for it). Nudge does not change permissions on your "
            f"folders: use a NUDGE_STACK_DIR it can reach, or `nudge stack down --purge` to "
            f"start afresh under {DEBIAN_HOME}"
        )
    for path in (srv.home, srv.socket_dir, srv.log_file):
        os.chown(path, user.pw_uid, user.pw_gid)


def _run(srv: Server, argv: list[str], what: str) -> None:
    result = subprocess.run([*_as_server_user(srv), *argv], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(
            f"{what} failed (exit {result.returncode}); see {srv.log_file}\n"
            f"{(result.stdout + result.stderr)[-2000:]}\n{tail(srv.log_file, 20)}"
        )


def _initdb(srv: Server) -> None:
    if (srv.data_dir / "PG_VERSION").exists():
        return
    if srv.data_dir.exists():
        shutil.rmtree(srv.data_dir)  # an earlier initdb was interrupted
    _run(
        srv,
        [str(bin_dir() / "initdb"), "-D", str(srv.data_dir), "-U", ADMIN, "-E", "UTF8",
         "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256"],
        f"initdb of {srv.data_dir}",
    )
    with open(srv.data_dir / "postgresql.conf", "a") as conf:
        conf.write("\n# Nudge's local stack: settings in nudge.conf, rewritten on every start.\n"
                   "include 'nudge.conf'\n")


def _write_config(srv: Server) -> None:
    conf = srv.data_dir / "nudge.conf"
    conf.write_text(
        "# Written by deploy/local/postgres.py on every `nudge stack up`.\n"
        f"listen_addresses = '{srv.host}'\n"
        f"port = {srv.port}\n"
        f"unix_socket_directories = '{srv.socket_dir}'\n"
        "max_connections = 200\n"
        # A development database: losing the last few hundred ms of commits in a crash is
        # fine, and skipping the WAL flush per commit makes tests much faster.
        "synchronous_commit = off\n"
        "log_min_messages = warning\n"
        "log_line_prefix = '%m [%p] %q%u@%d '\n"
    )
    user = server_user(srv)
    if user is not None:
        os.chown(conf, user.pw_uid, user.pw_gid)


def pid(srv: Server | None = None) -> int | None:
    """The postmaster's pid if the server is running."""
    srv = server() if srv is None else srv
    return read_pid(srv.data_dir / "postmaster.pid", str(srv.data_dir))


def status(srv: Server | None = None) -> ServiceStatus:
    """Whether the server runs (postmaster alive and port open)."""
    srv = server() if srv is None else srv
    current = pid(srv)
    return ServiceStatus(
        name="postgres",
        running=current is not None and port_open(srv.host, srv.port),
        address=f"{srv.host}:{srv.port}",
        pid=current,
        log=srv.log_file,
    )


async def _admin_connect(srv: Server, database: str = "postgres"):  # -> asyncpg.Connection
    from streams.database import connect_server

    return await connect_server(
        host=str(srv.socket_dir), port=srv.port, user=ADMIN, database=database, timeout=10
    )


async def _ensure_role_and_database(srv: Server) -> None:
    conn = await _admin_connect(srv)
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
            f"applying streams/sql/*.sql to {target_dsn.split('@')[-1]} failed: {exc}"
        ) from exc


def up(srv: Server | None = None) -> ServiceStatus:
    """Start the server unless it runs, create role and database `nudge`, apply migrations."""
    srv = server() if srv is None else srv
    with locked(srv.lock_file):
        return _up(srv, time.monotonic())


def _up(srv: Server, started: float) -> ServiceStatus:
    action = "already running"
    if pid(srv) is None:
        if port_open(srv.host, srv.port):
            raise StackError(
                f"port {srv.port} on {srv.host} is taken by a process this stack did not start "
                f"(no live postmaster for {srv.data_dir}); stop it, or move the stack's "
                f"PostgreSQL with NUDGE_POSTGRES_PORT, then run `nudge stack up` again"
            )
        bin_dir()
        _prepare_dirs(srv)
        _initdb(srv)
        _write_config(srv)
        _run(
            srv,
            [str(bin_dir() / "pg_ctl"), "-D", str(srv.data_dir), "-l", str(srv.log_file),
             "-w", "-t", str(START_TIMEOUT), "start"],
            "starting PostgreSQL",
        )
        action = "started"
    import asyncpg

    try:
        run_sync(_ensure_role_and_database(srv))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise StackError(
            f"PostgreSQL runs but creating role/database '{DATABASE}' failed: {exc}; "
            f"see {srv.log_file}"
        ) from exc
    migrate(srv.dsn())
    return replace(status(srv), action=action, seconds=time.monotonic() - started)


def down(srv: Server | None = None, *, mode: str = "fast") -> bool:
    """Stop the server; True if it was running.

    `mode` is pg_ctl's: "fast" cuts running sessions, "immediate" is a crash (recovery on start).
    """
    srv = server() if srv is None else srv
    if pid(srv) is None:
        return False
    _run(
        srv,
        [str(bin_dir() / "pg_ctl"), "-D", str(srv.data_dir), "-m", mode, "-w", "-t", "30", "stop"],
        "stopping PostgreSQL",
    )
    return True


def purge(srv: Server | None = None) -> list[Path]:
    """Delete a stopped server's folder (every database) and log; return what was removed."""
    srv = server() if srv is None else srv
    if pid(srv) is not None:
        raise StackError(f"PostgreSQL on {srv.data_dir} still runs; stop it before purging")
    removed = [p for p in (srv.home, srv.log_file, srv.lock_file) if p.exists()]
    for path in removed:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    # Our parent under Debian's home, once no other stack's data is left in it.
    parent = DEBIAN_HOME / "nudge"
    if srv.home.parent == parent and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        removed.append(parent)
    return removed


def legacy_os_user() -> str | None:
    """The 'nudge' system user earlier versions created to run PostgreSQL as root, if it exists."""
    try:
        entry = pwd.getpwnam(LEGACY_OS_USER)
    except KeyError:
        return None
    # Only the one we made: a system account with no home and no login shell.
    if entry.pw_dir == "/nonexistent" and entry.pw_shell.endswith("nologin"):
        return entry.pw_name
    return None


def _check_name(name: str) -> str:
    if not _NAME.match(name) or name in (DATABASE, "postgres", "template0", "template1"):
        raise ValueError(
            f"database name {name!r} must be a plain identifier (letters, digits, _; at most "
            f"63) and not one of nudge/postgres/template0/template1"
        )
    return name


async def _recreate(srv: Server, name: str) -> None:
    conn = await _admin_connect(srv)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" OWNER {USER}')
    finally:
        await conn.close()


async def _drop(srv: Server, name: str) -> None:
    conn = await _admin_connect(srv)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def create_database(name: str, *, migrate_schema: bool = True, srv: Server | None = None) -> str:
    """Create a fresh, empty database `name` (dropped first if it exists), migrated; return its DSN."""
    _check_name(name)
    srv = server() if srv is None else srv
    if pid(srv) is None:
        raise StackError("PostgreSQL is not running; start it with `nudge stack up`")
    run_sync(_recreate(srv, name))
    target = srv.dsn(name)
    if migrate_schema:
        migrate(target)
    return target


def drop_database(name: str, *, srv: Server | None = None) -> None:
    """Drop database `name` (closing its sessions); no error if it does not exist."""
    _check_name(name)
    srv = server() if srv is None else srv
    if pid(srv) is None:
        return
    run_sync(_drop(srv, name))
