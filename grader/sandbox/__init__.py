"""Sandbox backends behind one narrow interface (as Tango's VMMS): start a command with these
mounts and limits, wait for it or kill it, get its exit status and capped output.

- :mod:`.base` -- the interface: :class:`Mount`, :class:`SandboxSpec`, :class:`SandboxResult`,
  :class:`Sandbox`, :class:`SandboxProcess`
- :mod:`.registry` -- a backend by name (``local``, ``docker``, or a launcher by its own name)
- :mod:`.local` -- no daemon: bubblewrap where present (:mod:`.bwrap`), else ``unshare`` + a
  pid-1 program (:mod:`.unshare`, :mod:`.nsinit`); what they share is in :mod:`.host`
  (process tree), :mod:`.cgroup` (cgroup v1 limits) and :mod:`.output` (capped output)
- :mod:`.docker` -- the Docker Engine through the ``docker`` SDK
- :mod:`.image` -- the sandbox user, the grader's Python inside, spec checks, Docker images
"""
