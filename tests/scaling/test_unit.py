"""The scaling unit as a course ships it: ``handout verify`` passes, and the staff notebook runs from
top to bottom against a live training API (its solution cells included)."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import yaml

from lmcourse.grader.course import Course
from lmcourse.grader.handout.verify import verify

from ..helpers import REPO
from .conftest import UNIT, LiveServer


def scaling_course(root: Path) -> Course:
    """A copy of this repository's course with the scaling unit enabled (course.yaml may not list it yet)."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "reference" / "scaling", root / "reference" / "scaling", ignore=ignore)
    shutil.copytree(UNIT, root / "assignments" / "scaling", ignore=ignore)
    course = yaml.safe_load((REPO / "course.yaml").read_text())
    course["units"] = {"scaling": {"due": "2027-02-10T23:59:00-08:00"}}
    (root / "course.yaml").write_text(yaml.safe_dump(course))
    return Course.load(root)


@pytest.mark.slow
def test_handout_verify_passes(tmp_path: Path) -> None:
    result = verify(scaling_course(tmp_path).unit("scaling"), workers=2)
    assert result.ok, result.as_json()
    assert result.reference_total >= 50 and result.stubs_total >= 10


@pytest.fixture
def reference_as_student_package() -> Iterator[None]:
    """``import lmc_scaling`` finds the reference, as in the staff tree the notebook runs in."""
    names = ["lmc_scaling", *(f"lmc_scaling.{m}" for m in ("isoflop", "chinchilla", "plots"))]
    saved = {name: sys.modules.get(name) for name in names}
    for name in names:
        sys.modules[name] = importlib.import_module(name.replace("lmc_scaling", "reference.scaling"))
    yield
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_staff_notebook_runs_against_the_api(
    live_server: LiveServer, reference_as_student_package: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(UNIT / "fixtures", tmp_path / "fixtures")
    (tmp_path / "writeup").mkdir()
    monkeypatch.chdir(tmp_path / "writeup")  # where Jupyter would run it; the figures land here
    monkeypatch.setenv("LMCOURSE_SCALING_URL", live_server.url)
    monkeypatch.setenv("LMCOURSE_SCALING_KEY", live_server.service.add_student("notebook"))
    notebook = nbformat.read(UNIT / "writeup" / "scaling.ipynb", as_version=4)
    namespace: dict[str, object] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            exec(compile(cell.source, f"scaling.ipynb[cell {index}]", "exec"), namespace)  # noqa: S102
    for figure in ("isoflop_profiles.png", "parameters_law.png", "tokens_law.png"):
        assert (tmp_path / "writeup" / figure).stat().st_size > 10_000, figure
    me = live_server.service.authenticate(os.environ["LMCOURSE_SCALING_KEY"])
    prediction = live_server.service.prediction(me)
    assert prediction.flops == pytest.approx(1e19, rel=0.05)
    assert live_server.service.budget(me).spent <= live_server.service.budget(me).total
