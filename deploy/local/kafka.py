"""KRaft Kafka run from Maven Central jars (no tarball, no Docker): one broker, or a cluster.

A cluster of N nodes (each a combined broker and controller, one static quorum) lives in one
folder; node n listens for clients on `port + 2(n-1)` and for the quorum on the port after it.
The default is what `nudge stack up` starts: one node in `<stack dir>/kafka`, port 19092
(NUDGE_KAFKA_PORT, NUDGE_KAFKA_BROKERS move or grow it). `Cluster` values describe private
clusters (own folder, own ports) that tests start and stop without touching the shared one.
"""

from __future__ import annotations

import base64
import os
import shutil
import string
import subprocess
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from deploy.local import ServiceStatus, StackError, cache_dir, logs_dir, stack_dir
from deploy.local.process import locked, pid_alive, port_open, read_pid, run_sync, spawn, stop, tail

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
HOST = "127.0.0.1"
DEFAULT_PORT = 19092
# How the broker's pid is told apart from an unrelated process that reused the pid.
MAIN_CLASS = "kafka.Kafka"
# Per node; a cluster's nodes start in parallel and share the cores, so it gets longer.
READY_TIMEOUT = 60.0
CLUSTER_READY_TIMEOUT = 150.0

_TEMPLATES = Path(__file__).resolve().parent.parent / "kafka"

# Small heap; C1-only JIT because on 2 cores C2 compilation competes with start-up.
JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
]


def port() -> int:
    """The first broker's client port (NUDGE_KAFKA_PORT, default 19092)."""
    return int(os.environ.get("NUDGE_KAFKA_PORT") or DEFAULT_PORT)


def brokers() -> int:
    """How many brokers `nudge stack up` starts when not told (NUDGE_KAFKA_BROKERS, default 1)."""
    return int(os.environ.get("NUDGE_KAFKA_BROKERS") or 1)


# Read once at import, for callers that want the address of the default single broker.
PORT = port()
CONTROLLER_PORT = PORT + 1
BOOTSTRAP = f"{HOST}:{PORT}"


@dataclass(frozen=True)
class Node:
    """One combined broker + controller of a cluster."""

    cluster: Cluster
    node_id: int

    @property
    def port(self) -> int:
        return self.cluster.port + 2 * (self.node_id - 1)

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def address(self) -> str:
        return f"{self.cluster.host}:{self.port}"

    @property
    def home(self) -> Path:
        """Config, data and pid file; a one-node cluster keeps them in the cluster's folder."""
        if self.cluster.size == 1:
            return self.cluster.home
        return self.cluster.home / f"broker-{self.node_id}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        if self.cluster.size == 1:
            return self.cluster.logs / f"{self.cluster.home.name}.log"
        return self.cluster.logs / f"{self.cluster.home.name}-broker-{self.node_id}.log"

    def pid(self) -> int | None:
        """This node's pid if it is running."""
        return read_pid(self.pid_file, MAIN_CLASS)

    def running(self) -> bool:
        """True if the process is alive and its client port accepts connections."""
        return self.pid() is not None and port_open(self.cluster.host, self.port)


@dataclass(frozen=True)
class Cluster:
    """A KRaft cluster of `size` nodes kept in `home`, logging to `logs`."""

    home: Path
    logs: Path
    size: int = 1
    port: int = DEFAULT_PORT
    host: str = HOST

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(Node(self, n) for n in range(1, self.size + 1))

    def node(self, node_id: int) -> Node:
        """Node `node_id` (1-based)."""
        if not 1 <= node_id <= self.size:
            raise ValueError(f"this cluster has nodes 1 to {self.size}, not {node_id}")
        return Node(self, node_id)

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated (NUDGE_KAFKA_BOOTSTRAP)."""
        return ",".join(node.address for node in self.nodes)

    @property
    def replication_factor(self) -> int:
        """Replicas per partition: 3 where there are 3 brokers (production), else every broker."""
        return min(self.size, 3)

    @property
    def min_insync_replicas(self) -> int:
        """Replicas that must have a write before it is acknowledged: a majority of them."""
        return self.replication_factor // 2 + 1

    @property
    def lock_file(self) -> Path:
        return self.home.parent / f"{self.home.name}.lock"


def cluster(size: int | None = None, *, home: Path | None = None, first_port: int | None = None) -> Cluster:
    """A cluster description: by default the stack's (`<stack dir>/kafka`, or `kafka-N` for N nodes).

    With `home`, a private cluster whose logs go to `<home>/logs`.
    """
    size = brokers() if size is None else size
    if size < 1:
        raise ValueError(f"a Kafka cluster needs at least one broker, not {size}")
    if home is None:
        return Cluster(
            home=stack_dir() / ("kafka" if size == 1 else f"kafka-{size}"),
            logs=logs_dir(),
            size=size,
            port=port() if first_port is None else first_port,
        )
    return Cluster(home=home, logs=home / "logs", size=size,
                   port=port() if first_port is None else first_port)


def stack_clusters() -> list[Cluster]:
    """Every cluster the stack dir holds (the one-node one always, `kafka-N` where they exist)."""
    found = [cluster(1)]
    for folder in sorted(stack_dir().glob("kafka-*")):
        suffix = folder.name.removeprefix("kafka-")
        if folder.is_dir() and suffix.isdigit() and int(suffix) > 1:
            found.append(cluster(int(suffix)))
    return found


def _live_stack_cluster() -> Cluster | None:
    for candidate in stack_clusters():
        if any(node.pid() is not None for node in candidate.nodes):
            return candidate
    return None


def running_cluster() -> Cluster:
    """The stack's cluster that runs now (any size); the default one if none runs."""
    live = _live_stack_cluster()
    return cluster() if live is None else live


# -- the jars ---------------------------------------------------------------------------------


def libs_dir() -> Path:
    """The cached jars of the pinned Kafka version (filled by `fetch_jars`)."""
    return cache_dir() / f"kafka-{KAFKA_VERSION}-log4j-{LOG4J_VERSION}" / "libs"


def fetch_jars() -> Path:
    """Download Kafka and its Log4j2 backend with Maven into the cache, once; return the libs dir."""
    libs = libs_dir()
    done = libs.parent / ".complete"
    if done.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (mvn) is needed once to fetch Kafka's jars; run deploy/install.sh "
            "or `apt-get install maven`"
        )
    if libs.exists():
        shutil.rmtree(libs)  # a previous fetch was interrupted half-way
    libs.mkdir(parents=True)
    argv = [
        mvn, "-B", "-q",
        "-f", str(_TEMPLATES / "pom.xml"),
        # Keep Maven's own repository in the cache too, so nothing lands in ~/.m2.
        f"-Dmaven.repo.local={cache_dir() / 'm2'}",
        f"-Dkafka.version={KAFKA_VERSION}",
        f"-Dlog4j.version={LOG4J_VERSION}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(
            f"fetching Kafka {KAFKA_VERSION} with Maven failed (exit {result.returncode}); "
            f"is Maven Central reachable?\n{(result.stdout + result.stderr)[-3000:]}"
        )
    done.write_text(f"kafka {KAFKA_VERSION}, log4j {LOG4J_VERSION}\n")
    return libs


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17+ is needed for Kafka; run deploy/install.sh or install openjdk-17-jre-headless")
    return java


# -- one node ---------------------------------------------------------------------------------


def _write_config(node: Node) -> Path:
    node.home.mkdir(parents=True, exist_ok=True)
    c = node.cluster
    template = string.Template((_TEMPLATES / "server.properties.template").read_text())
    config = node.home / "server.properties"
    config.write_text(
        template.substitute(
            node_id=node.node_id,
            host=c.host,
            port=node.port,
            controller_port=node.controller_port,
            voters=",".join(f"{n.node_id}@{c.host}:{n.controller_port}" for n in c.nodes),
            log_dirs=str(node.data_dir),
            replication_factor=c.replication_factor,
            min_insync_replicas=c.min_insync_replicas,
        )
    )
    return config


def _new_cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding, never
    # starting with "-" (it would parse as an option). Generated here to save a JVM start.
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value


def _cluster_id(c: Cluster) -> str:
    # Every node of a cluster is formatted with the same id, kept beside them.
    path = c.home / "cluster.id"
    if not path.exists():
        c.home.mkdir(parents=True, exist_ok=True)
        path.write_text(_new_cluster_id() + "\n")
    return path.read_text().strip()


def _format(node: Node, config: Path, libs: Path) -> None:
    if (node.data_dir / "meta.properties").exists():
        return
    argv = [
        _java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
        f"-Dlog4j2.configurationFile={_TEMPLATES / 'log4j2.properties'}",
        "-cp", f"{libs}/*",
        "kafka.tools.StorageTool", "format",
        "-t", _cluster_id(node.cluster), "-c", str(config), "--ignore-formatted",
    ]
    result = subprocess.run(argv, capture_output=True, text=True)
    node.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(node.log_file, "a") as log:
        log.write(f"\n=== formatting {node.data_dir}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise StackError(
            f"formatting Kafka's storage in {node.data_dir} failed (exit {result.returncode}); "
            f"see {node.log_file}\n{(result.stdout + result.stderr)[-2000:]}"
        )


def _heap(c: Cluster) -> list[str]:
    # Three brokers on a 24 GiB development box: a smaller heap each.
    return ["-Xms256m", "-Xmx768m"] if c.size == 1 else ["-Xms192m", "-Xmx512m"]


def start_node(node: Node) -> int:
    """Start one node (formatting its storage the first time) without waiting; return its pid."""
    current = node.pid()
    if current is not None:
        return current
    c = node.cluster
    if port_open(c.host, node.port) or port_open(c.host, node.controller_port):
        raise StackError(
            f"port {node.port} or {node.controller_port} on {c.host} is taken by a process this "
            f"stack did not start (no live pid in {node.pid_file}); stop it, or move the stack's "
            f"Kafka with NUDGE_KAFKA_PORT, then run `nudge stack up` again"
        )
    libs = fetch_jars()
    config = _write_config(node)
    _format(node, config, libs)
    argv = [
        _java(), *_heap(c), *JVM_FLAGS,
        f"-Dlog4j2.configurationFile={_TEMPLATES / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={node.log_file.parent}",
        "-cp", f"{libs}/*",
        MAIN_CLASS, str(config),
    ]
    return spawn(argv, node.log_file, node.pid_file, cwd=node.home)


def stop_node(node: Node, *, kill: bool = False, timeout: float = 30.0) -> bool:
    """Stop one node: controlled shutdown (SIGKILL after `timeout`), or at once with `kill`.

    True if it was running. Its data stays, so `start_node` brings it back with its log.
    """
    import signal

    current = node.pid()
    if current is None:
        return False
    if kill:
        stop(current, timeout=0.0, sig=signal.SIGKILL)
    else:
        stop(current, timeout=timeout)
    node.pid_file.unlink(missing_ok=True)
    return True


# -- readiness --------------------------------------------------------------------------------


async def _metadata(bootstrap: str, timeout_ms: int) -> int | None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await client.start()
        await client.list_topics()
        described = await client.describe_cluster()
        return len(described["brokers"])
    except (TimeoutError, KafkaError, OSError, KeyError):
        return None
    finally:
        await client.close()


def live_brokers(bootstrap: str, timeout: float = 5.0) -> int:
    """How many brokers the cluster at `bootstrap` reports (0 if none answers)."""
    return run_sync(_metadata(bootstrap, int(timeout * 1000))) or 0


def metadata_ok(bootstrap: str = BOOTSTRAP, timeout: float = 5.0) -> bool:
    """True if a broker at `bootstrap` answers a metadata request (lists topics)."""
    return live_brokers(bootstrap, timeout) > 0


def wait_ready(c: Cluster, nodes: tuple[Node, ...] | None = None, timeout: float | None = None) -> None:
    """Wait until `nodes` (default: all) run and the cluster reports them; raise StackError if not."""
    nodes = c.nodes if nodes is None else nodes
    timeout = (READY_TIMEOUT if c.size == 1 else CLUSTER_READY_TIMEOUT) if timeout is None else timeout
    deadline = time.monotonic() + timeout
    wanted = sum(1 for node in c.nodes if node in nodes or node.pid() is not None)
    while time.monotonic() < deadline:
        for node in nodes:
            # Not node.pid(): right after the fork, the child's command line is not java's yet.
            pid = read_pid(node.pid_file)
            if pid is None or not pid_alive(pid):
                raise StackError(
                    f"Kafka node {node.node_id} exited during start-up; see {node.log_file}. "
                    f"Last lines:\n{tail(node.log_file)}"
                )
        if all(port_open(c.host, node.port) for node in nodes):
            if all(live_brokers(node.address) >= wanted for node in nodes):
                return
        time.sleep(0.25)
    raise StackError(
        f"Kafka at {c.bootstrap} did not report {wanted} broker(s) within {timeout:.0f}s; see "
        + ", ".join(str(node.log_file) for node in nodes)
        + f". Last lines:\n{tail(nodes[0].log_file)}"
    )


# -- the service ------------------------------------------------------------------------------


def status(c: Cluster | None = None) -> ServiceStatus:
    """Whether every node runs (pid alive and port open); by default the stack's running cluster."""
    c = running_cluster() if c is None else c
    pids = [node.pid() for node in c.nodes]
    return ServiceStatus(
        name="kafka",
        running=all(node.running() for node in c.nodes),
        address=c.bootstrap if c.size == 1 else f"{c.bootstrap} ({c.size} brokers)",
        pid=pids[0],
        log=c.nodes[0].log_file,
    )


def up(c: Cluster | None = None) -> ServiceStatus:
    """Start every node that is not running; return once the cluster reports all of them."""
    c = cluster() if c is None else c
    started = time.monotonic()
    with locked(c.lock_file):
        other = _live_stack_cluster() if c.home.parent == stack_dir() else None
        if other is not None and other.home != c.home:
            raise StackError(
                f"the stack already runs a {other.size}-broker Kafka in {other.home}; stop it "
                f"with `nudge stack down` before starting one of {c.size}"
            )
        waiting = tuple(node for node in c.nodes if not node.running())
        if not waiting:
            return _done(status(c), "already running", started)
        fresh = [node for node in waiting if node.pid() is None]
        for node in fresh:
            start_node(node)
        try:
            wait_ready(c, waiting)
        except StackError:
            for node in fresh:
                stop_node(node, timeout=5.0)
            raise
        return _done(status(c), "started" if fresh else "already running", started)


def down(c: Cluster | None = None) -> bool:
    """Stop every node (controlled shutdown, SIGKILL after 30 s); True if any was running."""
    c = running_cluster() if c is None else c
    # Controlled shutdowns in parallel: one at a time, each waits for leadership to move.
    pids = [(node, node.pid()) for node in c.nodes]
    import signal

    for _node, pid in pids:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    was_running = False
    for node, pid in pids:
        if pid is not None:
            was_running = True
            stop(pid, timeout=30.0)
            node.pid_file.unlink(missing_ok=True)
    return was_running


def purge(c: Cluster) -> list[Path]:
    """Delete a stopped cluster's folder (config, topics, data) and logs; return what was removed."""
    if any(node.pid() is not None for node in c.nodes):
        raise StackError(f"Kafka in {c.home} still runs; stop it before purging")
    removed = [p for p in (c.home, *(n.log_file for n in c.nodes), c.lock_file) if p.exists()]
    for path in removed:
        # A private cluster keeps its logs inside its folder: gone with it.
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return removed


def _done(state: ServiceStatus, action: str, started: float) -> ServiceStatus:
    return replace(state, action=action, seconds=time.monotonic() - started)


# Kept for callers of the single-broker layout.
def home() -> Path:
    """The default single broker's folder in the stack dir: config, data (`data/`), pid file."""
    return cluster(1).home


def data_dir() -> Path:
    """The default single broker's `log.dirs`: deleting it (broker stopped) resets all topics."""
    return cluster(1).nodes[0].data_dir


def log_file() -> Path:
    """The default single broker's log (stdout and Log4j output)."""
    return cluster(1).nodes[0].log_file


def pid() -> int | None:
    """The default single broker's pid if it is running."""
    return cluster(1).nodes[0].pid()
