"""The ``docker`` backend: one throw-away container per run, through the Docker SDK.

Every limit of :class:`~.base.SandboxSpec` maps onto a container setting the daemon enforces:

==============  ===================================================================================
network         ``network_mode="none"``: a loopback of its own, no route to the host's
user            ``user="10001:10001"`` (``grader`` in the image), ``cap_drop=ALL``,
                ``no-new-privileges``
files           ``read_only=True`` root from ``lmcourse-grader:cpu`` (no host files at all), the
                spec's mounts as binds (``ro`` unless writable), ``/tmp`` a tmpfs of ``disk_mb``,
                ``/dev/shm`` of the same size, RLIMIT_FSIZE = ``disk_mb``, no core files
memory          ``mem_limit`` = ``memswap_limit`` (swap included); OOM read from
                ``State.OOMKilled``
processes       ``pids_limit`` (a per-container cgroup; RLIMIT_NPROC would count every container's
                uid-10001 processes together, so it is not used here)
cpu             ``nano_cpus``
environment     ``sh -c WRAPPER ... env -i -- K=V... argv``: Docker adds PATH, HOSTNAME
                and HOME to every container; ``env -i`` leaves exactly the spec's variables (and
                stderr shares stdout's pipe, so their order is kept)
wall clock      ``container.wait(timeout)`` then ``container.kill()``: every process in the
                container dies with its pid namespace (``init=True`` reaps zombies meanwhile);
                a watchdog inside is a backstop for when the grader itself dies
output          the ``none`` log driver (nothing is written to the host's disk) and an attached
                stream read by a thread, kept up to ``output_kb``; past the cap the stream is
                closed and the daemon discards the rest without blocking the container
==============  ===================================================================================
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import LmcourseError
from .base import PythonRuntime, Sandbox, SandboxProcess, SandboxResult, SandboxSpec
from .image import (
    SANDBOX_GID,
    SANDBOX_UID,
    hand_over_mounts,
    host_python_runtime,
    image_name,
    validate_spec,
)
from .output import OutputCollector

LABEL = "lmcourse.sandbox"
# Run as pid 2 under docker-init: a background watchdog kills everything after the backstop (kill
# -1 spares only pid 1, which then exits with its child), and stderr joins stdout's pipe.
WRAPPER = 'n=$1; shift; (sleep "$n"; kill -KILL -1) </dev/null >/dev/null 2>&1 & exec "$@" 2>&1'


def backstop_s(spec: SandboxSpec) -> int:
    """The container kills itself after this long, should the grader die and never kill it.

    ``wait`` enforces the wall clock; this only bounds how long an orphaned container can run
    (the local backend needs none: its launchers die with their parent). Generous, so that a caller who
    waits somewhat longer than ``wall_clock_s`` is not cut short.
    """
    return math.ceil(2 * spec.wall_clock_s + 60)


def _socket_description() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host else "/var/run/docker.sock"


class DockerProcess(SandboxProcess):
    def __init__(self, container: Any, stream: Any, output_kb: int) -> None:
        super().__init__()
        self._container = container
        self._stream = stream
        self._started = time.monotonic()
        self._output = OutputCollector(output_kb * 1024)
        self._reader = threading.Thread(target=self._read, name="lmcourse-docker-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for chunk in self._stream:
                if not self._output.feed(chunk):
                    break  # past the cap: the daemon drops what nobody is attached to
        except Exception:  # noqa: BLE001, S110 -- the connection drops when the container is killed
            pass
        finally:
            self._stream.close()

    def alive(self) -> bool:
        import docker

        try:
            self._container.reload()
        except docker.errors.NotFound:
            return False
        return bool(self._container.status in ("created", "running", "restarting"))

    def kill(self) -> None:
        import docker

        try:
            self._container.kill()
        except (docker.errors.NotFound, docker.errors.APIError):
            pass  # already stopped (409) or removed: killing is idempotent

    def _wait(self, timeout: float | None) -> SandboxResult:
        import docker
        import requests

        timed_out = False
        try:
            status = self._container.wait(timeout=timeout)
        except requests.exceptions.RequestException:  # read timeout: the wall clock ran out
            timed_out = True
            self.kill()
            status = self._container.wait()
        duration = time.monotonic() - self._started
        self._reader.join(10)
        try:
            self._container.reload()
            oom = bool(self._container.attrs["State"].get("OOMKilled"))
        except docker.errors.NotFound:
            oom = False
        try:
            self._container.remove(force=True)
        except docker.errors.APIError:
            pass
        text, truncated = self._output.result()
        return SandboxResult(
            exit_code=None if timed_out else int(status.get("StatusCode", -1)),
            output=text,
            output_truncated=truncated,
            timed_out=timed_out,
            oom_killed=oom,
            duration_s=duration,
        )


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def _docker(self) -> Any:
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=30)
        return self._client

    def cleanup(self, under: Path) -> None:
        """Remove this grader's containers that mount anything under ``under``, running or not."""
        import docker

        prefix = str(under.resolve())
        for container in self._docker().containers.list(all=True, filters={"label": LABEL}, ignore_removed=True):
            sources = [m.get("Source", "") for m in container.attrs.get("Mounts", [])]
            if any(src == prefix or src.startswith(prefix + "/") for src in sources):
                try:
                    container.remove(force=True)
                except (docker.errors.NotFound, docker.errors.APIError):
                    pass  # removed meanwhile (auto-remove, another cleanup): nothing left to do

    def unavailable(self) -> str | None:
        try:
            import docker
        except ImportError:
            return "the docker sandbox needs the Docker SDK for Python (pip install 'docker>=7')"
        import requests

        try:
            client = self._docker()
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            self._client = None
            return f"the docker sandbox needs a running Docker daemon (could not connect to {_socket_description()})"
        try:
            client.images.get(image_name("cpu"))
        except docker.errors.ImageNotFound:
            return f"the docker sandbox needs the image {image_name('cpu')}: run `lmcourse image build`"
        return None

    def python(self) -> PythonRuntime:
        return host_python_runtime()

    def start(self, spec: SandboxSpec) -> SandboxProcess:
        import docker
        from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

        validate_spec(spec)
        client = self._docker()
        image = image_name("cuda" if spec.gpu else "cpu")
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            hint = " --kind cuda (on a GPU host that can pull nvidia/cuda)" if spec.gpu else ""
            raise LmcourseError(f"the docker image {image} is missing: run `lmcourse image build{hint}`") from None
        hand_over_mounts(spec.mounts)
        disk = spec.disk_mb * 1024 * 1024
        memory = f"{spec.memory_mb}m"
        container = client.containers.create(
            image,
            # one pipe for both streams, as in the local backend: Docker keeps stdout and stderr
            # apart and loses their relative order otherwise
            command=["/bin/sh", "-c", WRAPPER, "sh", str(backstop_s(spec)),
                     "/usr/bin/env", "-i", "--", *(f"{k}={v}" for k, v in spec.env.items()), *spec.argv],
            entrypoint=[],
            user=f"{SANDBOX_UID}:{SANDBOX_GID}",
            group_add=[],
            hostname="sandbox",
            working_dir=spec.workdir,
            network_mode="none",
            read_only=True,
            init=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ipc_mode="private",
            mem_limit=memory,
            memswap_limit=memory,
            pids_limit=spec.pids,
            nano_cpus=int(spec.cpus * 1e9),
            tmpfs={"/tmp": f"size={spec.disk_mb}m,mode=1777"},
            shm_size=disk,
            ulimits=[Ulimit(name="core", soft=0, hard=0), Ulimit(name="fsize", soft=disk, hard=disk)],
            mounts=[
                Mount(m.target, str(m.source), type="bind", read_only=not m.writable) for m in spec.mounts
            ],
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if spec.gpu else None,
            log_config=LogConfig(type="none"),
            labels={LABEL: "1"},
            stdin_open=False,
            tty=False,
        )
        try:
            stream = container.attach(stdout=True, stderr=True, stream=True, logs=False)
            container.start()
        except BaseException:
            container.remove(force=True)
            raise
        return DockerProcess(container, stream, spec.output_kb)
