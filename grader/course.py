"""Where a course lives on disk: ``course.yaml``, its units and their folders.

A course root holds ``course.yaml``, ``reference/<unit>/`` (the staff package, with solution
markers) and ``assignments/<unit>/`` (``unit.yaml``, ``tests/public``, ``tests/hidden``,
``tests/adapters.py``, ``fixtures/``, ``writeup/``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .config import CourseConfig, Limits, UnitConfig, load_yaml_model
from .errors import ConfigError, LmcourseError

COURSE_FILE = "course.yaml"
COURSE_ENV = "LMCOURSE_COURSE"


@dataclass(frozen=True)
class Course:
    root: Path
    config: CourseConfig

    @classmethod
    def load(cls, root: Path) -> Course:
        root = root.resolve()
        return cls(root, load_yaml_model(root / COURSE_FILE, CourseConfig))

    @classmethod
    def find(cls, start: Path | None = None) -> Course:
        """The course at ``$LMCOURSE_COURSE``, else the nearest ``course.yaml`` above ``start``."""
        if env := os.environ.get(COURSE_ENV):
            return cls.load(Path(env))
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / COURSE_FILE).is_file():
                return cls.load(folder)
        raise LmcourseError(
            f"no {COURSE_FILE} found in {here} or above; run inside a course or pass --course DIR."
        )

    @property
    def enabled(self) -> list[str]:
        return list(self.config.units)

    def unit(self, name: str, *, enabled_only: bool = True) -> Unit:
        """Load ``assignments/<name>/unit.yaml``; units shipped by another may be disabled this term."""
        if enabled_only and name not in self.config.units:
            enabled = ", ".join(self.enabled) or "none"
            raise LmcourseError(f"unit '{name}' is not enabled in {self.root / COURSE_FILE} (enabled: {enabled}).")
        folder = self.root / "assignments" / name
        if not (folder / "unit.yaml").is_file():
            raise LmcourseError(f"unit '{name}' has no {folder / 'unit.yaml'}.")
        config = load_yaml_model(folder / "unit.yaml", UnitConfig)
        if config.name != name:
            raise ConfigError(f"{folder / 'unit.yaml'}: field 'name' is '{config.name}' but the folder is '{name}'.")
        unit = Unit(self, config, folder)
        for other in config.handout.ships:
            if other == name or not (self.root / "reference" / other).is_dir():
                raise ConfigError(f"{folder / 'unit.yaml'}: field 'handout.ships' names '{other}', which has no reference package.")
        return unit

    def units(self, names: tuple[str, ...] | list[str] = ()) -> list[Unit]:
        """The named units, or every enabled unit when none are named."""
        return [self.unit(n) for n in (names or self.enabled)]


@dataclass(frozen=True)
class Unit:
    course: Course
    config: UnitConfig
    dir: Path

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def package(self) -> str:
        """The package name students import, e.g. ``lmc_basics``."""
        return self.config.package or f"{self.course.config.package_prefix}_{self.name}"

    def package_of(self, other: str) -> str:
        """The handout name of another unit's package (shipped un-stripped)."""
        return f"{self.course.config.package_prefix}_{other}"

    @property
    def reference_dir(self) -> Path:
        return self.course.root / "reference" / self.name

    def require_reference(self) -> Path:
        """The reference package; building a handout needs it, grading does not."""
        if not self.reference_dir.is_dir():
            raise ConfigError(f"unit '{self.name}' has no reference package at {self.reference_dir}.")
        return self.reference_dir

    @property
    def tests_dir(self) -> Path:
        return self.dir / "tests"

    @property
    def public_tests(self) -> Path:
        return self.tests_dir / "public"

    @property
    def hidden_tests(self) -> Path:
        return self.tests_dir / "hidden"

    @property
    def adapters(self) -> Path:
        return self.tests_dir / "adapters.py"

    @property
    def fixtures_dir(self) -> Path:
        return self.dir / "fixtures"

    @property
    def writeup_dir(self) -> Path:
        return self.dir / "writeup"

    @cached_property
    def limits(self) -> Limits:
        return self.config.limits.apply(self.course.config.limits)

    @property
    def student_files(self) -> list[str]:
        return [g.format(package=self.package) for g in self.config.student_files]
