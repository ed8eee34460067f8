"""Every sandbox implementation, for real (bubblewrap, unshare, dockerd), against hostile code.

Every test runs once per implementation (see conftest.py): ``local-bwrap``, ``local-unshare``,
``docker``. Small scripts use the system's ``/usr/bin/python3`` (host Debian's for the local
launchers, the image's for ``docker``: both 3.11) because it starts fast; the Python runtime test
uses the grader's own interpreter through ``python()``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from lmcourse.grader.errors import LmcourseError
from lmcourse.grader.sandbox.base import Mount, Sandbox, SandboxResult, SandboxSpec
from lmcourse.grader.sandbox.cgroup import CgroupV1
from lmcourse.grader.sandbox.docker import DockerSandbox
from lmcourse.grader.sandbox.image import SANDBOX_UID
from lmcourse.grader.sandbox.registry import get_sandbox, make_sandbox

PY = "/usr/bin/python3"


def run_py(sandbox: Sandbox, code: str, **spec: object) -> SandboxResult:
    spec.setdefault("wall_clock_s", 30.0)
    spec.setdefault("env", {"PATH": "/usr/bin:/bin"})
    return sandbox.run(SandboxSpec(argv=[PY, "-I", "-c", code], **spec))  # type: ignore[arg-type]


def host_pids_with(token: str) -> list[int]:
    """Host processes whose command line mentions ``token`` (sandboxed ones included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def assert_gone(token: str, within_s: float = 3.0) -> None:
    deadline = time.monotonic() + within_s
    while (left := host_pids_with(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"sandboxed processes survived: {left}"


def strict_oom(sandbox: Sandbox) -> bool:
    """Whether this backend can tell an OOM kill apart here (cgroups: docker, or a local launcher as root)."""
    return sandbox.name == "docker" or CgroupV1.usable()


# -- basics ------------------------------------------------------------------------------------


def test_echo_and_exit_code(sandbox: Sandbox) -> None:
    r = sandbox.run(SandboxSpec(argv=["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], wall_clock_s=20))
    assert r.exit_code == 3
    assert r.output.split() == ["out", "err"]
    assert not (r.timed_out or r.oom_killed or r.output_truncated)
    assert 0 < r.duration_s < 20


def test_env_is_exactly_the_spec(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMCOURSE_HOST_SECRET", "hunter2")
    env = {"PATH": "/usr/bin:/bin", "GREETING": "hello world", "EMPTY": ""}
    r = sandbox.run(SandboxSpec(argv=["/usr/bin/env"], env=env, wall_clock_s=20))
    assert r.exit_code == 0, r.output
    assert sorted(r.output.splitlines()) == sorted(f"{k}={v}" for k, v in env.items())
    assert "hunter2" not in r.output


def test_workdir(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir(mode=0o755)
    spec = SandboxSpec(argv=["/bin/pwd"], mounts=[Mount(tmp_path / "work", "/work")], workdir="/work",
                       wall_clock_s=20)
    r = sandbox.run(spec)
    assert (r.exit_code, r.output.strip()) == (0, "/work")


def test_kill_is_idempotent(sandbox: Sandbox) -> None:
    p = sandbox.start(SandboxSpec(argv=["/bin/sleep", "60"], wall_clock_s=60))
    assert p.alive()
    p.kill()
    p.kill()
    r = p.wait(10)
    assert not p.alive()
    assert not r.timed_out and r.exit_code != 0 and r.duration_s < 10
    p.kill()  # after the end too
    assert p.wait() is r


# -- isolation ---------------------------------------------------------------------------------


def test_mounts_read_only_and_writable(sandbox: Sandbox, tmp_path: Path) -> None:
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir(mode=0o755)
    rw.mkdir(mode=0o700)
    (ro / "data.txt").write_text("given")
    (ro / "data.txt").chmod(0o644)
    code = (
        "import os\n"
        "print(open('/in/data.txt').read())\n"
        "for path in ('/in/data.txt', '/in/new.txt', '/usr/evil', '/evil', '/etc/passwd', '/etc/evil',\n"
        "             '/dev/evil', '/opt/evil', '/lib/evil'):\n"
        "    try:\n"
        "        open(path, 'a').write('x')\n"
        "        print('WROTE', path)\n"
        "    except OSError as e:\n"
        "        print('refused', path, e.errno)\n"
        "open('/out/result.txt', 'w').write('from the sandbox')\n"
        "print('done')\n"
    )
    r = run_py(sandbox, code, mounts=[Mount(ro, "/in"), Mount(rw, "/out", writable=True)])
    assert r.exit_code == 0, r.output
    assert "given" in r.output and "done" in r.output
    assert "WROTE" not in r.output
    assert (rw / "result.txt").read_text() == "from the sandbox"
    assert sorted(p.name for p in ro.iterdir()) == ["data.txt"]
    assert (ro / "data.txt").read_text() == "given"


def test_cannot_see_host_files(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = f"hidden-test-answer-{uuid.uuid4().hex}"
    host_file = Path("/tmp") / f"lmcourse-secret-{uuid.uuid4().hex}"
    host_file.write_text(secret)
    host_file.chmod(0o644)  # readable by anyone who can see it: only the sandbox hides it
    # A grading lays out the student's code beside the hidden tests: mount one, never the other.
    tmp_path.chmod(0o755)
    (tmp_path / "student").mkdir(mode=0o755)
    (tmp_path / "hidden").mkdir(mode=0o755)
    (tmp_path / "hidden" / "test_hidden.py").write_text(f"EXPECTED = {secret!r}\n")
    (tmp_path / "hidden" / "test_hidden.py").chmod(0o644)
    repo = Path(__file__).resolve().parents[2]
    try:
        code = (
            "import os\n"
            f"paths = [{str(host_file)!r}, {str(tmp_path / 'hidden')!r}, '/code/../hidden', {str(repo)!r},\n"
            f"         {str(repo / 'pyproject.toml')!r}, '/work', '/root', '/home',\n"
            "         '/etc/shadow', '/var/lib/docker', '/run/docker.sock', '/var/run/docker.sock']\n"
            "for p in paths:\n"
            "    try:\n"
            "        seen = os.listdir(p) if os.path.isdir(p) else open(p).read()[:80]\n"
            "        print('LEAK' if seen else 'hidden', p, seen)\n"  # the image's empty /home is fine
            "    except OSError as e:\n"
            "        print('hidden', p, type(e).__name__)\n"
            "print(sorted(os.listdir('/tmp')))\n"
        )
        r = run_py(sandbox, code, mounts=[Mount(tmp_path / "student", "/code")])
    finally:
        host_file.unlink()
    assert r.exit_code == 0, r.output
    assert "LEAK" not in r.output, r.output
    assert secret not in r.output
    assert sum(line.startswith("hidden ") for line in r.output.splitlines()) == 12, r.output


def test_runs_as_non_root(sandbox: Sandbox) -> None:
    code = (
        "import os\n"
        "print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
        "try:\n"
        "    os.setuid(0); print('BECAME ROOT')\n"
        "except OSError:\n"  # EPERM, or EINVAL where uid 0 does not exist (a user namespace)

        "    print('stayed')\n"
    )
    r = run_py(sandbox, code)
    assert r.exit_code == 0, r.output
    uid, euid, gid, *_ = r.output.split()
    assert int(uid) == int(euid) == int(gid) == SANDBOX_UID
    assert "stayed" in r.output and "BECAME ROOT" not in r.output


def test_no_capabilities_no_namespaces(sandbox: Sandbox) -> None:
    """No capability in any set, no_new_privs, and no way to make namespaces or mounts."""
    code = (
        "import ctypes, os\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())\n"
        "for key in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs'):\n"
        "    print(key, int(status[key].strip(), 16))\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for name, flag in (('user', 0x10000000), ('mount', 0x20000), ('net', 0x40000000), ('pid', 0x20000000)):\n"
        "    print('MADE' if libc.unshare(flag) == 0 else 'refused', name, 'namespace')\n"
        "ok = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0\n"
        "print('MOUNTED' if ok else 'refused mount')\n"
    )
    r = run_py(sandbox, code)
    assert r.exit_code == 0, r.output
    values = dict(line.split() for line in r.output.splitlines() if line.startswith(("Cap", "NoNewPrivs")))
    assert values == {"CapInh": "0", "CapPrm": "0", "CapEff": "0", "CapBnd": "0", "CapAmb": "0", "NoNewPrivs": "1"}
    assert r.output.count("refused") == 5 and "MADE" not in r.output and "MOUNTED" not in r.output, r.output


def test_no_network(sandbox: Sandbox) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[object] = []
    server.settimeout(0.2)

    def serve() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not accepted:
            try:
                accepted.append(server.accept())
            except (TimeoutError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\n"
        "except OSError as e:\n"
        "    print('no host loopback', type(e).__name__)\n"
        "try:\n"
        "    print('RESOLVED', socket.getaddrinfo('pypi.org', 443))\n"
        "except OSError as e:\n"
        "    print('no dns', type(e).__name__)\n"
        "try:\n"
        "    socket.create_connection(('151.101.0.223', 443), timeout=3); print('CONNECTED OUT')\n"
        "except OSError as e:\n"
        "    print('no route', type(e).__name__)\n"
    )
    try:
        r = run_py(sandbox, code)
    finally:
        accepted.append("stop")
        thread.join()
        server.close()
    assert r.exit_code == 0, r.output
    assert "no host loopback" in r.output and "no dns" in r.output and "no route" in r.output, r.output
    assert accepted == ["stop"], "the host's server accepted a connection from the sandbox"


# -- limits ------------------------------------------------------------------------------------


def test_memory_bomb_is_killed(sandbox: Sandbox) -> None:
    code = "chunks = []\nwhile len(chunks) < 16:\n    chunks.append(b'x' * (16 << 20))\nprint('SURVIVED')\n"
    r = run_py(sandbox, code, memory_mb=128)  # 256 MB wanted
    assert r.exit_code != 0 and "SURVIVED" not in r.output
    if strict_oom(sandbox):
        assert r.oom_killed, r
    else:
        assert r.oom_killed or "MemoryError" in r.output, r


def test_cpu_share(sandbox: Sandbox) -> None:
    if not strict_oom(sandbox):
        pytest.skip("CPU shares need a cgroup: the local backend runs without root here")
    code = (
        "import os, time\n"
        "t = time.monotonic()\n"
        "while time.monotonic() - t < 1.5:\n"
        "    pass\n"
        "c = os.times()\n"
        "print('cpu', c.user + c.system)\n"
    )
    r = run_py(sandbox, code, cpus=0.25)
    assert r.exit_code == 0, r.output
    cpu = float(r.output.split()[1])
    assert 0.1 < cpu < 0.75, f"a busy loop of 1.5 s used {cpu:.2f} s of CPU under cpus=0.25"


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    token = f"forkbomb{uuid.uuid4().hex}"
    code = (
        f"# {token}\n"
        "import os\n"
        "told = False\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        if not told:\n"
        "            told = True; print('fork refused', flush=True)\n"
    )
    r = run_py(sandbox, code, pids=16, wall_clock_s=3, output_kb=16)
    assert r.timed_out and r.exit_code is None
    assert "fork refused" in r.output
    assert_gone(token)


def test_orphans_are_reaped(sandbox: Sandbox) -> None:
    """Orphans go to the sandbox's init, which must reap them, or their zombies would use up pids."""
    code = (
        "import os, time\n"
        "for _ in range(40):\n"  # 40 orphans, one at a time, under a limit of 12 processes
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        if os.fork() == 0:\n"
        "            os._exit(0)\n"  # the grandchild: an orphan once its parent is gone
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "    time.sleep(0.02)\n"
        "print('forked 40')\n"
    )
    r = run_py(sandbox, code, pids=12)
    assert r.exit_code == 0 and "forked 40" in r.output, r.output


def test_wall_clock_kills_the_whole_tree(sandbox: Sandbox) -> None:
    token = f"stubborn{uuid.uuid4().hex}"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    code = (
        "import signal, subprocess, time\n"
        f"child = subprocess.Popen(['/usr/bin/python3', '-c', {stubborn!r}, {token!r}], start_new_session=True)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('child', child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    t0 = time.monotonic()
    r = run_py(sandbox, code, wall_clock_s=2)
    assert r.timed_out and r.exit_code is None
    assert "child" in r.output
    assert time.monotonic() - t0 < 10
    assert_gone(token)


def test_huge_output_is_truncated_quickly(sandbox: Sandbox) -> None:
    code = "import os\nb = b'x' * (1 << 20)\nfor _ in range(1024):\n    os.write(1, b)\nprint('END')\n"
    r = run_py(sandbox, "import sys; print('START', flush=True)\n" + code, output_kb=64)
    assert r.exit_code == 0
    assert r.output_truncated
    assert r.output.startswith("START\nxxxx") and len(r.output) == 64 * 1024
    assert "END" not in r.output
    assert r.duration_s < 20


def test_tmp_is_private_and_limited(sandbox: Sandbox) -> None:
    code = (
        "import errno, os\n"
        "print('entries', os.listdir('/tmp'))\n"
        "try:\n"
        "    for i in range(8):\n"  # 8 x 4 MB into a 16 MB /tmp: the tmpfs size must stop it
        "        with open(f'/tmp/fill{i}', 'wb') as f:\n"
        "            f.write(b'x' * (4 << 20))\n"
        "    print('FILLED')\n"
        "except OSError as e:\n"
        "    print('full', errno.errorcode[e.errno])\n"
        "try:\n"
        "    with open('/tmp/big', 'wb') as f:\n"  # one file past disk_mb: RLIMIT_FSIZE or ENOSPC
        "        f.write(b'x' * (20 << 20))\n"
        "    print('BIG')\n"
        "except OSError as e:\n"
        "    print('big', errno.errorcode[e.errno])\n"
    )
    r = run_py(sandbox, code, disk_mb=16)
    assert r.exit_code == 0, r.output
    assert "entries []" in r.output
    assert "full ENOSPC" in r.output, r.output
    assert "big ENOSPC" in r.output or "big EFBIG" in r.output, r.output


def test_python_runtime_has_torch(sandbox: Sandbox) -> None:
    rt = sandbox.python()
    code = (
        f"import sys; sys.path[:0] = {rt.site_packages!r}\n"
        "import os, numpy, torch\n"
        "print('uid', os.getuid(), 'sum', torch.tensor([1, 2]).sum().item(), 'numpy', numpy.__version__)\n"
    )
    spec = SandboxSpec(argv=[*rt.argv, "-I", "-c", code], mounts=rt.mounts, env=rt.env,
                       memory_mb=1024, wall_clock_s=60)
    r = sandbox.run(spec)
    assert r.exit_code == 0, r.output
    assert f"uid {SANDBOX_UID} sum 3 numpy" in r.output


def test_cannot_harm_the_host(sandbox: Sandbox) -> None:
    """Signals from inside reach nothing outside, not even a host process of the sandbox's uid."""
    neighbour = None
    if os.geteuid() == 0 and shutil.which("setpriv"):
        neighbour = subprocess.Popen(["setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}",
                                      "--clear-groups", "/bin/sleep", "30"])
    code = (
        "import os, signal\n"
        "try:\n"
        "    os.setsid()\n"
        "except OSError:\n"
        "    pass\n"
        "for pid in (os.getppid(), 1):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL); print('sent', pid)\n"
        "    except OSError as e:\n"
        "        print('refused', pid, type(e).__name__)\n"
        "try:\n"
        "    os.kill(-1, signal.SIGKILL)\n"  # everything this uid may signal (but itself)
        "except OSError:\n"
        "    pass\n"
        "print('still here', flush=True)\n"
    )
    try:
        r = run_py(sandbox, code)
        assert r.exit_code == 0, r.output
        assert "still here" in r.output
        if neighbour is not None:
            assert neighbour.poll() is None, "a host process of uid 10001 was killed from the sandbox"
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def test_unreadable_read_only_mount_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("as a normal user the sandbox user maps to the caller, who can read its own files")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(LmcourseError, match="not readable by the sandbox user"):
        sandbox.start(SandboxSpec(argv=["/bin/true"], mounts=[Mount(private, "/data")]))


def test_mount_target_through_a_student_symlink_stays_inside(sandbox: Sandbox, tmp_path: Path) -> None:
    """A writable mount's content is the student's: a symlink there must not steer a later mount
    point onto the host (the unshare launcher builds the root as root, before pivot_root)."""
    work, victim, extra = tmp_path / "work", tmp_path / "victim", tmp_path / "extra"
    for d in (work, victim, extra):
        d.mkdir(mode=0o755)
    (work / "link").symlink_to(victim)
    spec = SandboxSpec(argv=["/bin/true"], wall_clock_s=20,
                       mounts=[Mount(work, "/work", writable=True), Mount(extra, "/work/link/planted")])
    try:
        sandbox.run(spec)  # refusing is fine, as is a mount point made inside the sandbox
    except LmcourseError:
        pass
    assert list(victim.iterdir()) == [], "a mount point was created on the host through the symlink"


# -- registry ----------------------------------------------------------------------------------


def test_local_picks_bubblewrap_where_present_else_unshare(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = "local-bwrap" if shutil.which("bwrap") else "local-unshare"
    assert make_sandbox("local").name == expected
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap to be found
    assert make_sandbox("local").name == "local-unshare"


def test_registry_refuses_unknown_and_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LmcourseError, match="unknown sandbox 'vm': choose one of local, docker, local-bwrap"):
        get_sandbox("vm")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    problem = DockerSandbox().unavailable()
    assert problem == "the docker sandbox needs a running Docker daemon (could not connect to /nonexistent/docker.sock)"
    with pytest.raises(LmcourseError, match="could not connect"):
        get_sandbox("docker")


def test_a_bare_interpreter_finds_the_packages_without_the_editable_finder(sandbox: Sandbox) -> None:
    """A child interpreter nobody configures (a multiprocessing fork server is a bare `python -I -c`)
    finds torch by itself; the venv's .pth files (an editable finder into the repository) are not read."""
    rt = sandbox.python()
    code = ("import sys, importlib.util\n"
            "print('torch', importlib.util.find_spec('torch').origin)\n"
            "print('finders', [type(f).__name__ for f in sys.meta_path])\n")
    r = sandbox.run(SandboxSpec(argv=[*rt.argv, "-I", "-c", code], mounts=rt.mounts, env=rt.env,
                                memory_mb=1024, wall_clock_s=60))
    assert r.exit_code == 0, r.output
    assert "torch /opt/lmcourse/site-packages/torch/" in r.output, r.output
    assert "Editable" not in r.output, r.output
