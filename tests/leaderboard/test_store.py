"""The store on SQLite and on PostgreSQL: tokens, submissions, quotas, rankings, staff switches, exports."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import pickle
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save
from sqlalchemy import create_engine, func, select, text

from lmcourse.grader.errors import LmcourseError
from lmcourse.leaderboard.checkpoint import SubmissionFiles, SubmissionRejected
from lmcourse.leaderboard.db import Result, Submission, Token, parse_url
from lmcourse.leaderboard.evaluate import Evaluation, evaluate_submission
from lmcourse.leaderboard.store import (
    BoardConflict,
    EntryView,
    InvalidToken,
    QuotaExceeded,
    Store,
    StudentView,
    UnknownBoard,
    UnknownEntry,
    WeightsTaken,
)

from .factories import (
    DAY,
    RULES,
    TINY,
    FixedEvaluator,
    byte_tokenizer,
    course_with_board,
    submission,
    tensors,
    write_validation_text,
)


@pytest.fixture
def board(store: Store) -> str:
    store.add_board("basics", "basics", RULES)
    return "basics"


def rows(store: Store) -> tuple[int, int]:
    """(submissions, results) in the database, counted behind the store's back."""
    engine = create_engine(parse_url(store.url))
    try:
        with engine.connect() as connection:
            return (connection.scalar(select(func.count()).select_from(Submission)) or 0,
                    connection.scalar(select(func.count()).select_from(Result)) or 0)
    finally:
        engine.dispose()


def at(hour: int, minute: int = 0, *, day: int = 0) -> dt.datetime:
    return DAY.replace(hour=hour, minute=minute) + dt.timedelta(days=day)


# ------------------------------------------------------------------------------- boards, students


def test_add_board_is_idempotent_and_refuses_other_rules(store: Store) -> None:
    first = store.add_board("basics", "basics", RULES)
    assert store.add_board("basics", "basics", RULES) == first
    assert first.rules == RULES and first.entries == 0
    with pytest.raises(BoardConflict, match=r"different daily_quota, stride"):
        store.add_board("basics", "basics", RULES.model_copy(update={"daily_quota": 9, "stride": 4}))
    with pytest.raises(LmcourseError, match="board name 'Basics!'"):
        store.add_board("Basics!", "basics", RULES)
    assert [b.name for b in store.boards()] == ["basics"]


def test_unknown_board_names_the_known_ones(store: Store, board: str) -> None:
    with pytest.raises(UnknownBoard, match=r"^there is no board 'nope' \(boards: basics\)\.$"):
        store.board("nope")


def test_tokens_are_stored_only_as_hashes_and_reissuing_revokes(store: Store) -> None:
    token = store.add_student("jdoe", "Jane  Doe")
    assert store.authenticate(token).display_name == "Jane Doe"
    engine = create_engine(parse_url(store.url))
    with engine.connect() as connection:
        stored = connection.execute(select(Token.token_sha256)).scalars().all()
        dump = " ".join(str(v) for row in connection.execute(text("SELECT * FROM tokens")) for v in row)
    engine.dispose()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in dump

    renewed = store.add_student("jdoe", "Jane D.", staff=True)
    assert store.authenticate(renewed) == StudentView("jdoe", "Jane D.", True)
    with pytest.raises(InvalidToken):
        store.authenticate(token)


@pytest.mark.parametrize("token", ["", "nonsense", "x" * 500])
def test_a_wrong_token_is_one_sentence_that_gives_nothing_away(store: Store, token: str) -> None:
    store.add_student("jdoe", "Jane Doe")
    with pytest.raises(InvalidToken) as caught:
        store.authenticate(token)
    assert str(caught.value) == "this token is not valid; ask the course staff for a new one."


def test_student_fields_are_checked(store: Store) -> None:
    with pytest.raises(LmcourseError, match="display name must be 1 to 128 characters"):
        store.add_student("jdoe", "   ")
    with pytest.raises(LmcourseError, match="student id"):
        store.add_student("x" * 129, "Jane")


# ---------------------------------------------------------------------------------- submissions


def test_submit_stores_the_entry_and_its_evaluation(store: Store, board: str) -> None:
    token = store.add_student("jdoe", "Jane Doe")
    log = b'{"step": 10, "train_loss": 4.0}\n'
    entry = store.submit(board, token, submission(1, log=log), FixedEvaluator(1.25), now=at(9))
    assert (entry.rank, entry.student_id, entry.bits_per_byte, entry.submitted_at) == (1, "jdoe", 1.25, at(9))
    assert entry.verified and not entry.hidden
    detail = store.entry(entry.id)
    assert detail.entry == entry
    assert detail.config == TINY.model_dump(mode="json")
    assert detail.log == log.decode()
    assert (detail.tokens, detail.bytes, detail.device) == (1000, 4000, "cpu")
    assert store.board(board).entries == 1


def test_identical_weights_are_one_entry_and_not_charged(store: Store, board: str) -> None:
    store.add_board("tight", "basics", RULES.model_copy(update={"daily_quota": 1}))
    token = store.add_student("jdoe", "Jane Doe")
    evaluator = FixedEvaluator()
    first = store.submit("tight", token, submission(1), evaluator, now=at(9))
    # Another training log does not make other weights.
    again = store.submit("tight", token, submission(1, log=b'{"step": 1}\n'), evaluator, now=at(10))
    assert again == first and again.submitted_at == at(9)
    assert evaluator.calls == 1 and rows(store) == (1, 1)
    with pytest.raises(QuotaExceeded):
        store.submit("tight", token, submission(2), evaluator, now=at(11))
    # The same weights on another board are another entry.
    assert store.submit(board, token, submission(1), evaluator, now=at(11)).id != first.id


def test_another_students_weights_are_refused(store: Store, board: str) -> None:
    jane, bob = store.add_student("jdoe", "Jane"), store.add_student("bob", "Bob")
    entry = store.submit(board, jane, submission(1), FixedEvaluator(), now=at(9))
    with pytest.raises(WeightsTaken, match=f"already entry {entry.id} of board 'basics'"):
        store.submit(board, bob, submission(1), FixedEvaluator(), now=at(10))
    assert rows(store) == (1, 1)


def test_quota_counts_submissions_per_utc_day(store: Store, board: str) -> None:
    token = store.add_student("jdoe", "Jane Doe")
    evaluator = FixedEvaluator()
    for seed, moment in enumerate([at(0, 0), at(12), at(23, 59)]):
        store.submit(board, token, submission(seed), evaluator, now=moment)
    with pytest.raises(QuotaExceeded, match=r"all 3 of today's submissions to board 'basics'.*in 0 h 1 min\.$"):
        store.submit(board, token, submission(10), evaluator, now=at(23, 59))
    # 18:00 at UTC-8 is 02:00 UTC the next day: a new quota.
    pacific = dt.timezone(dt.timedelta(hours=-8))
    store.submit(board, token, submission(11), evaluator, now=dt.datetime(2027, 1, 20, 18, 0, tzinfo=pacific))
    # Another student has a quota of their own.
    store.submit(board, store.add_student("bob", "Bob"), submission(12), evaluator, now=at(23, 59))
    assert evaluator.calls == 5 and rows(store) == (5, 5)


def test_a_board_with_quota_zero_takes_nothing(store: Store) -> None:
    store.add_board("closed", "basics", RULES.model_copy(update={"daily_quota": 0}))
    with pytest.raises(QuotaExceeded):
        store.submit("closed", store.add_student("jdoe", "Jane"), submission(1), FixedEvaluator(), now=at(9))


def _torch_save_checkpoint() -> SubmissionFiles:
    buffer = io.BytesIO()
    torch.save(tensors(1), buffer)  # a zip holding a pickle
    return SubmissionFiles(buffer.getvalue(), TINY)


def _pickle_checkpoint() -> SubmissionFiles:
    return SubmissionFiles(pickle.dumps({"weights": [1.0, 2.0]}), TINY)


def _nan_weights() -> SubmissionFiles:
    weights = tensors(1)
    weights["token_embeddings.weight"][3, 4] = float("nan")
    return SubmissionFiles(save(weights), TINY)


def _config_mismatch() -> SubmissionFiles:
    return SubmissionFiles(save(tensors(1)), TINY.model_copy(update={"d_ff": 48}))


def _too_large() -> SubmissionFiles:
    return SubmissionFiles(save(tensors(1)), TINY)  # with max_parameters below the model's count


class RefusingEvaluator(FixedEvaluator):
    """An evaluation that fails, as a model past the time limit does."""

    def __call__(self, files: SubmissionFiles, rules: object) -> Evaluation:  # type: ignore[override]
        super().__call__(files, rules)  # type: ignore[arg-type]
        raise SubmissionRejected("The evaluation ran past the board's limit of 900 s.")


REJECTIONS: dict[str, tuple[Callable[[], SubmissionFiles], str, str, type[Exception], str]] = {
    # name: (files, board, token, error, message)
    "torch.save": (_torch_save_checkpoint, "basics", "jdoe", SubmissionRejected, "what torch.save writes"),
    "pickle": (_pickle_checkpoint, "basics", "jdoe", SubmissionRejected, "pickle"),
    "nan": (_nan_weights, "basics", "jdoe", SubmissionRejected, "NaN"),
    "config mismatch": (_config_mismatch, "basics", "jdoe", SubmissionRejected, "shape"),
    "over the size limit": (_too_large, "small", "jdoe", SubmissionRejected, "over the board's limit"),
    "wrong token": (lambda: submission(1), "basics", "wrong", InvalidToken, "not valid"),
    "unknown board": (lambda: submission(1), "nope", "jdoe", UnknownBoard, "no board 'nope'"),
}


@pytest.mark.parametrize("case", REJECTIONS)
def test_a_rejected_submission_is_stored_nowhere(store: Store, board: str, case: str) -> None:
    files, board_name, who, error, message = REJECTIONS[case]
    store.add_board("small", "basics", RULES.model_copy(update={"max_parameters": 1000}))
    tokens = {"jdoe": store.add_student("jdoe", "Jane"), "wrong": "not-a-token"}
    evaluator = FixedEvaluator()
    with pytest.raises(error, match=message) as caught:
        store.submit(board_name, tokens[who], files(), evaluator, now=at(9))
    assert "\n" not in str(caught.value)
    assert evaluator.calls == 0 and rows(store) == (0, 0)


def test_a_failed_evaluation_is_stored_nowhere(store: Store, board: str) -> None:
    token = store.add_student("jdoe", "Jane")
    evaluator = RefusingEvaluator()
    with pytest.raises(SubmissionRejected, match="past the board's limit"):
        store.submit(board, token, submission(1), evaluator, now=at(9))
    assert evaluator.calls == 1 and rows(store) == (0, 0)
    # Nor did it use up any quota.
    for seed in range(RULES.daily_quota):
        store.submit(board, token, submission(seed), FixedEvaluator(), now=at(10))


def test_the_real_evaluator_scores_what_the_store_keeps(store: Store, board: str, tmp_path: Path) -> None:
    course = course_with_board(tmp_path / "course")
    text = write_validation_text(tmp_path / "data")
    vocab, merges = byte_tokenizer()
    files = SubmissionFiles(save(tensors(7)), TINY, vocab=vocab, merges=merges)

    def evaluator(sub: SubmissionFiles, rules: object) -> Evaluation:
        return evaluate_submission(sub, rules, course, data_dir=tmp_path / "data", device="cpu")  # type: ignore[arg-type]

    entry = store.submit(board, store.add_student("jdoe", "Jane"), files, evaluator, now=at(9))
    direct = evaluator(files, RULES)
    detail = store.entry(entry.id)
    assert detail.bytes == len(text.encode()) == direct.bytes
    assert detail.tokens == direct.tokens == len(text.encode()) + 3  # a token per byte, an <|endoftext|> per document
    assert entry.bits_per_byte == pytest.approx(direct.bits_per_byte, abs=1e-12)
    assert entry.loss == pytest.approx(direct.loss, abs=1e-12)
    assert 7.0 < entry.bits_per_byte < 9.0  # untrained: about log2(257) bits per byte-token


# ------------------------------------------------------------------------------------ rankings


def test_ranking_shows_each_students_best_entry_best_first(store: Store, board: str) -> None:
    tokens = {name: store.add_student(name, name.title()) for name in ("ann", "bob", "cy", "dee")}
    submitted = [  # (student, bits per byte, hour)
        ("ann", 1.30, 9), ("ann", 1.10, 10), ("ann", 1.20, 11),  # her best is her second
        ("bob", 1.10, 8),  # the same score as ann's best, earlier: ranks above her
        ("cy", 1.50, 9),
        ("dee", 0.90, 12),
    ]
    for seed, (who, bpb, hour) in enumerate(submitted):
        store.submit(board, tokens[who], submission(seed), FixedEvaluator(bpb), now=at(hour))
    ranking = store.ranking(board)
    assert [(e.rank, e.student_id, e.bits_per_byte) for e in ranking] == [
        (1, "dee", 0.90), (2, "bob", 1.10), (3, "ann", 1.10), (4, "cy", 1.50),
    ]
    assert ranking[2].submitted_at == at(10)
    # An entry beaten by the same student's better one has no rank.
    anns_first = next(e for e in store.ranking(board, include_hidden=True) if e.student_id == "ann")
    assert store.entry(anns_first.id - 1).entry.rank is None
    assert store.board(board).entries == 6


def test_hidden_entries_leave_the_ranking_until_shown_again(store: Store, board: str) -> None:
    ann, bob = store.add_student("ann", "Ann"), store.add_student("bob", "Bob")
    best = store.submit(board, ann, submission(1), FixedEvaluator(1.0), now=at(9))
    second = store.submit(board, ann, submission(2), FixedEvaluator(1.4), now=at(10))
    store.submit(board, bob, submission(3), FixedEvaluator(1.2), now=at(9))

    hidden = store.set_hidden(best.id, True, by="ta1")
    assert hidden.hidden and hidden.rank is None
    assert [(e.student_id, e.id) for e in store.ranking(board)] == [("bob", 3), ("ann", second.id)]
    staff_view = store.ranking(board, include_hidden=True)
    assert [(e.student_id, e.hidden) for e in staff_view] == [("ann", True), ("bob", False)]
    assert store.board(board).entries == 2
    assert store.gradescope_leaderboard(board, "ann")[0]["value"] == 1.4

    shown = store.set_hidden(best.id, False, by="ta1")
    assert not shown.hidden and shown.rank == 1
    assert store.ranking(board)[0].id == best.id


def test_verification_can_be_withdrawn_and_restored(store: Store, board: str) -> None:
    entry = store.submit(board, store.add_student("ann", "Ann"), submission(1), FixedEvaluator(), now=at(9))
    assert entry.verified and store.entry(entry.id).unverified_reason is None
    withdrawn = store.set_verified(entry.id, False, by="ta1")
    assert not withdrawn.verified
    assert store.entry(entry.id).unverified_reason == "verification withdrawn by ta1"
    assert store.set_verified(entry.id, True, by="ta2").verified
    assert store.entry(entry.id).unverified_reason is None


def test_unknown_entries(store: Store, board: str) -> None:
    for call in (lambda: store.entry(99), lambda: store.set_hidden(99, True, by="x"),
                 lambda: store.set_verified(99, True, by="x")):
        with pytest.raises(UnknownEntry, match=r"^there is no entry 99\.$"):
            call()


# -------------------------------------------------------------------------------------- exports


def test_markdown_export_is_the_readme_table(store: Store, board: str) -> None:
    ann, bob = store.add_student("ann", "Ann | the *best*"), store.add_student("bob", "Bob")
    store.submit(board, ann, submission(1), FixedEvaluator(1.0), now=at(9))
    late = store.submit(board, bob, submission(2), FixedEvaluator(1.23456), now=at(9, day=1))
    store.set_verified(late.id, False, by="ta1")
    assert store.export_markdown(board) == (
        "| Rank | Name | bpb | Loss | Perplexity | Params | Date | Verified |\n"
        "|---:|---|---:|---:|---:|---:|---|:---:|\n"
        "| 1 | Ann \\| the \\*best\\* | 1.0000 | 2.7726 | 16.00 | 123.5K | 2027-01-20 | ✓ |\n"
        "| 2 | Bob | 1.2346 | 3.4229 | 30.66 | 123.5K | 2027-01-21 |  |\n"
    )


def test_empty_board_exports_the_header(store: Store, board: str) -> None:
    assert store.export_markdown(board).count("\n") == 2


def test_gradescope_entries_are_the_students_best(store: Store, board: str) -> None:
    ann = store.add_student("ann", "Ann")
    store.submit(board, ann, submission(1), FixedEvaluator(1.3), now=at(9))
    store.submit(board, ann, submission(2), FixedEvaluator(1.123456), now=at(10))
    assert store.gradescope_leaderboard(board, "ann") == [
        {"name": "bits per byte", "value": 1.1235, "order": "asc"},
        {"name": "loss", "value": 3.1149, "order": "asc"},
        {"name": "perplexity", "value": 22.53, "order": "asc"},
        {"name": "parameters", "value": 123_456, "order": "asc"},
        {"name": "verified", "value": "yes"},
    ]
    assert store.gradescope_leaderboard(board, "nobody") == []


# ---------------------------------------------------------------------------------- concurrency


def _race(count: int, submit: Callable[[int], object]) -> list[object]:
    """Run ``submit(i)`` for i < count in threads released at once; returns results or exceptions."""
    start = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = submit(i)
        except Exception as exc:  # collected: the test asserts on them
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def test_identical_submissions_at_once_make_one_row(store: Store, board: str) -> None:
    token = store.add_student("ann", "Ann")
    evaluator = FixedEvaluator(seconds=0.05)
    outcomes = _race(6, lambda i: store.submit(board, token, submission(1), evaluator, now=at(9)))
    assert all(isinstance(o, EntryView) for o in outcomes), outcomes
    assert len({o.id for o in outcomes}) == 1  # type: ignore[attr-defined]
    assert rows(store) == (1, 1)


def test_identical_weights_from_two_students_at_once(store: Store, board: str) -> None:
    tokens = [store.add_student(f"s{i}", f"S{i}") for i in range(4)]
    outcomes = _race(4, lambda i: store.submit(board, tokens[i], submission(1), FixedEvaluator(seconds=0.05),
                                               now=at(9)))
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, WeightsTaken) for o in outcomes if o is not winners[0])
    assert rows(store) == (1, 1)


def test_the_quota_holds_under_concurrent_submissions(store: Store, board: str) -> None:
    token = store.add_student("ann", "Ann")
    evaluator = FixedEvaluator(seconds=0.05)
    outcomes = _race(8, lambda i: store.submit(board, token, submission(100 + i), evaluator, now=at(9)))
    accepted = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(accepted) == RULES.daily_quota, outcomes
    assert all(isinstance(o, QuotaExceeded) for o in outcomes if o not in accepted)
    assert rows(store) == (RULES.daily_quota, RULES.daily_quota)
