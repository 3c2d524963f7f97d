"""The built-in synthetic story generator: determinism, richness, negation."""

import random
import re

import pytest

from tl_bilinear.data import (
    construction_counts,
    distinct_story_lower_bound,
    distinct_words,
    generate_story,
    iter_stories,
    stories,
)
from tl_bilinear.data import story_templates as T


def test_deterministic_and_indexable():
    stream = list(iter_stories(seed=3, stop=50))
    assert stream == list(iter_stories(seed=3, stop=50))
    assert stream[17] == generate_story(17, seed=3)
    assert list(iter_stories(seed=3, start=40, stop=50)) == stream[40:]


def test_seeds_give_different_corpora():
    a, b = list(iter_stories(seed=0, stop=20)), list(iter_stories(seed=1, stop=20))
    assert not set(a) & set(b)


def test_stories_are_distinct():
    stories = list(iter_stories(stop=5000))
    assert len(set(stories)) == len(stories)
    # enough combinations that 10M tokens (~50k stories) almost surely never repeat
    assert distinct_story_lower_bound() > 10**15


def test_at_least_2000_distinct_words():
    words = distinct_words(iter_stories(stop=3000))
    assert len(words) >= 2000, len(words)


def test_story_shape():
    story = generate_story(0)
    assert story == story.lower()
    assert story.count("\n") >= 3  # several paragraphs
    assert '"' in story or any('"' in generate_story(i) for i in range(1, 5))
    assert 80 < len(story.split()) < 400


def test_negation_and_sentiment_constructions_present():
    counts = construction_counts(iter_stories(stop=2000))
    for key in (
        "was not happy",
        "did not like",
        "was never scared",
        "not bad at all",
        "was not <feeling>",
        "was <positive>",
        "was <negative>",
    ):
        assert counts[key] > 0.02, (key, counts[key])
    assert counts["any negation"] > 2  # per story


def test_negated_feelings_agree_with_the_reaction():
    """After "was not <feeling>." the next sentence reacts to the meaning, not the word."""
    neg_words = "|".join(T.NEG_FEELINGS)
    pos_words = "|".join(T.POS_FEELINGS)
    cry = r"(?:began to cry|frowned|a big tear|sat down and sighed|looked down|hid)"
    joy = (
        r"(?:smiled|laughed and clapped|jumped up and down|gave \w+ a big hug|sang a happy song|\w+ eyes were shining)"
    )
    negated_neg = re.compile(rf"was not (?:{neg_words})(?: anymore| at all)?\. (?:\w+ )?(?:{cry}|{joy})")
    negated_pos = re.compile(rf"was not (?:{pos_words})(?: anymore| at all)?\. (?:\w+ )?(?:{cry}|{joy})")
    good = bad = 0
    for story in iter_stories(stop=1000):
        for m in negated_neg.finditer(story):
            good += bool(re.search(joy + "$", m.group()))
            bad += bool(re.search(cry + "$", m.group()))
        for m in negated_pos.finditer(story):
            good += bool(re.search(cry + "$", m.group()))
            bad += bool(re.search(joy + "$", m.group()))
    assert good > 100 and bad == 0, (good, bad)


@pytest.mark.parametrize("bad", [dict(index=-1), dict(index=2**64), dict(seed=-1), dict(index=1.5)])
def test_bad_arguments(bad):
    kwargs = {"index": 0, "seed": 0, **bad}
    with pytest.raises(ValueError, match="seed|index"):
        generate_story(**kwargs)


def test_second_draws_differ_from_the_first():
    """food2 / neg2 are never the same word as food / neg (a story about "soup and soup")."""
    for seed in [*range(2000), 25538]:  # 25538 drew soup twice
        context = stories._context(random.Random(seed))
        assert context["food2"] != context["food"] and context["neg2"] != context["neg"]
