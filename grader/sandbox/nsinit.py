"""The first process of an ``unshare`` sandbox: builds its root, then runs the command as pid 2.

Run by :mod:`.unshare` as ``python -I -S nsinit.py FD`` right after ``unshare`` made new mount,
pid, net, ipc and uts namespaces (and, without root, a user namespace): it is pid 1 there. ``FD``
holds the plan (not argv, which ``/proc/1/cmdline`` would show the sandbox), plain data in
:mod:`marshal` format: the same interpreter writes and reads it, and unlike :mod:`json` it costs
no import. It imports only the standard library (``-I -S``: no site-packages, no environment),
reads the plan, and:

1. names the host ``sandbox`` and brings the loopback device up (the only network there is);
2. mounts a tmpfs on the plan's stage directory and builds the sandbox's root in it from the
   plan's ``layout`` (tmpfs, read-only binds, symlinks, files, ``/proc`` of this pid namespace,
   ``/dev/pts``), refusing to create a mount point through a symlink, then remounts it read-only;
3. ``pivot_root``\\ s into it and detaches the old root: nothing of the host is reachable after;
4. forks the command. The child leaves the session, drops supplementary groups (as root), enters
   a user namespace of its own in which uid/gid 10001 is mapped (pid 1 writes the map) and no
   further user namespace may be created, becomes 10001, drops every capability (effective,
   permitted, inheritable, ambient, bounding), sets no_new_privs and its rlimits, and ``exec``\\ s
   the command with exactly the plan's environment;
5. drops its own capabilities and reaps every process until the command exits, then exits with
   its status (128 + signal if killed). The kernel kills whatever is left in the pid namespace.

A failure before the command runs prints ``lmcourse sandbox: ...`` and exits 125.
"""

from __future__ import annotations

import ctypes
import fcntl
import marshal
import os
import resource
import signal
import socket
import struct
import sys
from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_RELATIME = 0x20, 0x1000, 0x200000
MNT_DETACH = 2
CLONE_NEWUSER = 0x10000000
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
SETUP_FAILED = 125
# Flags a bind remount must keep: in a user namespace the kernel refuses to clear them (EPERM).
KEPT_FLAGS = {os.ST_RDONLY: MS_RDONLY, os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
              os.ST_NOATIME: 0x400, os.ST_NODIRATIME: 0x800, os.ST_RELATIME: MS_RELATIME}

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
LIBC.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
LIBC.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
LIBC.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]


class SetupError(Exception):
    pass


def fail(message: str) -> None:
    os.write(2, f"lmcourse sandbox: {message}\n".encode(errors="replace"))
    os._exit(SETUP_FAILED)


def check(result: int, what: str) -> None:
    if result != 0:
        raise SetupError(f"{what}: {os.strerror(ctypes.get_errno())}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def c(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    check(LIBC.mount(c(source), target.encode(), c(fstype), flags, c(data)), f"mount {source or fstype} on {target}")


def prctl(option: int, arg: int, arg2: int = 0) -> None:
    check(LIBC.prctl(option, arg, arg2, 0, 0), f"prctl({option})")


def drop_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (capset with version 3: two words)."""
    header = ctypes.create_string_buffer(struct.pack("Ii", LINUX_CAPABILITY_VERSION_3, 0))
    data = ctypes.create_string_buffer(24)  # {effective, permitted, inheritable} x 2, all zero
    check(LIBC.capset(header, data), "capset")


# -- the root --------------------------------------------------------------------------------


def inside(stage: str, path: str) -> str:
    """``path`` of the sandbox as a path under ``stage``, refusing symlinks on the way: a
    writable mount's content belongs to the student, and the host's root is still ours."""
    full = stage
    for part in os.path.normpath(path).strip("/").split("/"):
        if not part:
            continue
        full = os.path.join(full, part)
        if os.path.islink(full):
            raise SetupError(f"the mount point {path} passes through a symlink")
    return full


def mount_point(path: str, directory: bool) -> None:
    if directory:
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))


def bind(source: str, target: str, writable: bool, device: bool) -> None:
    """Bind ``source`` (not recursively: no mount below it comes along), then remount it nosuid,
    read-only unless ``writable``, nodev unless ``device``, keeping what the kernel locks."""
    mount_point(target, os.path.isdir(source))
    mount(source, target, None, MS_BIND)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if writable else MS_RDONLY) | (0 if device else MS_NODEV)
    kept = os.statvfs(target).f_flag
    for st_flag, ms_flag in KEPT_FLAGS.items():
        if kept & st_flag:
            flags |= ms_flag
    mount(None, target, None, flags)


def build(stage: str, op: list[Any]) -> None:
    kind, path, *args = op
    target = inside(stage, path)
    if kind == "tmpfs":
        size, mode = args
        mount_point(target, True)
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode:o},size={size}")
    elif kind == "bind":
        bind(args[0], target, writable=args[1], device=args[2])
    elif kind == "symlink":
        os.symlink(args[0], target)
    elif kind == "file":
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        os.write(fd, args[0].encode())
        os.close(fd)
    elif kind == "dir":
        mount_point(target, True)
    elif kind == "proc":  # this pid namespace's processes only
        mount_point(target, True)
        mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    elif kind == "devpts":  # a private instance: no host terminals
        mount_point(target, True)
        mount("devpts", target, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    elif kind == "remount-ro":
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    else:
        raise SetupError(f"unknown layout step {kind!r}")


def pivot(stage: str, pivot_root: str) -> None:
    """Make ``stage`` the root and detach the host's (``pivot_root . .``, then unmount ``.``)."""
    os.chdir(stage)
    pid = os.fork()
    if pid == 0:  # util-linux's pivot_root: no syscall numbers to get wrong per architecture
        try:
            os.execv(pivot_root, [pivot_root, ".", "."])
        finally:
            os._exit(127)
    if os.waitpid(pid, 0)[1] != 0:
        raise SetupError("pivot_root failed")
    check(LIBC.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def setup(plan: dict[str, Any]) -> None:
    name = plan["hostname"].encode()
    check(LIBC.sethostname(name, len(name)), "sethostname")
    loopback_up()
    for op in plan["layout"]:
        build(plan["stage"], op)
    pivot(plan["stage"], plan["pivot_root"])


# -- the command -----------------------------------------------------------------------------


def become_sandbox_user(plan: dict[str, Any], ready: int, mapped: int) -> None:
    """In the child: a user namespace of its own (mapped by pid 1), then uid 10001, no privilege."""
    uid, gid = plan["uid"], plan["gid"]
    if plan["drop_groups"]:  # root's groups (gid 0) must not come along; without root: not allowed
        os.setgroups([])
    check(LIBC.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    os.write(ready, b"u")
    if os.read(mapped, 1) != b"m":
        raise SetupError("the sandbox's user namespace was not mapped")
    with open("/proc/sys/user/max_user_namespaces", "w") as f:  # the --disable-userns of bwrap
        f.write("0")
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    drop_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def run_command(plan: dict[str, Any], ready: int, mapped: int) -> None:
    """The child: never returns."""
    try:
        os.setsid()
        become_sandbox_user(plan, ready, mapped)
        for name, value in plan["rlimits"].items():
            limit = getattr(resource, f"RLIMIT_{name}")
            resource.setrlimit(limit, (value, value))
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):  # as a shell would leave them
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(plan["workdir"])
    except (OSError, SetupError) as exc:
        fail(str(exc))
    argv = plan["argv"]
    try:
        os.execvpe(argv[0], argv, plan["env"])
    except OSError as exc:
        os.write(2, f"lmcourse sandbox: cannot run {argv[0]}: {exc.strerror}\n".encode(errors="replace"))
    os._exit(127)


def map_user(pid: int, plan: dict[str, Any]) -> None:
    """Map the sandbox user of ``pid``'s new user namespace onto the outer sandbox identity."""
    for name, inner, outer in (("uid_map", plan["uid"], plan["outer_uid"]), ("gid_map", plan["gid"], plan["outer_gid"])):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, f"{inner} {outer} 1\n".encode())
        finally:
            os.close(fd)


def supervise(child: int) -> int:
    """Reap every process (orphans are re-parented to pid 1) until ``child`` exits: its status."""
    while True:
        pid, status = os.wait()
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def main() -> None:
    os.umask(0o022)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # pid 1 gets only the signals it handles: none
    fd = int(sys.argv[1])
    with os.fdopen(fd, "rb") as f:
        plan = marshal.loads(f.read())
    try:
        setup(plan)
    except (OSError, SetupError) as exc:
        fail(str(exc))
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(ready_r)
            os.close(mapped_w)
            run_command(plan, ready_w, mapped_r)
        finally:
            os._exit(SETUP_FAILED)  # whatever happened, never go on as a second pid 1
    os.close(ready_w)
    os.close(mapped_r)
    try:
        if os.read(ready_r, 1) == b"u":
            map_user(child, plan)
            os.write(mapped_w, b"m")
        drop_capabilities()  # keeps the parent-death signal, which a change of uid would clear
    except (OSError, SetupError) as exc:
        fail(str(exc))
    os.close(ready_r)
    os.close(mapped_w)
    os._exit(supervise(child))


if __name__ == "__main__":
    main()
