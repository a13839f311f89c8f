"""Fixtures for the official Python client (`aerospike` on PyPI, C client inside) against shoald.

One `shoald` process serves the whole session. It listens on 127.0.0.1 on a free port with the
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

_state = {"log_path": None, "server": None}


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
    """A running shoald process."""

    def __init__(self, binary, workdir):
        self.binary = binary
        self.port = _free_port()
        self.log_path = workdir / "shoald.stderr.log"
        data_dir = workdir / "data"
        data_dir.mkdir(exist_ok=True)
        args = [
            str(binary),
            "--address", "127.0.0.1",
            "--service-port", str(self.port),
            "--fabric-port", str(_free_port()),
            "--heartbeat-port", str(_free_port()),
            "--http-port", str(_free_port()),
            "--data-dir", str(data_dir),
            "--namespace", f"{NAMESPACE},nsup-period=1",
            "--log-level", os.environ.get("SHOALD_LOG_LEVEL", "debug"),
        ]
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


@pytest.fixture(scope="session")
def shoald(tmp_path_factory):
    binary = pathlib.Path(os.environ.get("SHOALD_BIN") or REPO_ROOT / "target" / "debug" / "shoald")
    if not binary.is_file():
        pytest.exit(f"shoald binary not found at {binary}; run `cargo build --bin shoald` or set SHOALD_BIN", 2)
    server = Shoald(binary, tmp_path_factory.mktemp("shoald"))
    _state["log_path"] = server.log_path
    _state["server"] = server
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def client(shoald):
    """A connected official client. Connecting is retried for a few seconds: the port may accept
    before the node is ready to answer the client's validation requests."""
    config = {"hosts": [("127.0.0.1", shoald.port)], "policies": CLIENT_POLICIES}
    deadline = time.monotonic() + 15
    last_error = None
    while time.monotonic() < deadline:
        if shoald.proc.poll() is not None:
            break
        try:
            c = aerospike.client(config)
            if not c.is_connected():
                c = c.connect()
            break
        except aerospike.exception.AerospikeError as exc:
            last_error = exc
            time.sleep(0.25)
    else:
        raise RuntimeError(f"the client could not connect to shoald on port {shoald.port}: {last_error!r}")
    if shoald.proc.poll() is not None:
        raise RuntimeError(f"shoald exited with {shoald.proc.returncode}: {last_error!r}\n{_log_tail(shoald.log_path)}")
    yield c
    c.close()


@pytest.fixture
def set_name(request):
    """A set name of its own for each test (≤ 63 bytes), so tests never see each other's records."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    return f"{name[:40]}_{zlib.crc32(request.node.nodeid.encode()):08x}"


@pytest.fixture(autouse=True)
def _server_still_running(shoald):
    """Fails the test that was running when shoald died, and every later one, with its exit code."""
    yield
    code = shoald.proc.poll()
    if code is not None:
        pytest.fail(f"shoald is no longer running (exit status {code}); see its log in the summary")


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
    log_path = _state["log_path"]
    if log_path is None:
        return
    if exitstatus != 0:
        terminalreporter.write_sep("=", f"shoald log ({log_path})")
        terminalreporter.write_line(_log_tail(log_path))
    else:
        terminalreporter.write_line(f"shoald log: {log_path}")
