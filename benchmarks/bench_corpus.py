"""Measure the built-in synthetic story corpus (``source="builtin"``).

Reports: distinct words, generation speed (stories/s, tokens/s), tokens before any
story repeats (all of the first N stories checked distinct, plus the combinatorial
lower bound), sentiment/negation construction frequencies, and the unigram entropy
(nats/token) under a 4096-entry BPE tokenizer trained on the corpus.

    python benchmarks/bench_corpus.py                 # full run (~1-2 min on 2 cores)
    python benchmarks/bench_corpus.py --distinct 20000 --out corpus.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import tempfile
import time

from machine import print_machine

from tl_bilinear.data import (
    TokenBlockStream,
    construction_counts,
    distinct_story_lower_bound,
    distinct_words,
    iter_documents,
    iter_stories,
    train_tokenizer,
    unigram_entropy,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distinct", type=int, default=200_000, help="stories checked for repeats")
    parser.add_argument("--words", type=int, default=50_000, help="stories scanned for distinct words")
    parser.add_argument("--tokenizer-docs", type=int, default=20_000)
    parser.add_argument("--entropy-tokens", type=int, default=2_000_000)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    print_machine()
    res: dict[str, object] = {"seed": args.seed}

    # generation speed (pure Python, one core)
    n = 20_000
    t0 = time.perf_counter()
    sample = list(iter_stories(args.seed, stop=n))
    dt = time.perf_counter() - t0
    res["stories_per_s"] = round(n / dt)
    res["words_per_story"] = round(sum(len(s.split()) for s in sample) / n, 1)

    # distinct words, as a function of the sample size
    curve = {}
    words: set[str] = set()
    done = 0
    for size in (1_000, 3_000, 10_000, args.words):
        words |= distinct_words(iter_stories(args.seed, start=done, stop=size))
        done = size
        curve[size] = len(words)
    res["distinct_words_by_stories"] = curve

    # tokenizer (4096 BPE) and tokens/s
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tok = train_tokenizer(
            iter_documents("builtin", seed=args.seed, limit=args.tokenizer_docs), 4096, tmp, show_progress=False
        )
        res["tokenizer_train_s"] = round(time.perf_counter() - t0, 1)
        res["tokenizer_vocab"] = len(tok)
        t0 = time.perf_counter()
        n_tok = sum(len(ids) + 1 for ids in tok(sample, add_special_tokens=False)["input_ids"])
        res["tokens_per_story"] = round(n_tok / n, 1)
        res["tokenize_tokens_per_s"] = round(n_tok / (time.perf_counter() - t0))
        res["generate_tokens_per_s"] = round(res["stories_per_s"] * n_tok / n)
        stream = TokenBlockStream("builtin", tok, 256, seed=args.seed)
        t0 = time.perf_counter()
        blocks = sum(1 for _, _ in zip(stream, range(2000)))
        res["packed_tokens_per_s"] = round(blocks * 256 / (time.perf_counter() - t0))

        # no repeats among the first N stories; count their tokens
        t0 = time.perf_counter()
        seen: set[bytes] = set()
        tokens_checked = 0
        batch: list[str] = []
        repeat_at = None
        for i, story in enumerate(iter_stories(args.seed, stop=args.distinct)):
            digest = hashlib.blake2b(story.encode(), digest_size=16).digest()
            if digest in seen and repeat_at is None:
                repeat_at = i
            seen.add(digest)
            batch.append(story)
            if len(batch) == 2000:
                tokens_checked += sum(len(x) + 1 for x in tok(batch, add_special_tokens=False)["input_ids"])
                batch = []
        if batch:
            tokens_checked += sum(len(x) + 1 for x in tok(batch, add_special_tokens=False)["input_ids"])
        res["distinct_check"] = {
            "stories": args.distinct,
            "distinct": len(seen),
            "first_repeat_at": repeat_at,
            "tokens": tokens_checked,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        bound = distinct_story_lower_bound()
        res["distinct_stories_lower_bound_log10"] = round(math.log10(bound), 2)
        # birthday bound: P(any repeat among k stories) <= k^2 / (2 * bound) for uniform choices
        k = math.ceil(10_000_000 / (n_tok / n))
        res["stories_in_10M_tokens"] = k
        res["birthday_repeat_probability_10M_tokens"] = f"{k * k / (2 * bound):.1e}"

        # sentiment and negation constructions
        counts = construction_counts(sample)
        res["constructions_per_story"] = {k: round(v, 3) for k, v in counts.items() if k != "documents"}

        # unigram entropy of the packed validation stream (what validation loss is compared to)
        for split in ("train", "validation"):
            s = TokenBlockStream("builtin", tok, 256, seed=args.seed, split=split)
            res[f"unigram_entropy_{split}_nats"] = round(unigram_entropy(s, len(tok), args.entropy_tokens), 4)

    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
