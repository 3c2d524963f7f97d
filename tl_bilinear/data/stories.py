"""A seeded procedural generator of TinyStories-style children's stories (synthetic).

The built-in corpus needs no network: every story is generated on demand from word
lists (``lexicon``) and sentence templates (``story_templates``) written for this
project. It is **synthetic** text, not TinyStories: simpler and more repetitive than
GPT-written stories, but with the same ingredients (named characters, places, objects,
activities, feelings, dialogue, a problem and its resolution, a moral) and with
deliberate sentiment and negation constructions ("was not happy", "did not like it",
"was never scared", "it was not bad at all"), where the sentence that follows a
feeling agrees with its meaning, so a model has to read the negation to predict it.

Story ``i`` depends only on ``(seed, i)``: any story can be generated directly, so the
stream can be indexed, resumed and sharded. Everything is lowercase, with punctuation
and double quotes kept (the paper's TinyStories tokenizer was lowercase).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

from tl_bilinear.checks import check_int
from tl_bilinear.data import lexicon as L
from tl_bilinear.data import story_templates as T

_MAX_INDEX = 1 << 64
_VOWEL_SOUND = set("aeiou")
_A_EXCEPTIONS = {"unicorn": "a", "one": "a", "hour": "an"}


def _article(phrase: str) -> str:
    if phrase in L.MASS_NOUNS:
        return f"some {phrase}"
    first = phrase.split()[0]
    art = _A_EXCEPTIONS.get(first, "an" if first[0] in _VOWEL_SOUND else "a")
    return f"{art} {phrase}"


def _plural(phrase: str) -> str:
    *head, last = phrase.split()
    if last in L.IRREGULAR_PLURAL:
        last = L.IRREGULAR_PLURAL[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2] not in _VOWEL_SOUND:
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*head, last])


_SHE = ("she", "her", "her")
_HE = ("he", "him", "his")
_A_NATURE = tuple(_article(w) for w in L.NATURE)
_A_BUG = tuple(_article(w) for w in L.BUGS)
_A_SOUND = tuple(_article(w) for w in L.SOUNDS)
_A_TOY = tuple(_article(w) for w in L.TOYS)
_A_TREASURE = tuple(_article(w) for w in L.TREASURES)
_A_FOOD = {w: _article(w) for w in L.FOODS}
_TOY_PL = tuple(_plural(w) for w in L.TOYS)
_ANIMAL_PL = tuple(_plural(w) for w in L.ANIMALS)
_A_LOOK = {w: _article(w) for w in L.LOOKS}


def _character(c, r) -> tuple[str, str, tuple[str, str, str]]:
    """(name, kind, pronouns) of a random character."""
    u = r()
    if u < 0.3:
        return c(L.GIRL_NAMES), "girl", _SHE
    if u < 0.6:
        return c(L.BOY_NAMES), "boy", _HE
    if u < 0.8:
        return c(L.GIRL_NAMES), c(L.ANIMALS), _SHE
    return c(L.BOY_NAMES), c(L.ANIMALS), _HE


def _chooser(r):
    """``choose(seq)``: one element of ``seq``, drawn with one call of ``r``."""
    return lambda seq: seq[int(r() * len(seq))]


def _other(choose, seq, first):
    """A second draw from ``seq`` that differs from ``first`` (one draw either way, so the stream stays aligned)."""
    second = choose(seq)
    return second if second != first else seq[(seq.index(first) + 1) % len(seq)]


def _context(rng: random.Random) -> dict[str, str]:
    """All slot values of one story.

    One long table of draws, kept in one function on purpose: the order of the draws
    fixes every story of the corpus (tests/data/test_stories.py hashes it).
    """
    r = rng.random

    c = _chooser(r)

    name, kind, (he, him, his) = _character(c, r)
    name2, kind2, (he2, him2, his2) = _character(c, r)
    while name2 == name:
        name2 = c(L.GIRL_NAMES if he2 == "she" else L.BOY_NAMES)
    name3 = c(L.GIRL_NAMES if r() < 0.5 else L.BOY_NAMES)
    neg = c(T.NEG_FEELINGS)
    neg2 = _other(c, T.NEG_FEELINGS, neg)
    food = c(L.FOODS)
    food2 = _other(c, L.FOODS, food)
    look = c(L.LOOKS)
    return {
        "name": name,
        "kind": kind,
        "he": he,
        "him": him,
        "his": his,
        "name2": name2,
        "kind2": kind2,
        "he2": he2,
        "him2": him2,
        "his2": his2,
        "name3": name3,
        "trait": c(L.TRAITS),
        "trait2": c(L.TRAITS),
        "pos": c(T.POS_FEELINGS),
        "neg": neg,
        "neg2": neg2,
        "home": c(L.HOMES),
        "place": c(L.PLACES),
        "time": c(L.TIMES),
        "weather": c(L.WEATHER),
        "look": look,
        "a_look": _A_LOOK[look],
        "color": c(L.COLORS),
        "toy": c(L.TOYS),
        "a_toy": c(_A_TOY),
        "toy_pl": c(_TOY_PL),
        "food": food,
        "food2": food2,
        "a_food": _A_FOOD[food],
        "fam": c(L.FAMILY),
        "pet": c(L.PETS),
        "fear": c(L.SCARY),
        "activity": c(L.ACTIVITIES),
        "activity2": c(L.ACTIVITIES),
        "activity3": c(L.ACTIVITIES),
        "job": c(L.JOBS),
        "clothes": c(L.CLOTHES),
        "num": c(L.NUMBERS),
        "spot": c(L.SPOTS),
        "spot2": c(L.SPOTS),
        "a_nature": c(_A_NATURE),
        "nature": c(L.NATURE),
        "a_bug": c(_A_BUG),
        "a_sound": c(_A_SOUND),
        "sound": c(L.SOUNDS),
        "animal": c(L.ANIMALS),
        "animal_pl": c(_ANIMAL_PL),
        "tool": c(L.TOOLS),
        "good_taste": c(L.GOOD_TASTES),
        "bad_taste": c(L.BAD_TASTES),
        "moral": c(L.MORALS),
        "adv": c(L.ADVERBS),
        "move": c(L.MOVES),
        "place_look": c(L.PLACE_LOOKS),
        "place_look2": c(L.PLACE_LOOKS),
        "hair": c(L.HAIR),
        "eyes": c(L.EYE_COLORS),
        "a_treasure": c(_A_TREASURE),
    }


def _check_args(index: int, seed: int) -> None:
    check_int("seed", seed, low=0)
    check_int("index", index, low=0, high=_MAX_INDEX - 1)


def _story(rng: random.Random) -> str:
    """One story, paragraph by paragraph, from the slot values of :func:`_context`.

    It reads top to bottom as the story does; like ``_context`` it stays one function
    because the order of its draws fixes the corpus.
    """
    r = rng.random

    c = _chooser(r)

    ctx = _context(rng)
    fmt = str.format_map

    # Paragraph 1: who, where, what they like.
    intro = [fmt(c(T.OPENINGS), ctx)]
    seen: set[int] = set()
    for _ in range(1 + int(r() * 3)):
        k = int(r() * len(T.DESCRIPTIONS))
        if k not in seen:
            seen.add(k)
            intro.append(fmt(T.DESCRIPTIONS[k], ctx))

    # Paragraph 2: an outing and a friend (unless the problem introduces the friend).
    problem = c(T.PROBLEMS)
    scene = [fmt(c(T.EVENTS), ctx)]
    if r() < 0.6:
        scene.append(fmt(c(T.SCENERY), ctx))
    if problem is not T.PROBLEMS[-1]:
        scene.append(fmt(c(T.MEET), ctx))
        scene.append(fmt(c(T.GREET), ctx))
        if r() < 0.8:
            scene.append(fmt(c(T.AGREE), ctx))
        else:
            scene.append(fmt(c(T.REFUSE), ctx))
            scene.append(fmt(c(T.FEEL_NEG), ctx))
            scene.append(fmt(c(T.REACT_NEG), ctx))
            scene.append(f"but soon {ctx['name2']} came back to play.")

    # Paragraph 3: the problem, feelings, dialogue, the fix.
    trouble = [fmt(c(problem["trouble"]), ctx)]
    if r() < 0.7:
        trouble.append(fmt(c(problem["detail"]), ctx))
    trouble.append(fmt(c(T.FEEL_NEG), ctx))
    trouble.append(fmt(c(T.REACT_NEG), ctx))
    talk = problem["talk"]
    trouble.extend(fmt(t, ctx) for t in (talk if r() < 0.6 else (c(talk),)))
    fix = [fmt(c(problem["fix"]), ctx), fmt(c(problem["after"]), ctx)]
    fix.append(fmt(c(T.FEEL_POS), ctx))
    if r() < 0.7:
        fix.append(fmt(c(T.REACT_POS), ctx))
    paragraphs = [intro, scene, trouble, fix]

    # Optional episode: trying a food, liked or not.
    if r() < 0.5:
        food = [fmt(c(T.FOOD_INTRO), ctx)]
        liked = r() < 0.5
        food.append(fmt(c(T.LIKE if liked else T.DISLIKE), ctx))
        food.append(fmt(c(T.LIKE_REACT if liked else T.DISLIKE_REACT), ctx))
        paragraphs.append(food)

    first = c(T.ENDINGS)
    ending = [fmt(first, ctx)]
    second = c(T.ENDINGS)
    if r() < 0.5 and second is not first:
        ending.append(fmt(second, ctx))
    if r() < 0.25:
        ending.append("the end.")
    paragraphs.append(ending)
    return "\n".join(" ".join(p) for p in paragraphs)


def generate_story(index: int, seed: int = 0) -> str:
    """Story number ``index`` of the built-in synthetic corpus with ``seed``.

    Args:
        index: position of the story in the stream, ``0 <= index < 2**64``.
        seed: corpus seed (non-negative integer); different seeds give different corpora.

    Returns:
        The story text (lowercase, several lines). It depends only on ``(seed, index)``.

    Raises:
        ValueError: if ``index`` or ``seed`` is out of range.
    """
    _check_args(index, seed)
    return _story(random.Random((seed << 64) | index))


def iter_stories(seed: int = 0, start: int = 0, stop: int | None = None) -> Iterator[str]:
    """Stories ``start, start + 1, ...`` (up to ``stop``, exclusive; forever if ``None``).

    Args:
        seed: corpus seed (non-negative integer).
        start: index of the first story; resuming at ``start`` costs nothing.
        stop: index after the last story, or ``None`` for an endless stream.

    Yields:
        Story texts, the same as ``generate_story(i, seed)`` for each index ``i``.

    Raises:
        ValueError: if ``seed`` or ``start`` is out of range.
    """
    _check_args(start, seed)
    base = seed << 64
    i = start
    while stop is None or i < stop:
        yield _story(random.Random(base | i))
        i += 1


def distinct_story_lower_bound() -> int:
    """A lower bound on the number of distinct stories the generator can write.

    Counts only the choices along one fixed path through the templates whose words
    land in separate places of the text (so different choices give different texts):
    opening (hero name, trait, kind), friend (name, kind), problem type, a food and a
    moral in the ending. The true count is far larger.

    Returns:
        The bound (an integer; about 10^17 with the shipped word lists).
    """
    hero = (len(L.GIRL_NAMES) + len(L.BOY_NAMES)) * len(L.TRAITS) * (2 + len(L.ANIMALS))
    friend = (len(L.GIRL_NAMES) + len(L.BOY_NAMES)) * len(L.TRAITS) * (2 + len(L.ANIMALS))
    return hero * friend * len(T.PROBLEMS) * len(L.FOODS) * len(L.MORALS)


#: Regular expressions of the sentiment and negation constructions, for measuring them.
CONSTRUCTIONS: dict[str, re.Pattern] = {
    name: re.compile(pattern)
    for name, pattern in {
        "was not <feeling>": r"\bwas not (?:" + "|".join(T.POS_FEELINGS + T.NEG_FEELINGS) + r")\b",
        "was not happy": r"\bwas not happy\b",
        "did not like": r"\bdid not like\b",
        "was never scared": r"\bwas never scared\b",
        "not bad at all": r"\bnot bad at all\b",
        "did not feel": r"\bdid not feel\b",
        "was <positive>": r"\bwas (?:so |very )?(?:" + "|".join(T.POS_FEELINGS) + r")\b",
        "was <negative>": r"\bwas (?:so |very )?(?:" + "|".join(T.NEG_FEELINGS) + r")\b",
        "any negation": r"\b(?:not|never|no|nobody|nothing)\b",
    }.items()
}


def construction_counts(texts: Iterable[str]) -> dict[str, float]:
    """How often each of ``CONSTRUCTIONS`` occurs, per story.

    Args:
        texts: stories (or any documents).

    Returns:
        ``{construction: occurrences per document}``, plus ``"documents"``.

    Raises:
        ValueError: if ``texts`` is empty.
    """
    counts = dict.fromkeys(CONSTRUCTIONS, 0)
    n = 0
    for text in texts:
        n += 1
        for key, pattern in CONSTRUCTIONS.items():
            counts[key] += len(pattern.findall(text))
    if n == 0:
        raise ValueError("construction_counts needs at least one document, got none")
    return {"documents": n, **{k: v / n for k, v in counts.items()}}


_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def distinct_words(texts: Iterable[str]) -> set[str]:
    """The set of distinct words (lowercase letters, hyphenated words kept) in ``texts``.

    Args:
        texts: documents.

    Returns:
        The distinct words.
    """
    words: set[str] = set()
    for text in texts:
        words.update(_WORD.findall(text.lower()))
    return words
