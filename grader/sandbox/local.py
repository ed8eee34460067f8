"""The ``local`` backend: sandboxes without a daemon, through one of two launchers.

``--sandbox local`` uses bubblewrap where ``bwrap`` is on PATH (:mod:`.bwrap`, ``local-bwrap``),
else util-linux's ``unshare`` with a small pid-1 program (:mod:`.unshare`, ``local-unshare``).
Where the chosen launcher cannot run, it says why in one sentence and nothing runs: there is no
unsandboxed fallback. Both names can also be asked for directly (tests, benchmarks).

Both give the same guarantees (:mod:`.host` holds what they share):

- files: a tmpfs root holding only the system directories (read-only), a minimal ``/etc``
  (``passwd``/``group`` naming only root, the grader user and nobody), ``/proc`` of a new pid
  namespace, a minimal ``/dev``, sized private tmpfs ``/tmp`` and ``/dev/shm``, the spec's mounts
  (read-only unless writable); the root read-only; nothing else of the host (no ``/root``,
  ``/home``, ``/etc/shadow``, hidden tests, repository);
- namespaces: new mount, pid, net (loopback only, not the host's), ipc and uts namespaces, and a
  user namespace in which no further user namespace may be created;
- user: uid/gid 10001, no supplementary groups (as root), no capabilities, no_new_privs;
- limits: as root, a cgroup v1 each for memory (= swap), pids and CPU quota; rlimits core 0,
  fsize = disk_mb, nproc = pids (per sandbox); without root (no cgroup) RLIMIT_DATA = memory_mb;
- life: the wall clock kills the process group and the pid namespace (everything in it) and
  sweeps the cgroup; the sandbox dies with the grader; output is capped and drained.

They differ in how: bubblewrap builds the namespaces as uid 10001 in an unprivileged user
namespace (so it needs those, and bubblewrap >= 0.8); ``unshare`` builds them as root (or, without
root, in an unprivileged user namespace) and drops to 10001 before the command runs.
"""

from __future__ import annotations

import shutil

from .host import HostSandbox


def local_sandbox() -> HostSandbox:
    """The launcher ``--sandbox local`` uses on this host: bubblewrap where present, else unshare."""
    if shutil.which("bwrap"):
        from .bwrap import BwrapSandbox

        return BwrapSandbox()
    from .unshare import UnshareSandbox

    return UnshareSandbox()
