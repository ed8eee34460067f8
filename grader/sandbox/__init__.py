"""Sandbox backends behind one narrow interface (as Tango's VMMS): start a command with these
mounts and limits, wait for it or kill it, get its exit status and capped output.

- :mod:`.base` -- the interface: :class:`Mount`, :class:`SandboxSpec`, :class:`SandboxResult`,
  :class:`Sandbox`, :class:`SandboxProcess`
- :mod:`.local` -- bubblewrap where present, else ``unshare`` + rlimits + cgroup v1
- :mod:`.docker` -- the Docker Engine through the ``docker`` SDK
"""
