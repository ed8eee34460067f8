"""The Gradescope bundle, built for the mini course and run for real in a container laid out like
Gradescope's (``/autograder/source``, ``/autograder/submission``, ``/autograder/results``).

setup.sh needs the network, so the test stands in for it: ``/autograder/venv`` is a real venv of
the host's interpreter (bind-mounted at its own path) with the bundle's wheel unpacked into its
site-packages and the host venv's site-packages (click, pydantic, pytest...) on a ``.pth`` line.
So the graded run imports lmcourse from the wheel in the zip, not from this checkout. bubblewrap
goes into a small image on top of ``lmcourse-grader:cpu`` from a ``.deb`` fetched on the host.
"""

from __future__ import annotations

import glob
import json
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lmcourse.grader.course import Course
from lmcourse.grader.gradescope import export, wheel_cache
from lmcourse.grader.handout.build import build

from ..helpers import MINICOURSE, invoke

IMAGE = "lmcourse-gradescope-test:latest"
#: What the local sandbox needs from the container (docs/gradescope.md): CAP_SYS_ADMIN for its
#: private mount namespace as root, namespaces past seccomp and AppArmor, and an unmasked /proc so
#: that bubblewrap may mount a fresh one (`--security-opt systempaths=unconfined` on the docker
#: CLI, which sends empty MaskedPaths and ReadonlyPaths; the SDK has no keyword for it).
PRIVILEGES: dict[str, Any] = {
    "cap_add": ["SYS_ADMIN"],
    "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
}
UNMASKED_PROC = {"MaskedPaths": [], "ReadonlyPaths": []}
ON_TIME = "2027-01-20T17:11:47.130948-08:00"  # Gradescope's created_at format; due 2027-01-25
ONE_DAY_LATE = "2027-01-26T12:00:00.5-08:00"  # past due + 15 min grace: one started day, x 0.9
BASE_PYTHON = Path(sys.base_prefix).resolve()
HOST_SITE = Path(sysconfig.get_paths()["purelib"]).resolve()


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private wheel cache: the first export builds the wheel, later ones reuse it."""
    path = tmp_path_factory.mktemp("lmcourse-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMCOURSE_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def unit():  # type: ignore[no-untyped-def]
    return Course.load(MINICOURSE).unit("toy")


@pytest.fixture(scope="module")
def bundle(cache: Path, unit, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    return export(unit, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def docker_client():  # type: ignore[no-untyped-def]
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 -- no SDK, no daemon, no permission: all mean "docker unavailable"
        pytest.skip(f"docker is unavailable: {exc}")
    from lmcourse.grader.sandbox.image import build_image, image_name

    try:
        client.images.get(image_name("cpu"))
    except docker.errors.ImageNotFound:
        build_image("cpu", client=client)  # offline, about a second; fails loudly without the base
    return client


def _bubblewrap_deb(folder: Path) -> Path:
    """bubblewrap's .deb: from apt's cache, else `apt-get download` (a package registry)."""
    cached = sorted(glob.glob("/var/cache/apt/archives/bubblewrap_*.deb"))
    if cached:
        return Path(cached[-1])
    proc = subprocess.run(["apt-get", "download", "bubblewrap"], cwd=folder, capture_output=True, text=True, timeout=180, check=False)
    debs = sorted(folder.glob("bubblewrap_*.deb"))
    assert proc.returncode == 0 and debs, f"could not fetch bubblewrap's .deb: {proc.stderr.strip()}"
    return debs[-1]


@pytest.fixture(scope="module")
def image(docker_client, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    """lmcourse-grader:cpu plus bubblewrap, built with no network (the image has its libraries)."""
    context = tmp_path_factory.mktemp("gradescope-image")
    shutil.copyfile(_bubblewrap_deb(context), context / "bubblewrap.deb")
    (context / "Dockerfile").write_text(
        "FROM lmcourse-grader:cpu\n"
        "USER 0:0\n"
        "COPY bubblewrap.deb /tmp/bubblewrap.deb\n"
        "RUN dpkg -i /tmp/bubblewrap.deb && rm /tmp/bubblewrap.deb && bwrap --version\n"
    )
    docker_client.images.build(path=str(context), tag=IMAGE, network_mode="none", pull=False, rm=True, forcerm=True)
    return IMAGE


@pytest.fixture(scope="module")
def source(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle unzipped as Gradescope does (`unzip` keeps the executable bits)."""
    dest = tmp_path_factory.mktemp("source")
    _unzip(bundle, dest)
    return dest


@pytest.fixture(scope="module")
def venv(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What setup.sh leaves at /autograder/venv, without the network: see the module docstring."""
    dest = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True, timeout=120)
    site = dest / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    [wheel] = source.glob("lmcourse-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    (site / "lmcourse-test-host-deps.pth").write_text(f"{HOST_SITE}\n")
    lmcourse = dest / "bin" / "lmcourse"
    lmcourse.write_text('#!/bin/sh\nexec /autograder/venv/bin/python -m lmcourse.grader "$@"\n')
    lmcourse.chmod(0o755)
    return dest


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory, unit) -> Path:  # type: ignore[no-untyped-def]
    """The reference solution as a student submits it: mini_toy/** and tests/adapters.py only."""
    tree = build(unit, tmp_path_factory.mktemp("solution"), solutions=True).folder
    dest = tmp_path_factory.mktemp("submission")
    shutil.copytree(tree / unit.package, dest / unit.package)
    (dest / "tests").mkdir()
    shutil.copyfile(tree / "tests" / "adapters.py", dest / "tests" / "adapters.py")
    return dest


def _count_tests(kind: str) -> int:
    """Test functions in the mini course's public or hidden tests (none is parametrized)."""
    folder = MINICOURSE / "assignments" / "toy" / "tests" / kind
    return sum(len(re.findall(r"^\s*(?:async )?def test_", p.read_text(), re.MULTILINE)) for p in folder.glob("test_*.py"))


def _unzip(path: Path, dest: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)


def run_autograder(docker_client, image: str, source: Path, venv: Path, submission: Path, tmp: Path,  # type: ignore[no-untyped-def]
                   *, created_at: str | None = ON_TIME, options: dict[str, Any] = PRIVILEGES,
                   extra: dict[str, Any] = UNMASKED_PROC) -> tuple[dict[str, Any], str]:
    """Run /autograder/source/run_autograder as root in a fresh container; return results.json and the log."""
    src, results = tmp / "source", tmp / "results"
    shutil.copytree(source, src, symlinks=True)  # a private copy: a run may write into it
    results.mkdir()
    metadata = tmp / "submission_metadata.json"
    meta: dict[str, Any] = {"id": 123456, "users": [{"email": "ada@example.edu", "name": "Ada Lovelace", "sid": "42"}],
                            "assignment": {"title": "toy", "due_date": "2027-01-25T23:59:00.000000-08:00"}}
    if created_at is not None:
        meta["created_at"] = created_at
    metadata.write_text(json.dumps(meta))
    volumes = {
        str(src): {"bind": "/autograder/source", "mode": "rw"},
        str(submission): {"bind": "/autograder/submission", "mode": "ro"},
        str(metadata): {"bind": "/autograder/submission_metadata.json", "mode": "ro"},
        str(results): {"bind": "/autograder/results", "mode": "rw"},
        str(venv): {"bind": "/autograder/venv", "mode": "ro"},
        str(BASE_PYTHON): {"bind": str(BASE_PYTHON), "mode": "ro"},
        str(HOST_SITE): {"bind": str(HOST_SITE), "mode": "ro"},
    }
    api = docker_client.api
    host_config = api.create_host_config(binds=volumes, network_mode="none", **options)
    host_config.update(extra)
    created = api.create_container(
        image, ["/autograder/source/run_autograder"], user="0:0", working_dir="/autograder",
        host_config=host_config, volumes=[v["bind"] for v in volumes.values()],
    )
    container = docker_client.containers.get(created["Id"])
    try:
        container.start()
        status = container.wait(timeout=150)
        log = container.logs().decode("utf-8", errors="replace")
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 0, log
    path = results / "results.json"
    assert path.is_file(), log
    return json.loads(path.read_text()), log


# -- the zip -------------------------------------------------------------------------------------


def test_zip_holds_what_grading_needs_and_no_solution(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        requirements = zf.read("requirements.txt").decode()
    names = set(infos)
    assert {"setup.sh", "run_autograder", "requirements.txt", "course/course.yaml", "course/assignments/toy/unit.yaml"} <= names
    assert "course/assignments/toy/tests/hidden/test_hidden_stats.py" in names
    assert "course/assignments/toy/tests/producers.py" in names
    assert "course/assignments/toy/fixtures/numbers.json" in names
    assert [n for n in names if n.startswith("lmcourse-") and n.endswith(".whl")]
    assert not [n for n in names if n.startswith("course/reference/")], "grading never needs the solution"
    assert not [n for n in names if "/writeup/" in n or n.endswith("/adapters.py")]
    for script in ("setup.sh", "run_autograder"):
        mode = infos[script].external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, f"{script} is not executable: {oct(mode)}"
    assert requirements.splitlines()[-1] == "torch"


def test_export_is_byte_identical_and_reuses_the_wheel(bundle: Path, unit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    again = export(unit, tmp_path / "again")
    assert again.read_bytes() == bundle.read_bytes()
    [built] = wheel_cache().iterdir()  # built once for these sources
    [wheel] = built.glob("*.whl")
    assert export(unit, tmp_path / "given", wheel=wheel).read_bytes() == bundle.read_bytes()


def test_cli_export(cache: Path, tmp_path: Path) -> None:
    from lmcourse.grader.cli import cli

    if "gradescope" not in cli.commands:
        pytest.skip("grader/cli.py has no `gradescope` group yet")
    result = invoke("--course", MINICOURSE, "gradescope", "export", "toy", "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert Path(doc["zip"]) == tmp_path / "toy-gradescope.zip" and doc["files"] == len(doc["course_files"]) + 4
    result = invoke("--course", MINICOURSE, "gradescope", "export", "toy", "--out", tmp_path, "--sandbox", "nope")
    assert result.exit_code == 2


def test_scripts_parse(bundle: Path, tmp_path: Path) -> None:
    _unzip(bundle, tmp_path)
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


# -- run for real --------------------------------------------------------------------------------


def test_reference_solution_scores_full_marks(docker_client, image, source, venv, student, tmp_path) -> None:  # type: ignore[no-untyped-def]
    results, log = run_autograder(docker_client, image, source, venv, student, tmp_path)
    assert results["score"] == 12, log
    assert results["extra_data"]["days_late"] == 0
    code = [t for t in results["tests"] if "written" not in t["tags"]]
    written = [t for t in results["tests"] if "written" in t["tags"]]
    assert all(t["status"] == "passed" and t["score"] == t["max_score"] for t in code), log
    assert {t["tags"][0] for t in code} == {"softmax", "word_counts", "running_mean", "fetch"}
    hidden = sum("hidden" in t["tags"] for t in code)
    assert (hidden, len(code) - hidden) == (_count_tests("hidden"), _count_tests("public"))  # every one ran
    assert round(sum(t["max_score"] for t in code), 6) == 12
    assert [t["name"] for t in written] == ["analysis (written)"]  # graded by staff, pending


def test_created_at_applies_the_late_policy(docker_client, image, source, venv, student, tmp_path) -> None:  # type: ignore[no-untyped-def]
    results, log = run_autograder(docker_client, image, source, venv, student, tmp_path, created_at=ONE_DAY_LATE)
    assert results["extra_data"]["days_late"] == 1, log
    assert results["score"] == pytest.approx(10.8), log


def test_empty_submission_scores_zero_with_a_reason(docker_client, image, source, venv, tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    empty.mkdir()
    results, _ = run_autograder(docker_client, image, source, venv, empty, tmp_path, created_at=None)
    assert results["score"] == 0
    assert results["tests"] == []
    assert results["output"].startswith("Not graded: ") and "mini_toy/" in results["output"], results
    assert "\n" not in results["output"]


#: Containers short of what the sandbox needs, each for a different reason.
SHORT_OF_PRIVILEGES = {
    "docker defaults": ({}, {}),
    "/proc masked": (PRIVILEGES, {}),
    "no CAP_SYS_ADMIN": ({"security_opt": PRIVILEGES["security_opt"]}, UNMASKED_PROC),
}


@pytest.mark.parametrize("variant", list(SHORT_OF_PRIVILEGES))
def test_without_a_sandbox_grading_is_refused_not_run(variant, docker_client, image, source, venv, student, tmp_path) -> None:  # type: ignore[no-untyped-def]
    options, extra = SHORT_OF_PRIVILEGES[variant]
    started = time.monotonic()
    results, log = run_autograder(docker_client, image, source, venv, student, tmp_path, options=options, extra=extra)
    assert time.monotonic() - started < 30, "refused at once, not after every test's start-up timeout"
    assert results["score"] == 0, log
    assert results["tests"] == []
    output = results["output"]
    assert output.startswith("Not graded: ") and "without a sandbox" in output, results
    assert "\n" not in output


def test_without_setup_the_run_still_writes_results(docker_client, image, source, student, tmp_path) -> None:  # type: ignore[no-untyped-def]
    no_venv = tmp_path / "no-venv"
    no_venv.mkdir()
    results, _ = run_autograder(docker_client, image, source, no_venv, student, tmp_path)
    assert results["score"] == 0 and results["tests"] == []
    assert "setup.sh did not create /autograder/venv" in results["output"], results
