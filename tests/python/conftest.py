"""Fixtures for the official Python client (`aerospike` on PyPI, C client inside) against shoald.

One `shoald` process serves the whole session (fixture `shoald`); a module that asks for
`cluster3` gets three more, clustered (see `ShoalCluster`). It listens on 127.0.0.1 on a free port with the
namespace `test` (expiration every second), logs to a file in the pytest temporary directory, and
is killed at the end of the session (and by the kernel if pytest itself dies). When any test fails,
the tail of the server log is printed in the terminal summary.

Environment:
  SHOALD_BIN        path of the shoald binary (default: <repo>/target/debug/shoald)
  SHOALD_LOG_LEVEL  shoald --log-level (default: debug)
  SHOAL_TEST_TIMEOUT_S  hard limit per test in seconds (default: 120); past it the run is aborted
                        with a traceback of every thread, so nothing can hang forever.
"""

import ctypes
import faulthandler
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import zlib

import aerospike
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
NAMESPACE = "test"

# Client-side limits, so that a server that does not answer fails a test instead of hanging it.
CLIENT_POLICIES = {
    "read": {"total_timeout": 5000, "max_retries": 0},
    "write": {"total_timeout": 5000, "max_retries": 0},
    "operate": {"total_timeout": 5000, "max_retries": 0},
    "remove": {"total_timeout": 5000, "max_retries": 0},
    "apply": {"total_timeout": 5000, "max_retries": 0},
    "batch": {"total_timeout": 10000, "max_retries": 0},
    "scan": {"total_timeout": 20000, "socket_timeout": 10000, "max_retries": 0},
    "query": {"total_timeout": 20000, "socket_timeout": 10000, "max_retries": 0},
    "info": {"timeout": 5000},
}

_state = {"log_path": None, "server": None, "cluster_logs": []}


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in the child before exec: SIGKILL shoald if the pytest process dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        pass


def _log_tail(path, max_lines=200):
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    lines = text.splitlines()
    head = f"(last {max_lines} of {len(lines)} lines)\n" if len(lines) > max_lines else ""
    return head + "\n".join(lines[-max_lines:])


class Shoald:
    """A running shoald process. `seeds` are other nodes' heartbeat ports on 127.0.0.1; given
    any, the node joins their cluster."""

    def __init__(self, binary, workdir, seeds=(), namespace=f"{NAMESPACE},nsup-period=1"):
        self.binary = binary
        self.port = _free_port()
        self.heartbeat_port = _free_port()
        self.log_path = workdir / "shoald.stderr.log"
        data_dir = workdir / "data"
        data_dir.mkdir(exist_ok=True)
        args = [
            str(binary),
            "--address", "127.0.0.1",
            "--service-port", str(self.port),
            "--fabric-port", str(_free_port()),
            "--heartbeat-port", str(self.heartbeat_port),
            "--http-port", str(_free_port()),
            "--data-dir", str(data_dir),
            "--namespace", namespace,
            "--log-level", os.environ.get("SHOALD_LOG_LEVEL", "debug"),
        ]
        for seed in seeds:
            args += ["--seed", f"127.0.0.1:{seed}"]
        self.args = args
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def wait_listening(self, limit_s=20.0):
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"shoald exited with {code} before listening.\ncommand: {' '.join(self.args)}\n"
                    f"log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(
            f"shoald did not listen on 127.0.0.1:{self.port} within {limit_s} s.\n"
            f"log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


def _shoald_binary():
    binary = pathlib.Path(os.environ.get("SHOALD_BIN") or REPO_ROOT / "target" / "debug" / "shoald")
    if not binary.is_file():
        pytest.exit(f"shoald binary not found at {binary}; run `cargo build --bin shoald` or set SHOALD_BIN", 2)
    return binary


@pytest.fixture(scope="session")
def shoald(tmp_path_factory):
    server = Shoald(_shoald_binary(), tmp_path_factory.mktemp("shoald"))
    _state["log_path"] = server.log_path
    _state["server"] = server
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


def connect_client(servers, seed_port, policies=CLIENT_POLICIES, limit_s=15.0):
    """An official client given the one seed `127.0.0.1:seed_port`. Connecting is retried for a
    few seconds: the port may accept before the node is ready to answer the client's validation
    requests. `servers` are the Shoald processes that must stay up meanwhile."""
    config = {"hosts": [("127.0.0.1", seed_port)], "policies": policies}
    deadline = time.monotonic() + limit_s
    last_error = None
    while time.monotonic() < deadline:
        dead = [s for s in servers if s.proc.poll() is not None]
        if dead:
            raise RuntimeError(
                f"shoald exited with {dead[0].proc.returncode}: {last_error!r}\n{_log_tail(dead[0].log_path)}"
            )
        try:
            c = aerospike.client(config)
            if not c.is_connected():
                c = c.connect()
            return c
        except aerospike.exception.AerospikeError as exc:
            last_error = exc
            time.sleep(0.25)
    raise RuntimeError(f"the client could not connect to shoald on port {seed_port}: {last_error!r}")


@pytest.fixture(scope="session")
def client(shoald):
    """A connected official client of the session's single node."""
    c = connect_client([shoald], shoald.port)
    yield c
    c.close()


def info(port, command, timeout_s=5.0):
    """One info command to 127.0.0.1:port on a fresh connection, without the official client
    (which needs a whole cluster to answer): the value, or None when the node cannot be reached
    or the reply is malformed."""
    body = (command + "\n").encode()
    header = ((2 << 56) | (1 << 48) | len(body)).to_bytes(8, "big")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(header + body)
            head = _recv_exact(s, 8)
            size = int.from_bytes(head, "big") & 0xFFFF_FFFF_FFFF
            if head[0] != 2 or head[1] != 1 or size > (16 << 20):
                return None
            reply = _recv_exact(s, size).decode(errors="replace")
    except OSError:
        return None
    _name, sep, value = reply.rstrip("\n").partition("\t")
    return value if sep else None


def _recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def info_pairs(port, command):
    """`k=v;k=v` answers (statistics, namespace/<ns>) as a dict; {} when unreachable."""
    value = info(port, command) or ""
    return dict(kv.split("=", 1) for kv in value.split(";") if "=" in kv)


class ShoalCluster:
    """`size` shoald processes on 127.0.0.1, each with its own ports and data directory; every
    node after the first is seeded with the first node's heartbeat port. `nodes` keeps them in
    start order; `alive()` leaves out the ones killed on purpose; `stable_key` is the key the
    last `wait_stable` saw."""

    def __init__(self, binary, workdir, size, namespace=f"{NAMESPACE},nsup-period=1"):
        self.nodes = []
        self.killed = set()
        self.stable_key = None
        try:
            for i in range(size):
                node_dir = workdir / f"node{i + 1}"
                node_dir.mkdir()
                seeds = [self.nodes[0].heartbeat_port] if self.nodes else []
                self.nodes.append(Shoald(binary, node_dir, seeds=seeds, namespace=namespace))
            for node in self.nodes:
                node.wait_listening()
        except BaseException:
            self.stop()
            raise

    def alive(self):
        return [n for n in self.nodes if n.port not in self.killed]

    def kill(self, node):
        """SIGKILL, as a crash: no goodbye to the other nodes."""
        self.killed.add(node.port)
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(timeout=10)

    def wait_stable(self, size, limit_s=30.0):
        """Waits until every live node answers `cluster-stable:size=<size>` with one and the same
        cluster key (membership agreed, migrations done) and returns the key and the seconds it
        took. Raises with each node's last answer past `limit_s`."""
        started = time.monotonic()
        command = f"cluster-stable:size={size}"
        while True:
            answers = {n.port: info(n.port, command) for n in self.alive()}
            keys = set(answers.values())
            if len(keys) == 1 and None not in keys and not next(iter(keys)).startswith("ERROR"):
                self.stable_key = next(iter(keys))
                return self.stable_key, time.monotonic() - started
            for n in self.alive():
                if n.proc.poll() is not None:
                    raise RuntimeError(
                        f"shoald on port {n.port} exited with {n.proc.returncode}\n{_log_tail(n.log_path)}"
                    )
            if time.monotonic() - started > limit_s:
                raise RuntimeError(f"no stable cluster of {size} within {limit_s} s; `{command}` answers: {answers}")
            time.sleep(0.1)

    def stop(self):
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory):
    """Three clustered shoald processes (namespace `test`, replication factor 2), stable: every
    node answered `cluster-stable:size=3` with the same key. Killed at the end of the module."""
    cluster = ShoalCluster(_shoald_binary(), tmp_path_factory.mktemp("cluster3"), 3)
    _state["cluster_logs"] = [n.log_path for n in cluster.nodes]
    try:
        key, took = cluster.wait_stable(3)
        print(f"cluster of 3 stable with key {key} after {took:.1f} s")
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def set_name(request):
    """A set name of its own for each test (≤ 63 bytes), so tests never see each other's records."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    return f"{name[:40]}_{zlib.crc32(request.node.nodeid.encode()):08x}"


@pytest.fixture(autouse=True)
def _server_still_running(request):
    """Fails the test that was running when a shoald it uses died (one not killed on purpose),
    and every later one, with its exit code."""
    yield
    servers = []
    if "shoald" in request.fixturenames:
        servers.append(request.getfixturevalue("shoald"))
    if "cluster3" in request.fixturenames:
        servers.extend(request.getfixturevalue("cluster3").alive())
    for server in servers:
        code = server.proc.poll()
        if code is not None:
            pytest.fail(
                f"shoald on port {server.port} is no longer running (exit status {code}); see its log in the summary"
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # A hard stop in case a call blocks inside the C client: dump every thread and exit. shoald
    # dies with us (PR_SET_PDEATHSIG), so nothing is left behind.
    limit = float(os.environ.get("SHOAL_TEST_TIMEOUT_S", "120"))
    faulthandler.dump_traceback_later(limit, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    logs = ([_state["log_path"]] if _state["log_path"] else []) + _state["cluster_logs"]
    for log_path in logs:
        if exitstatus != 0:
            terminalreporter.write_sep("=", f"shoald log ({log_path})")
            terminalreporter.write_line(_log_tail(log_path, 200 if log_path == _state["log_path"] else 80))
        else:
            terminalreporter.write_line(f"shoald log: {log_path}")
