"""What a sandbox looks like from the inside, the same for every backend, and the Docker images.

Both backends run student code as the same unprivileged user (uid/gid 10001, ``grader``) and
mount the grader's own Python at the same paths, so a grading script behaves the same whichever
backend runs it:

- ``/opt/lmcourse/python``: the host interpreter's ``sys.base_prefix`` (a pyenv build under
  ``/root``, mode 700, that the sandbox user could never reach where it lies), read-only.
  The interpreter finds its standard library relative to its own path; ``libpython3.11.so`` is
  found through ``LD_LIBRARY_PATH``, which the interpreter's RUNPATH (an absolute host path that
  does not exist inside) does not override.
- ``/opt/lmcourse/site-packages``: the venv's site-packages (torch, numpy, safetensors), read-only.
- the interpreter's own site-packages (``/opt/lmcourse/python/lib/python3.11/site-packages``):
  replaced by ``python_site/``, which holds one ``.pth`` file naming the folder above. Every
  interpreter started in the sandbox then finds the venv's packages by itself, ``python -I``
  included: a worker's fork server (``multiprocessing`` starts it as a bare ``python -I -c ...``
  that never applies its parent's ``sys.path``) preloads torch once instead of every rank
  importing it. As in the venv, the base interpreter's own packages are not seen; the venv's
  ``.pth`` files are never read, so an editable install's finder (which knows where the
  repository lies on the host) is not installed inside.

Docker images: there is no image registry. ``scripts/install-sandboxes.sh`` builds the base image
``lmcourse-base:bookworm`` offline (debootstrap + ``docker import``); :func:`build_image` builds
``lmcourse-grader:cpu`` on top of it from ``templates/docker/Dockerfile.cpu`` without any network.
``Dockerfile.cuda`` starts from an ``nvidia/cuda`` image and so needs a registry: it is built on
production GPU hosts, never here.
"""

from __future__ import annotations

import importlib.resources
import io
import os
import posixpath
import site
import stat
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import Any, Literal

from ..errors import LmcourseError
from .base import Mount, PythonRuntime, SandboxSpec

SANDBOX_UID = 10001
SANDBOX_GID = 10001
SANDBOX_USER = "grader"

RUNTIME_ROOT = "/opt/lmcourse"
PYTHON_TARGET = f"{RUNTIME_ROOT}/python"
SITE_PACKAGES_TARGET = f"{RUNTIME_ROOT}/site-packages"
#: Mounted over the interpreter's own site-packages: one .pth naming SITE_PACKAGES_TARGET and its
#: "-1" sibling (a venv's second folder, where platlib differs from purelib).
PYTHON_SITE = Path(__file__).with_name("python_site")

BASE_IMAGE = "lmcourse-base:bookworm"
ImageKind = Literal["cpu", "cuda"]


def image_name(kind: ImageKind) -> str:
    return f"lmcourse-grader:{kind}"


def host_python_runtime() -> PythonRuntime:
    """The running interpreter and its venv's packages, relocated under ``/opt/lmcourse``.

    Every backend returns this from ``python()``: the same interpreter as the grader's (not the
    image's ``/usr/bin/python3``), so a student's code meets exactly the torch the tests were
    written against.
    """
    base = Path(sys.base_prefix).resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    mounts = [Mount(base, PYTHON_TARGET)]
    site_packages: list[str] = []
    if Path(sys.prefix).resolve() != base:  # a venv: its packages live outside the base prefix
        paths = sysconfig.get_paths(vars={"base": sys.prefix, "platbase": sys.prefix})
        dirs = dict.fromkeys(Path(paths[k]).resolve() for k in ("purelib", "platlib"))
        for i, d in enumerate(d for d in dirs if d.is_dir()):
            target = SITE_PACKAGES_TARGET if i == 0 else f"{SITE_PACKAGES_TARGET}-{i}"
            mounts.append(Mount(d, target))
            site_packages.append(target)
        # python_site/ over the folders the interpreter reads by itself (site.py's rule for its prefix)
        for default in dict.fromkeys(site.getsitepackages([str(base)])):
            if Path(default).is_dir():
                mounts.append(Mount(PYTHON_SITE, f"{PYTHON_TARGET}/{Path(default).relative_to(base)}"))
    else:
        site_packages.append(f"{PYTHON_TARGET}/lib/{version}/site-packages")
    return PythonRuntime(
        argv=[f"{PYTHON_TARGET}/bin/{version}"],
        mounts=mounts,
        env={"LD_LIBRARY_PATH": f"{PYTHON_TARGET}/lib", "PYTHONDONTWRITEBYTECODE": "1"},
        site_packages=site_packages,
    )


def validate_spec(spec: SandboxSpec) -> None:
    """Refuse a spec that no backend could honour exactly, in one sentence."""
    if not spec.argv or not all(isinstance(a, str) for a in spec.argv):
        raise LmcourseError("a sandbox needs a non-empty argv of strings")
    if "=" in spec.argv[0]:  # `env -i -- K=V... argv` would read it as a variable
        raise LmcourseError(f"the sandbox command {spec.argv[0]!r} must not contain '='")
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise LmcourseError(f"invalid sandbox environment variable {key!r}")
    for name in ("memory_mb", "pids", "disk_mb", "output_kb"):
        if getattr(spec, name) <= 0:
            raise LmcourseError(f"the sandbox's {name} must be positive, not {getattr(spec, name)}")
    if spec.cpus <= 0 or spec.wall_clock_s <= 0:
        raise LmcourseError("the sandbox's cpus and wall_clock_s must be positive")
    if not posixpath.isabs(spec.workdir):
        raise LmcourseError(f"the sandbox workdir must be absolute, not {spec.workdir!r}")
    for m in spec.mounts:
        target = posixpath.normpath(m.target)
        if not posixpath.isabs(m.target) or target == "/" or target.split("/")[1] in ("proc", "dev"):
            raise LmcourseError(f"cannot mount onto {m.target!r} in a sandbox")
        if not Path(m.source).exists():
            raise LmcourseError(f"the mount source {m.source} does not exist")


def hand_over_mounts(mounts: list[Mount]) -> None:
    """Make the mounts usable by the sandbox user, or say why they are not.

    As root, a writable mount's tree is chowned to uid 10001 (that is what writable means: the
    student's code owns it from now on; symlinks are not followed), and a read-only mount's top
    must be readable by others, else the student would meet a confusing PermissionError.
    Without root (local backend, unprivileged), uid 10001 inside maps to the caller, who owns
    its files: nothing to do.
    """
    if os.geteuid() != 0:
        return
    for m in mounts:
        src = Path(m.source)
        if m.writable:
            for path in _walk_no_follow(src):
                os.chown(path, SANDBOX_UID, SANDBOX_GID, follow_symlinks=False)
            continue
        st = src.stat()
        need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
        if st.st_uid != SANDBOX_UID and st.st_mode & need != need:
            raise LmcourseError(
                f"the read-only mount {src} is not readable by the sandbox user (uid {SANDBOX_UID}): "
                "make it readable by others (chmod o+rX)"
            )


def _walk_no_follow(root: Path) -> list[str]:
    paths = [str(root)]
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    return paths


def passwd_text() -> str:
    """The ``/etc/passwd`` a sandbox sees: root, nobody and the grader user, nothing of the host."""
    return (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}:grader:/tmp:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )


def group_text() -> str:
    return f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n"


def dockerfile(kind: ImageKind) -> str:
    """The text of ``templates/docker/Dockerfile.<kind>`` (packaged with ``lmcourse.templates``)."""
    res = importlib.resources.files("lmcourse.templates").joinpath("docker", f"Dockerfile.{kind}")
    try:
        return res.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LmcourseError(f"the Docker template Dockerfile.{kind} is missing from lmcourse.templates") from None


def build_image(kind: ImageKind = "cpu", *, client: Any | None = None) -> str:
    """Build ``lmcourse-grader:<kind>`` and return its tag.

    The build context holds the Dockerfile only and is streamed to the daemon; the build runs with
    ``network_mode="none"`` and ``pull=False`` because nothing here may depend on a registry.
    """
    import docker  # the SDK is only needed for the docker backend

    dc = client if client is not None else docker.from_env()
    text = dockerfile(kind)
    if kind == "cpu":
        try:
            dc.images.get(BASE_IMAGE)
        except docker.errors.ImageNotFound:
            raise LmcourseError(
                f"the base image {BASE_IMAGE} is missing: run scripts/install-sandboxes.sh "
                "(it builds it offline with debootstrap)"
            ) from None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    tag = image_name(kind)
    try:
        dc.images.build(
            fileobj=buf, custom_context=True, tag=tag, network_mode="none", pull=False, rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        log = "".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)
        raise LmcourseError(f"building {tag} failed: {exc.msg}\n{log.strip()}") from None
    except docker.errors.APIError as exc:
        raise LmcourseError(f"building {tag} failed: {exc.explanation or exc}") from None
    return tag


def main(argv: list[str] | None = None) -> int:
    """``python -m lmcourse.grader.sandbox.image [cpu|cuda]``: used by install-sandboxes.sh."""
    args = sys.argv[1:] if argv is None else argv
    kind = args[0] if args else "cpu"
    if kind not in ("cpu", "cuda"):
        print(f"usage: python -m lmcourse.grader.sandbox.image [cpu|cuda] (got {kind!r})", file=sys.stderr)
        return 2
    try:
        print(f"built {build_image(kind)}")  # type: ignore[arg-type]
    except LmcourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
