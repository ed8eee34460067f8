"""``lmcourse gradescope export``: the autograder zip Gradescope runs, wrapping ``lmcourse grade``.

The zip holds, at its top (Gradescope unpacks it into ``/autograder/source``):

- ``setup.sh`` -- run once when Gradescope builds its image (with network): Python >= 3.11 in a
  venv at ``/autograder/venv``, bubblewrap and util-linux for the ``local`` sandbox, the toolkit
  wheel below, and ``requirements.txt``;
- ``run_autograder`` -- run for each submission: reads ``created_at`` from
  ``/autograder/submission_metadata.json``, runs ``lmcourse grade`` on
  ``/autograder/submission`` in the sandbox, and copies its ``results.json`` to
  ``/autograder/results/``. Whatever goes wrong, it still writes a valid ``results.json``
  (score 0, one line saying why): the file is never missing;
- ``lmcourse-<version>-py3-none-any.whl`` -- the toolkit, built from the checkout the running
  ``lmcourse`` is installed from and cached by a hash of its sources;
- ``requirements.txt`` -- the unit's dependencies (``unit.yaml``), plus torch;
- ``course/`` -- only what grading reads: ``course.yaml``, ``assignments/<unit>/unit.yaml``,
  ``tests/**`` (hidden tests included: the bundle is for staff and Gradescope only; the staff
  ``adapters.py`` left out: it is solution code, and grading runs the student's) and
  ``fixtures/**``, and the reference packages of the units this one ships un-stripped (with their
  ``unit.yaml``). Never this unit's own reference: grading does not need it.

Same inputs, same bytes: the zip is written by :func:`~.handout.archive.write_zip` (sorted
entries, fixed timestamps) and the wheel is built with ``SOURCE_DATE_EPOCH`` and then reused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

from . import __version__
from .course import COURSE_FILE, Unit
from .errors import LmcourseError
from .handout.archive import write_zip
from .handout.files import walk
from .templating import render_template

log = logging.getLogger(__name__)

SANDBOXES = ("local", "docker")
SETUP_TEMPLATE = "gradescope/setup.sh.j2"
RUN_TEMPLATE = "gradescope/run_autograder.j2"
REQUIREMENTS = "requirements.txt"
COURSE_DIR = "course"
ADAPTERS = "adapters.py"
#: CPU wheels: Gradescope's machines have no GPU, and CUDA wheels would add gigabytes to the image.
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
#: ``run_autograder`` stops ``lmcourse grade`` this long after the unit's total time limit (intake,
#: starting workers, scoring), so that it can still write a results.json before Gradescope kills it.
OUTER_MARGIN_S = 120
MIN_PYTHON = (3, 11)
MIN_BWRAP = "0.8.0"
CACHE_ENV = "LMCOURSE_CACHE"
#: The zip epoch as a Unix time (1980-01-01): every timestamp in the wheel.
SOURCE_DATE_EPOCH = "315532800"

BundleEntry = tuple[PurePosixPath, bytes, bool]


def bundle_name(unit: Unit) -> str:
    return f"{unit.name}-gradescope.zip"


def export(unit: Unit, out_dir: Path, *, sandbox: str = "local", workers: int = 1, wheel: Path | None = None) -> Path:
    """Write ``<out_dir>/<unit>-gradescope.zip`` and return its path.

    ``sandbox`` is the backend ``run_autograder`` grades with (``local``: bubblewrap, the only one
    that works inside Gradescope's own container). ``workers`` is ``lmcourse grade -n``: tests run
    in parallel, each worker with its own sandbox (Gradescope's default machine has half a CPU and
    768 MB, hence 1). ``wheel`` is a prebuilt toolkit wheel; by default one is built from the
    source checkout of the running ``lmcourse``.
    """
    entries = bundle_entries(unit, sandbox=sandbox, workers=workers, wheel=wheel)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / bundle_name(unit)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=out_dir)
    os.close(fd)
    try:
        write_zip(Path(tmp), entries)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote %s (%d files)", path, len(entries))
    return path


def summary(path: Path) -> dict[str, object]:
    """What ``lmcourse gradescope export --json`` prints about a written bundle."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return {
        "zip": str(path),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "files": len(names),
        "wheel": next((n for n in names if "/" not in n and n.endswith(".whl")), None),
        "course_files": sorted(n for n in names if n.startswith(f"{COURSE_DIR}/")),
    }


def bundle_entries(unit: Unit, *, sandbox: str = "local", workers: int = 1, wheel: Path | None = None) -> list[BundleEntry]:
    """Every file of the bundle as ``(path, bytes, executable)``."""
    if sandbox not in SANDBOXES:
        raise LmcourseError(f"unknown sandbox {sandbox!r}: choose one of {', '.join(SANDBOXES)}.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise LmcourseError(f"workers must be a positive whole number, not {workers!r}.")
    if unit.limits.gpu:
        raise LmcourseError(f"unit '{unit.name}' needs a GPU, and Gradescope's autograders have none.")
    wheel_path = wheel if wheel is not None else toolkit_wheel()
    if not wheel_path.is_file() or not wheel_path.name.endswith(".whl"):
        raise LmcourseError(f"{wheel_path} is not a wheel file.")
    context = template_context(unit, sandbox=sandbox, workers=workers, wheel=wheel_path.name)
    entries: list[BundleEntry] = [
        (PurePosixPath("setup.sh"), render_template(SETUP_TEMPLATE, **context).encode(), True),
        (PurePosixPath("run_autograder"), render_template(RUN_TEMPLATE, **context).encode(), True),
        (PurePosixPath(REQUIREMENTS), "".join(f"{r}\n" for r in requirements(unit)).encode(), False),
        (PurePosixPath(wheel_path.name), wheel_path.read_bytes(), False),
    ]
    entries += [(PurePosixPath(COURSE_DIR) / rel, data, False) for rel, data in course_files(unit)]
    return entries


def template_context(unit: Unit, *, sandbox: str, workers: int, wheel: str) -> dict[str, object]:
    """What both scripts see. Values under ``sh`` are quoted for the shell (``shlex.quote``)."""
    limits = unit.limits
    outer = int(limits.total_timeout_s) + OUTER_MARGIN_S
    raw = {
        "unit": unit.name,
        "package": unit.package,
        "sandbox": sandbox,
        "workers": str(workers),
        "wheel": wheel,
        "requirements": REQUIREMENTS,
        "torch_index": TORCH_INDEX,
        "outer_timeout_s": str(outer),
        "min_bwrap": MIN_BWRAP,
    }
    return {
        **raw,
        "course_name": unit.course.config.name,
        "term": unit.course.config.term,
        "title": unit.config.title,
        "total_timeout_s": int(limits.total_timeout_s),
        "memory_mb": limits.memory_mb,
        "min_python": ".".join(map(str, MIN_PYTHON)),
        "min_python_tuple": f"({MIN_PYTHON[0]}, {MIN_PYTHON[1]})",
        "lmcourse_version": __version__,
        "sh": {k: shlex.quote(v) for k, v in raw.items()},
    }


def requirements(unit: Unit) -> list[str]:
    """The unit's dependencies and those of the units it ships, then torch if none names it."""
    reqs: list[str] = []
    for u in [unit, *_shipped_closure(unit)]:
        for req in u.config.dependencies:
            if req not in reqs:
                reqs.append(req)
    if not any(_requirement_name(r) == "torch" for r in reqs):
        reqs.append("torch")
    return reqs


def _requirement_name(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else ""


def course_files(unit: Unit) -> list[tuple[PurePosixPath, bytes]]:
    """The slice of the course that grading reads, relative to the course root."""
    root = unit.course.root
    files: list[tuple[PurePosixPath, bytes]] = [(PurePosixPath(COURSE_FILE), (root / COURSE_FILE).read_bytes())]
    here = PurePosixPath("assignments", unit.name)
    files.append((here / "unit.yaml", (unit.dir / "unit.yaml").read_bytes()))
    # The staff's adapters.py is solution code that grading never reads: compose uses the student's.
    files += [(here / "tests" / rel, path.read_bytes()) for rel, path in walk(unit.tests_dir) if rel.name != ADAPTERS]
    files += [(here / "fixtures" / rel, path.read_bytes()) for rel, path in walk(unit.fixtures_dir)]
    for other in _shipped_closure(unit):
        files.append((PurePosixPath("assignments", other.name, "unit.yaml"), (other.dir / "unit.yaml").read_bytes()))
        files += [(PurePosixPath("reference", other.name) / rel, path.read_bytes()) for rel, path in walk(other.reference_dir)]
    return files


def _shipped_closure(unit: Unit) -> list[Unit]:
    """The units whose reference ``unit`` ships, and theirs (loading one checks its own ships)."""
    seen: dict[str, Unit] = {}
    todo = list(unit.config.handout.ships)
    while todo:
        name = todo.pop(0)
        if name in seen or name == unit.name:
            continue
        other = unit.course.unit(name, enabled_only=False)
        seen[name] = other
        todo += other.config.handout.ships
    return [seen[n] for n in sorted(seen)]


# -- the toolkit wheel ---------------------------------------------------------------------------


def source_root() -> Path:
    """The checkout the running ``lmcourse`` is installed from (editable install or in place)."""
    root = Path(__file__).resolve().parent.parent  # grader/ is mapped to lmcourse.grader
    pyproject = root / "pyproject.toml"
    try:
        name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        name = None
    if name != "lmcourse":
        raise LmcourseError(
            f"lmcourse is not installed from a source checkout ({root} has no lmcourse pyproject.toml): "
            "pass a prebuilt wheel with --wheel."
        )
    return root


def source_files(root: Path) -> list[tuple[PurePosixPath, Path]]:
    """What the wheel is built from: pyproject.toml, its readme and the package folders it maps."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    names = ["pyproject.toml", "MANIFEST.in"]
    readme = project.get("project", {}).get("readme")
    if isinstance(readme, str):
        names.append(readme)
    elif isinstance(readme, dict) and "file" in readme:
        names.append(readme["file"])
    files = [(PurePosixPath(n), root / n) for n in dict.fromkeys(names) if (root / n).is_file()]
    package_dirs = project.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    for folder in sorted(set(package_dirs.values())):
        if folder and (root / folder).is_dir():
            files += [(PurePosixPath(folder) / rel, path) for rel, path in walk(root / folder, skip_links=True, skip_hidden=True)]
    return files


def wheel_cache() -> Path:
    """``$LMCOURSE_CACHE/wheels``, else ``~/.cache/lmcourse/packages/wheels``."""
    env = os.environ.get(CACHE_ENV)
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "lmcourse" / "packages"
    return base / "wheels"


def toolkit_wheel(root: Path | None = None) -> Path:
    """The toolkit wheel for the sources at ``root``, built once per distinct set of sources."""
    root = root or source_root()
    files = source_files(root)
    digest = hashlib.sha256()
    for rel, path in files:
        data = path.read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    key = digest.hexdigest()[:20]
    folder = wheel_cache() / key
    cached = sorted(folder.glob("*.whl"))
    if len(cached) == 1:
        return cached[0]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lmcourse-wheel-", dir=folder.parent) as tmp:
        src, dist = Path(tmp) / "src", Path(tmp) / "dist"
        for rel, path in files:  # a copy: building in place would write build/ into the checkout
            dest = src / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        _build_wheel(src, dist)
        built = sorted(dist.glob("*.whl"))
        if len(built) != 1:
            raise LmcourseError(f"building the lmcourse wheel gave {len(built)} wheels, expected one.")
        staged = Path(tmp) / key
        staged.mkdir()
        shutil.move(str(built[0]), staged / built[0].name)
        try:
            os.replace(staged, folder)  # atomic: a concurrent export sees no half-written cache
        except OSError:
            if not sorted(folder.glob("*.whl")):  # not another export's identical wheel: a real error
                raise
    [wheel] = sorted(folder.glob("*.whl"))
    log.info("built %s", wheel)
    return wheel


def _build_wheel(src: Path, dist: Path) -> None:
    try:
        import build  # noqa: F401
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)]
    else:
        cmd = [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(dist), str(src)]
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise LmcourseError("building the lmcourse wheel took more than 10 minutes.") from None
    if proc.returncode != 0:
        tail = " | ".join(line for line in (proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise LmcourseError(
            f"building the lmcourse wheel failed (needs setuptools and wheel, or build, in this environment): {tail}"
        )


# -- the sandbox self-check run_autograder starts with -----------------------------------------

SELF_CHECK_TOKEN = "lmcourse-sandbox-ok"


def sandbox_problem(backend: str) -> str | None:
    """None if ``backend`` can start a real sandbox here, else one sentence saying why not.

    A backend's own ``unavailable()`` probe is cheap and partial (bubblewrap may create namespaces
    and still be unable to mount /proc, or root may lack CAP_SYS_ADMIN for the private mount
    namespace the local backend stages its mounts in). This starts the grader's interpreter in a
    sandbox the way a worker starts, so a container that cannot sandbox is refused in a second,
    with the reason, instead of failing every test after its start-up timeout.
    """
    from .sandbox.base import SandboxSpec
    from .sandbox.registry import make_sandbox

    sandbox = make_sandbox(backend)
    problem = sandbox.unavailable()
    if problem:
        return problem
    runtime = sandbox.python()
    spec = SandboxSpec(
        argv=[*runtime.argv, "-I", "-c", f"print({SELF_CHECK_TOKEN!r})"],
        mounts=list(runtime.mounts),
        env=dict(runtime.env),
        memory_mb=1024,
        pids=32,
        disk_mb=16,
        output_kb=64,
        wall_clock_s=60,
    )
    try:
        result = sandbox.run(spec)
    except LmcourseError as exc:
        return str(exc)
    if result.exit_code == 0 and SELF_CHECK_TOKEN in result.output:
        return None
    lines = [ln.strip() for ln in result.output.splitlines() if ln.strip()]
    detail = lines[-1] if lines else ("timed out" if result.timed_out else f"exit status {result.exit_code}")
    return f"the {backend} sandbox cannot start here: {detail}"


def main(argv: list[str] | None = None) -> int:
    """``python -m lmcourse.grader.gradescope check-sandbox BACKEND``: used by the bundle's scripts.

    Prints ``ok`` (exit 0) or the reason the sandbox cannot run here (exit 1).
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "check-sandbox" or args[1] not in SANDBOXES:
        print(f"usage: python -m lmcourse.grader.gradescope check-sandbox {{{','.join(SANDBOXES)}}}", file=sys.stderr)
        return 2
    problem = sandbox_problem(args[1])
    print(problem or "ok")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
