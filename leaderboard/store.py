"""The leaderboard's service layer: every front end (CLI, web app, grader) goes through :class:`Store`.

A submission is authenticated, validated, checked against the board's daily quota, evaluated,
and only then written -- submission and result in one transaction. Anything refused on the way
is stored nowhere. The same weights sent twice to a board are one entry: the second call returns
the first entry and does not count against the quota.

The ranking shows each student's best entry (lowest bits per byte; ties go to the earlier
submission), as course leaderboards do: a student is one row however often they submit.

Concurrency: submissions may arrive at once from many web workers. On SQLite a write takes the
database's write lock at ``BEGIN`` (``BEGIN IMMEDIATE``); on PostgreSQL it locks the student's row
(``SELECT ... FOR UPDATE``). Either way the quota and the duplicate check are repeated inside the
writing transaction, after the evaluation, so two racing submissions cannot both slip under the
quota; identical weights from two students at once are settled by the unique constraint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from ..grader.database import writer
from ..grader.errors import LmcourseError
from . import migrations
from .checkpoint import SubmissionFiles, SubmissionRejected, check_submission, content_hash
from .config import BoardRules
from .db import Board, Result, Student, Submission, Token, database_url, make_engine, parse_url
from .evaluate import Evaluation
from .views import BoardView, EntryDetail, EntryView, StudentView, gradescope_entries, markdown_table

UNVERIFIED_REASON = "custom code: staff must re-run it"  # why an entry scored by the student's own code waits

Evaluator = Callable[[SubmissionFiles, BoardRules], Evaluation]

BOARD_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_NAME = 128


class UnknownBoard(LmcourseError):
    """A board name that is not in the database."""


class UnknownEntry(LmcourseError):
    """An entry id that is not in the database."""


class InvalidToken(LmcourseError):
    """A token that is unknown or revoked (the message never says which)."""


class QuotaExceeded(LmcourseError):
    """The student has used up today's submissions to this board."""


class BoardConflict(LmcourseError):
    """``add_board`` with a name that exists under other rules."""


class WeightsTaken(SubmissionRejected):
    """These exact weights are already another student's entry on this board."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Store:
    """The leaderboard database; safe to share between threads (each call opens its own session)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = make_engine(url)
        self._reads = sessionmaker(self._engine, expire_on_commit=False)
        self._writes = sessionmaker(writer(self._engine),
                                    expire_on_commit=False)

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Open (creating if need be) the database at ``url`` and upgrade its schema to the newest revision.

        Default: ``$LMCOURSE_LEADERBOARD_DB``, else ``sqlite:///<cwd>/leaderboard.db``.
        """
        store = cls(database_url(url))
        try:
            migrations.upgrade(store._engine)
        except OperationalError as exc:
            store.close()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise LmcourseError(f"cannot open the leaderboard database {store.safe_url}: {reason}.") from None
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def safe_url(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return parse_url(self.url).render_as_string(hide_password=True)

    @property
    def schema_version(self) -> str | None:
        """The Alembic revision the database is at (the newest one after :meth:`open`)."""
        with self._engine.connect() as connection:
            return migrations.current(connection)

    # ------------------------------------------------------------------------------ boards

    def add_board(self, name: str, unit: str, rules: BoardRules) -> BoardView:
        """Create a board; adding it again with the same rules is a no-op, with other rules an error."""
        if not name or len(name) > 64 or not set(name) <= BOARD_NAME_CHARS:
            raise LmcourseError(f"board name {name!r} must be 1-64 lowercase letters, digits, '_' or '-'.")
        wanted = rules.model_dump(mode="json")
        with self._write() as session:
            board = session.scalar(select(Board).where(Board.name == name))
            if board is None:
                session.add(Board(name=name, unit=unit, rules=wanted))
            elif board.unit != unit or board.rules != wanted:
                changed = sorted(k for k in wanted.keys() | board.rules.keys() if wanted.get(k) != board.rules.get(k))
                if board.unit != unit:
                    changed.insert(0, "unit")
                raise BoardConflict(
                    f"board '{name}' already exists with different {', '.join(changed)}; "
                    "a board keeps its rules so that its entries stay comparable (create a new board instead)."
                )
        return self.board(name)

    def board(self, name: str) -> BoardView:
        with self._read() as session:
            return self._board_view(session, self._board(session, name))

    def boards(self) -> list[BoardView]:
        with self._read() as session:
            return [self._board_view(session, b) for b in session.scalars(select(Board).order_by(Board.name))]

    # ---------------------------------------------------------------------------- students

    def add_student(self, student_id: str, display_name: str, *, staff: bool = False) -> str:
        """Create the student or update their name and role; returns a new token, revoking older ones.

        Only the token's sha256 is stored: print the returned token once and hand it over.
        """
        student_id, display_name = student_id.strip(), " ".join(display_name.split())
        for what, value in (("student id", student_id), ("display name", display_name)):
            if not value or len(value) > MAX_NAME:
                raise LmcourseError(f"the {what} must be 1 to {MAX_NAME} characters, got {value!r}.")
        token = secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        with self._write() as session:
            student = session.scalar(select(Student).where(Student.student_id == student_id))
            if student is None:
                student = Student(student_id=student_id, display_name=display_name, is_staff=staff)
                session.add(student)
            else:
                student.display_name, student.is_staff = display_name, staff
                for old in student.tokens:  # a new token replaces a lost or leaked one
                    old.revoked_at = old.revoked_at or now
            student.tokens.append(Token(token_sha256=hash_token(token), created_at=now))
        return token

    def authenticate(self, token: str) -> StudentView:
        with self._read() as session:
            student = session.scalar(
                select(Student).join(Token).where(Token.token_sha256 == hash_token(token), Token.revoked_at.is_(None))
            )
            if student is None:
                raise InvalidToken("this token is not valid; ask the course staff for a new one.")
            return StudentView(student.student_id, student.display_name, student.is_staff)

    # ------------------------------------------------------------------------- submissions

    def submit(
        self,
        board: str,
        token: str,
        files: SubmissionFiles,
        evaluator: Evaluator,
        *,
        now: dt.datetime | None = None,
    ) -> EntryView:
        """Evaluate ``files`` and record them as an entry of ``board``; returns the entry.

        Identical weights already on the board: returns that entry without evaluating or counting
        it again (a new entry has ``submitted_at == now``, a returned one an earlier time).
        Raises InvalidToken, UnknownBoard, SubmissionRejected, WeightsTaken or QuotaExceeded,
        having stored nothing.
        """
        now = _aware(now)
        who = self.authenticate(token)
        rules = self.board(board).rules
        check_submission(files, rules)
        digest = content_hash(files)
        with self._read() as session:
            if (existing := self._same_weights(session, board, digest)) is not None:
                return self._accept_duplicate(existing, who)
            self._check_quota(session, board, who.student_id, rules, now)

        evaluation = evaluator(files, rules)  # slow: outside any transaction

        try:
            with self._write() as session:
                student = session.scalar(
                    select(Student).where(Student.student_id == who.student_id).with_for_update()
                )
                if student is None:  # deleted while we evaluated
                    raise InvalidToken("this token is not valid; ask the course staff for a new one.")
                if (existing := self._same_weights(session, board, digest)) is not None:
                    return self._accept_duplicate(existing, who)
                self._check_quota(session, board, who.student_id, rules, now)
                submission = self._new_submission(session, board, student, files, digest, evaluation, now)
                entry_id = submission.id
        except IntegrityError:  # identical weights committed by another student's racing submission
            with self._read() as session:
                existing = self._same_weights(session, board, digest)
            if existing is None:
                raise
            return self._accept_duplicate(existing, who)
        return self._entry_view(entry_id)

    def _new_submission(
        self, session: Session, board: str, student: Student, files: SubmissionFiles, digest: str,
        evaluation: Evaluation, now: dt.datetime,
    ) -> Submission:
        submission = Submission(
            board=self._board(session, board),
            student=student,
            content_sha256=digest,
            config=files.config.model_dump(mode="json"),
            training_log=_text(files.log),
            has_tokenizer=files.vocab is not None and files.merges is not None,
            submitted_at=now,
            hidden=False,
            # The trusted evaluator ran the reference model itself: nothing for staff to re-run.
            # Numbers from a student's own model code (see .custom) wait for staff to re-run them.
            verified=evaluation.trusted,
            verified_by="evaluator" if evaluation.trusted else None,
            verified_at=now if evaluation.trusted else None,
            unverified_reason=None if evaluation.trusted else UNVERIFIED_REASON,
        )
        submission.result = Result(
            loss=evaluation.loss,
            perplexity=evaluation.perplexity,
            bits_per_byte=evaluation.bits_per_byte,
            tokens=evaluation.tokens,
            bytes=evaluation.bytes,
            parameters=evaluation.parameters,
            seconds=evaluation.seconds,
            device=evaluation.device,
            evaluated_at=now,
        )
        session.add(submission)
        session.flush()
        return submission

    def _same_weights(self, session: Session, board: str, digest: str) -> Submission | None:
        return session.scalar(
            select(Submission).join(Board).where(Board.name == board, Submission.content_sha256 == digest)
        )

    def _accept_duplicate(self, existing: Submission, who: StudentView) -> EntryView:
        entry = self._entry_view(existing.id)
        if entry.student_id != who.student_id:
            raise WeightsTaken(
                f"these exact weights are already entry {entry.id} of board '{entry.board}', submitted by "
                "another student."
            )
        return entry

    def _check_quota(self, session: Session, board: str, student_id: str, rules: BoardRules, now: dt.datetime) -> None:
        midnight = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        tomorrow = midnight + dt.timedelta(days=1)
        used = session.scalar(
            select(func.count(Submission.id))
            .join(Board)
            .join(Student)
            .where(
                Board.name == board,
                Student.student_id == student_id,
                Submission.submitted_at >= midnight,
                Submission.submitted_at < tomorrow,
            )
        )
        if used is not None and used >= rules.daily_quota:
            wait = tomorrow - now
            hours, minutes = divmod(int(wait.total_seconds()) // 60, 60)
            raise QuotaExceeded(
                f"you have used all {rules.daily_quota} of today's submissions to board '{board}'; "
                f"the quota renews at 00:00 UTC, in {hours} h {minutes} min."
            )

    # ----------------------------------------------------------------------------- reading

    def ranking(self, board: str, *, include_hidden: bool = False) -> list[EntryView]:
        """Each student's best entry, best first: lowest bits per byte, ties to the earlier submission.

        Hidden entries take no part unless ``include_hidden`` (the staff view), where they rank too.
        """
        with self._read() as session:
            rows = self._ranked(session, self._board(session, board), include_hidden)
            return [_entry(sub, rank) for rank, sub in enumerate(rows, start=1)]

    def entry(self, entry_id: int) -> EntryDetail:
        """One entry with its config, training log and evaluation details.

        ``rank`` is its place on the public ranking, None when hidden or beaten by the same student's better entry.
        """
        with self._read() as session:
            sub = self._submission(session, entry_id)
            result = sub.result
            return EntryDetail(
                entry=_entry(sub, self._public_rank(session, sub)),
                config=dict(sub.config),
                log=sub.training_log,
                tokens=result.tokens,
                bytes=result.bytes,
                seconds=result.seconds,
                device=result.device,
                unverified_reason=sub.unverified_reason,
            )

    # ------------------------------------------------------------------------------- staff

    def set_verified(self, entry_id: int, verified: bool, *, by: str) -> EntryView:
        """Mark an entry verified (staff re-ran it and got its numbers) or take the mark back."""
        with self._write() as session:
            sub = self._submission(session, entry_id)
            sub.verified = verified
            sub.verified_by, sub.verified_at = (by, dt.datetime.now(dt.UTC)) if verified else (None, None)
            if verified:
                sub.unverified_reason = None
            else:
                sub.unverified_reason = f"verification withdrawn by {by}"
        return self._entry_view(entry_id)

    def set_hidden(self, entry_id: int, hidden: bool, *, by: str) -> EntryView:
        """Hide an entry from the public ranking, or show it again; the change is attributed to ``by``."""
        with self._write() as session:
            sub = self._submission(session, entry_id)
            sub.hidden = hidden
            sub.hidden_by, sub.hidden_at = (by, dt.datetime.now(dt.UTC)) if hidden else (None, None)
        return self._entry_view(entry_id)

    # ------------------------------------------------------------------------------ export

    def export_markdown(self, board: str) -> str:
        """The ranking as the Markdown table course leaderboards keep in a repository README."""
        return markdown_table(self.ranking(board))

    def gradescope_leaderboard(self, board: str, student_id: str) -> list[dict[str, Any]]:
        """Gradescope's ``leaderboard`` entries for the student's best visible entry ([] without one)."""
        best = next((e for e in self.ranking(board) if e.student_id == student_id), None)
        return [] if best is None else gradescope_entries(best)

    # ----------------------------------------------------------------------------- helpers

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._reads() as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._writes() as session, session.begin():
            yield session

    def _board(self, session: Session, name: str) -> Board:
        board = session.scalar(select(Board).where(Board.name == name))
        if board is None:
            known = ", ".join(session.scalars(select(Board.name).order_by(Board.name))) or "none yet"
            raise UnknownBoard(f"there is no board '{name}' (boards: {known}).")
        return board

    def _board_view(self, session: Session, board: Board) -> BoardView:
        entries = session.scalar(
            select(func.count(Submission.id)).where(Submission.board_id == board.id, Submission.hidden.is_(False))
        )
        return BoardView(board.name, board.unit, BoardRules.model_validate(board.rules), entries or 0)

    def _submission(self, session: Session, entry_id: int) -> Submission:
        sub = session.get(Submission, entry_id)
        if sub is None:
            raise UnknownEntry(f"there is no entry {entry_id}.")
        return sub

    def _ranked(self, session: Session, board: Board, include_hidden: bool) -> list[Submission]:
        order = (Result.bits_per_byte, Submission.submitted_at, Submission.id)
        nth = func.row_number().over(partition_by=Submission.student_pk, order_by=order).label("nth")
        candidates = select(Submission.id, nth).join(Result).where(Submission.board_id == board.id)
        if not include_hidden:
            candidates = candidates.where(Submission.hidden.is_(False))
        best = candidates.subquery()
        query = (
            select(Submission)
            .join(Result)
            .join(best, best.c.id == Submission.id)
            .where(best.c.nth == 1)
            # One query for the page, not one per row for its result, student and board.
            .options(joinedload(Submission.result), joinedload(Submission.student), joinedload(Submission.board))
        )
        return list(session.scalars(query.order_by(*order)))

    def _public_rank(self, session: Session, sub: Submission) -> int | None:
        ranked = self._ranked(session, sub.board, include_hidden=False)
        return next((rank for rank, other in enumerate(ranked, start=1) if other.id == sub.id), None)

    def _entry_view(self, entry_id: int) -> EntryView:
        with self._read() as session:
            sub = self._submission(session, entry_id)
            return _entry(sub, self._public_rank(session, sub))


def _entry(sub: Submission, rank: int | None) -> EntryView:
    result = sub.result
    return EntryView(
        id=sub.id,
        board=sub.board.name,
        rank=rank,
        student_id=sub.student.student_id,
        display_name=sub.student.display_name,
        bits_per_byte=result.bits_per_byte,
        loss=result.loss,
        perplexity=result.perplexity,
        parameters=result.parameters,
        submitted_at=sub.submitted_at,
        verified=sub.verified,
        hidden=sub.hidden,
        content_hash=sub.content_sha256,
    )


def _aware(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


def _text(log: str | bytes | None) -> str | None:
    if log is None or isinstance(log, str):
        return log
    return log.decode("utf-8", errors="replace")
