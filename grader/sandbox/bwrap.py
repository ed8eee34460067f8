"""The bubblewrap launcher of the ``local`` backend (``local-bwrap``).

One sandbox is one chain of ``exec``s in a single host process (so killing its process group and
cgroup kills everything), then ``bwrap``'s namespaces::

    [root only]  unshare --mount   a private mount namespace for the steps below
                 sh -c SHIM        joins the sandbox's cgroups, bind-mounts each mount source under
                                   /run/lmcourse-sandbox/N (sources may sit under /root, mode 700,
                                   where the sandbox user could not reach them)
                 setpriv           drops to uid/gid 10001, no groups, no new privileges
    prlimit                        RLIMIT_CORE=0, RLIMIT_FSIZE=disk_mb (RLIMIT_DATA without cgroups)
    bwrap                          new user/pid/net/ipc/uts/cgroup/mount namespaces; a tmpfs root
                                   holding only /usr, /bin, /lib*, a minimal /etc, /proc, /dev, a
                                   sized tmpfs /tmp and /dev/shm, the spec's mounts; root and /dev
                                   remounted read-only; loopback only (not the host's); no further
                                   user namespaces (``--disable-userns``)
    env -i -- K=V ...              exactly the spec's environment (bwrap adds PWD, docker adds more)
    prlimit --nproc=pids           RLIMIT_NPROC, counted per user namespace, so per sandbox
    argv

``bwrap`` itself runs unprivileged even when the grader is root: the namespaces are then created by
uid 10001 and nothing inside holds a capability of the host. Without root (a developer's laptop)
the same chain runs without the first three steps, and only the rlimits bound memory and
processes. It needs bubblewrap >= 0.8 and unprivileged user namespaces; where either is missing,
the ``local`` backend uses the :mod:`.unshare` launcher instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .base import SandboxSpec
from .cgroup import CgroupV1
from .host import (
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

MIN_BWRAP = (0, 8, 0)  # --size (sized tmpfs) and --disable-userns
SHIM = r"""set -e
stage=$1; shift
while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift
mount -t tmpfs -o mode=0755,size=64k lmcourse-stage "$stage"
i=0
while [ "$1" != -- ]; do
  if [ -d "$1" ]; then mkdir "$stage/$i"; else : > "$stage/$i"; fi
  mount --bind "$1" "$stage/$i"
  i=$((i+1)); shift
done; shift
exec "$@"
"""


class BwrapSandbox(HostSandbox):
    name = "local-bwrap"

    def __init__(self) -> None:
        super().__init__()
        self._bwrap = shutil.which("bwrap")

    def _probe(self) -> str | None:
        if self._bwrap is None:
            return "the bubblewrap sandbox needs bwrap on PATH (apt-get install bubblewrap)"
        out = subprocess.run([self._bwrap, "--version"], capture_output=True, text=True, check=False).stdout
        m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
        if not m or tuple(map(int, m.groups())) < MIN_BWRAP:
            return f"the bubblewrap sandbox needs bubblewrap >= 0.8.0 (for a sized /tmp), found {out.strip()!r}"
        missing = missing_tools(["env", "prlimit"] + (["unshare", "setpriv", "mount"] if os.geteuid() == 0 else []))
        if missing:
            return f"the bubblewrap sandbox needs {', '.join(missing)} from util-linux/coreutils in /usr/bin"
        # Probe what a real start does: a fresh /proc and /dev (a container may mask /proc), and
        # as root the private mount namespace the mounts are staged in (needs CAP_SYS_ADMIN).
        probe = subprocess.run(
            [self._bwrap, "--unshare-all", "--unshare-user", "--ro-bind", "/usr", "/usr",
             *self._system_dirs(), "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"],
            capture_output=True, text=True, env={}, check=False,
        )
        if probe.returncode != 0:
            return f"bubblewrap cannot create namespaces here: {probe.stderr.strip() or probe.returncode}"
        if os.geteuid() == 0:
            staged = subprocess.run(["unshare", "--mount", "/usr/bin/true"], capture_output=True, text=True, check=False)
            if staged.returncode != 0:
                return f"the bubblewrap sandbox cannot make a private mount namespace here: {staged.stderr.strip() or staged.returncode}"
        return None

    def _command(self, spec: SandboxSpec, cgroup: CgroupV1 | None, fds: list[int]) -> list[str]:
        cmd: list[str] = []
        if os.geteuid() == 0:  # see the module docstring: stage the sources, join cgroups, drop to 10001
            STAGE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
            cmd += [tool("unshare"), "--mount", "--propagation", "private", "--",
                    "/bin/sh", "-c", SHIM, "lmcourse-sandbox", str(STAGE_DIR),
                    *(cgroup.procs_files() if cgroup else []), "--",
                    *(str(m.source) for m in spec.mounts), "--",
                    tool("setpriv"), f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}",
                    "--clear-groups", "--no-new-privs", "--"]
            sources = [str(STAGE_DIR / str(i)) for i in range(len(spec.mounts))]
        else:
            sources = [str(m.source) for m in spec.mounts]
        cmd += [tool("prlimit"), "--core=0", f"--fsize={spec.disk_mb * MB}"]
        if cgroup is None:  # no memory cgroup: bound each process's heap at least
            cmd.append(f"--data={spec.memory_mb * MB}")
        cmd += ["--", self._bwrap or "bwrap",
                "--unshare-all", "--unshare-user", "--disable-userns",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", "sandbox",
                "--die-with-parent", "--new-session", "--clearenv",
                "--ro-bind", "/usr", "/usr", *self._system_dirs()]
        for name in ETC_FILES:
            if os.path.exists(f"/etc/{name}"):
                cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        cmd += ["--ro-bind-data", memfd(fds, "passwd", passwd_text()), "/etc/passwd",
                "--ro-bind-data", memfd(fds, "group", group_text()), "/etc/group",
                "--ro-bind-data", memfd(fds, "hosts", HOSTS), "/etc/hosts",
                "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(spec.disk_mb * MB), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(spec.disk_mb * MB), "--tmpfs", "/dev/shm"]
        if spec.gpu:
            for dev in gpu_devices():
                cmd += ["--dev-bind", dev, dev]
            cmd += ["--ro-bind", "/sys", "/sys"]  # the CUDA driver reads PCI topology from /sys
        for m, src in zip(spec.mounts, sources):
            cmd += ["--bind" if m.writable else "--ro-bind", src, m.target]
        if needs_workdir(spec):  # as Docker does: a missing workdir is created (empty)
            cmd += ["--dir", spec.workdir]
        # /dev is a tmpfs of the sandbox user without a size: read-only, as the root (not /dev/shm)
        cmd += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", spec.workdir, "--",
                tool("env"), "-i", "--", *(f"{k}={v}" for k, v in spec.env.items()),
                tool("prlimit"), f"--nproc={spec.pids}", "--", *spec.argv]
        return cmd

    @staticmethod
    def _system_dirs() -> list[str]:
        """``/bin``, ``/lib``... as on the host: symlinks into /usr (merged /usr) or read-only binds."""
        args: list[str] = []
        for name in SYSTEM_DIRS[1:]:
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        return args
