"""The NSFW, toxic-speech and quality classifiers: labels, score types, and clear-cut examples."""

from __future__ import annotations

import pytest

CLEAN = ("The committee met on Tuesday to review the annual budget and approved funding for the new "
         "library, which is expected to open next spring.")
WIKI = ("Paris is the capital and most populous city of France. Situated on the Seine River, in the north of "
        "the country, it is at the heart of the Ile-de-France region. The city is a major railway, highway "
        "and air-transport hub served by two international airports.")
WEB = ("lol i cant believe this happened to me today!!! anyway click here to get 50% off your next order, "
       "limited time only, dont miss out, subscribe and follow for more deals every day")


@pytest.mark.problem("harmful_content")
@pytest.mark.parametrize(("adapter", "labels"), [("run_classify_nsfw", {"nsfw", "non-nsfw"}),
                                                  ("run_classify_toxic_speech", {"toxic", "non-toxic"})])
def test_harmful_content_labels_and_scores(student, adapter, labels):
    label, score = getattr(student, adapter)(text=CLEAN)
    assert label in labels and label.startswith("non-")
    assert type(score) is float and 0.0 < score <= 1.0


@pytest.mark.problem("harmful_content")
def test_toxic_speech_flags_insults(student):
    label, _ = student.run_classify_toxic_speech(text="You are a stupid fucking idiot and a worthless piece of shit.")
    assert label == "toxic"


@pytest.mark.problem("quality_classifier")
def test_quality_separates_encyclopedic_text_from_web_chatter(student):
    assert student.run_classify_quality(text=WIKI)[0] == "wiki"
    label, score = student.run_classify_quality(text=WEB)
    assert label == "cc" and type(score) is float and 0.0 < score <= 1.0
