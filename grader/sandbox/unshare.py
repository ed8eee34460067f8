"""The util-linux launcher of the ``local`` backend (``local-unshare``): no bubblewrap needed.

One sandbox is one chain of ``exec``\\ s in a single host process, as with bubblewrap::

    [root only]  sh -c JOIN        joins the sandbox's cgroups (memory = swap, pids, CPU quota)
    setpriv --pdeathsig=KILL       dies with the grader (as bwrap's --die-with-parent)
    unshare --mount --pid --net    new namespaces (without root also --user --map-root-user:
            --ipc --uts            root there is the caller), a private mount propagation; it
            --kill-child           forks pid 1 of the new pid namespace and kills it when it dies
    python -I -S nsinit.py FD      pid 1 (:mod:`.nsinit`, standard library only): builds the root
                                   below in a tmpfs, pivot_root's into it, runs the command as uid
                                   10001 in a user namespace of its own, reaps, exits with its status

The plan it reads from FD (:mod:`marshal`) is the file system of the bubblewrap launcher, step
by step: a tmpfs root holding only ``/usr`` and ``/lib*`` (read-only binds or the host's
symlinks into /usr), a minimal ``/etc`` (the loader's files, ``passwd``/``group`` from
:mod:`.image`, ``hosts``), ``/proc`` of the new pid namespace, a ``/dev`` of six device nodes, a
private ``pts`` and a sized ``shm``, a sized private ``/tmp``, the spec's mounts (read-only unless
writable; nosuid, nodev), the workdir; then the root and ``/dev`` are remounted read-only. The
command gets RLIMIT_CORE=0, RLIMIT_FSIZE=disk_mb, RLIMIT_NPROC=pids (counted in its own user
namespace, so per sandbox) and, without a memory cgroup, RLIMIT_DATA=memory_mb.

As root, the mounts' sources need no staging (pid 1 mounts them before anything drops privileges)
and the sandbox user is the host's uid 10001 with no capability, no supplementary group and no
way to make a namespace. Without root it needs unprivileged user namespaces; the sandbox user is
then the caller, seen as 10001, and only rlimits bound memory and processes (as with bwrap).
"""

from __future__ import annotations

import marshal
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import LmcourseError
from .base import SandboxSpec
from .cgroup import CgroupV1
from .host import (
    DEVICES,
    ETC_FILES,
    HOSTS,
    MB,
    STAGE_DIR,
    SYSTEM_DIRS,
    HostSandbox,
    gpu_devices,
    memfd,
    missing_tools,
    needs_workdir,
    tool,
)
from .image import SANDBOX_GID, SANDBOX_UID, group_text, passwd_text

INIT = Path(__file__).with_name("nsinit.py")
JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"'
ROOT_SIZE = 1 * MB  # the root holds mount points and three small files
DEV_SIZE = 64 * 1024
TOOLS = ["sh", "setpriv", "unshare", "pivot_root"]


def stage_dir() -> Path:
    """An empty directory pid 1 mounts the new root on, inside its private mount namespace."""
    if os.geteuid() == 0:
        STAGE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        return STAGE_DIR
    path = Path("/tmp") / f"lmcourse-sandbox-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.geteuid():
        raise LmcourseError(f"the unshare sandbox needs {path} to be a directory of this user")
    return path


def layout(spec: SandboxSpec) -> list[list[Any]]:
    """The sandbox's file system, in the order :mod:`.nsinit` builds it.

    Each step is ``[kind, path inside the sandbox, *arguments]``: ``tmpfs`` (size, mode), ``bind``
    (host source, writable, device nodes allowed), ``symlink`` (what it points to), ``file``
    (text), ``dir``, ``proc``, ``devpts``, ``remount-ro``.
    """
    disk = spec.disk_mb * MB
    steps: list[list[Any]] = [["tmpfs", "/", ROOT_SIZE, 0o755], ["bind", "/usr", "/usr", False, False]]
    for name in SYSTEM_DIRS[1:]:
        path = Path("/") / name
        if path.is_symlink():
            steps.append(["symlink", f"/{name}", os.readlink(path)])
        elif path.is_dir():
            steps.append(["bind", f"/{name}", str(path), False, False])
    for name in ETC_FILES:
        if os.path.exists(f"/etc/{name}"):  # bwrap binds a symlink's target too (localtime)
            steps.append(["bind", f"/etc/{name}", os.path.realpath(f"/etc/{name}"), False, False])
    steps += [["file", "/etc/passwd", passwd_text()], ["file", "/etc/group", group_text()],
              ["file", "/etc/hosts", HOSTS], ["proc", "/proc"], ["tmpfs", "/dev", DEV_SIZE, 0o755]]
    steps += [["bind", f"/dev/{name}", f"/dev/{name}", True, True] for name in DEVICES]
    steps += [["symlink", "/dev/fd", "/proc/self/fd"], ["symlink", "/dev/stdin", "/proc/self/fd/0"],
              ["symlink", "/dev/stdout", "/proc/self/fd/1"], ["symlink", "/dev/stderr", "/proc/self/fd/2"],
              ["devpts", "/dev/pts"], ["symlink", "/dev/ptmx", "pts/ptmx"],
              ["tmpfs", "/dev/shm", disk, 0o1777], ["tmpfs", "/tmp", disk, 0o1777]]
    if spec.gpu:
        steps += [["bind", dev, dev, True, True] for dev in gpu_devices()]
        steps.append(["bind", "/sys", "/sys", False, False])  # the CUDA driver reads PCI topology from /sys
    steps += [["bind", m.target, str(m.source), m.writable, False] for m in spec.mounts]
    if needs_workdir(spec):  # as Docker does: a missing workdir is created (empty)
        steps.append(["dir", spec.workdir])
    return [*steps, ["remount-ro", "/dev"], ["remount-ro", "/"]]


class UnshareSandbox(HostSandbox):
    name = "local-unshare"

    def _probe(self) -> str | None:
        missing = missing_tools(TOOLS)
        if missing:
            return f"the unshare sandbox needs {', '.join(missing)} from util-linux in /usr/bin or /usr/sbin"
        if not sys.executable:
            return "the unshare sandbox needs the path of this Python interpreter (sys.executable is empty)"
        result = self._spawn(SandboxSpec(argv=["/usr/bin/true"], memory_mb=256, pids=8, disk_mb=1), None).wait(60)
        if result.exit_code == 0:
            return None
        lines = [ln.strip() for ln in result.output.splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {result.exit_code}"
        if os.geteuid() != 0:
            return f"the unshare sandbox needs root or unprivileged user namespaces, and failed here: {detail}"
        return f"the unshare sandbox cannot start here: {detail}"

    def _command(self, spec: SandboxSpec, cgroup: CgroupV1 | None, fds: list[int]) -> list[str]:
        root = os.geteuid() == 0
        cmd = ["/bin/sh", "-c", JOIN, "lmcourse-sandbox", *cgroup.procs_files(), "--"] if cgroup else []
        plan = marshal.dumps(self._plan(spec, cgroup, root))
        cmd += [tool("setpriv"), "--pdeathsig=KILL", "--",
                tool("unshare"), *([] if root else ["--user", "--map-root-user"]),
                "--mount", "--pid", "--net", "--ipc", "--uts", "--kill-child", "--propagation", "private", "--",
                sys.executable, "-I", "-S", str(INIT), memfd(fds, "plan", plan)]
        return cmd

    @staticmethod
    def _plan(spec: SandboxSpec, cgroup: CgroupV1 | None, root: bool) -> dict[str, Any]:
        rlimits = {"CORE": 0, "FSIZE": spec.disk_mb * MB, "NPROC": spec.pids}
        if cgroup is None:  # no memory cgroup: bound each process's heap at least
            rlimits["DATA"] = spec.memory_mb * MB
        return {
            "hostname": "sandbox",
            "stage": str(stage_dir()),
            "layout": layout(spec),
            "pivot_root": tool("pivot_root"),
            "uid": SANDBOX_UID,
            "gid": SANDBOX_GID,
            # whom 10001 maps to outside: the host's 10001 as root, else root of unshare's
            # user namespace, which is the caller
            "outer_uid": SANDBOX_UID if root else 0,
            "outer_gid": SANDBOX_GID if root else 0,
            "drop_groups": root,
            "rlimits": rlimits,
            "workdir": spec.workdir,
            "env": spec.env,
            "argv": spec.argv,
        }
