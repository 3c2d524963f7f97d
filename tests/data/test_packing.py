"""TokenBlockStream: exact packing, split, sharding, resume; unigram entropy."""

import json
import math
import re

import pytest
import torch

from tl_bilinear.data import TokenBlockStream, is_validation, iter_documents, unigram_entropy

N_CTX = 32


def docs(n=120):
    """Documents of very different lengths (shorter and longer than a block)."""
    return [("word " * (1 + (7 * i) % 50)).strip() + f" doc{i}." for i in range(n)]


def expected_stream(tok, texts, split, val_fraction):
    ids = []
    for i, text in enumerate(texts):
        if is_validation(i, val_fraction) == (split == "validation"):
            ids += [tok.eos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
    return ids


@pytest.mark.parametrize("split", ["train", "validation"])
def test_blocks_concatenate_to_the_eos_joined_stream(tok, split):
    texts = docs()
    stream = TokenBlockStream(texts, tok, N_CTX, split=split, val_fraction=0.3)
    blocks = list(stream)
    assert all(b.dtype == torch.long and b.shape == (N_CTX,) for b in blocks)
    ids = expected_stream(tok, texts, split, 0.3)
    assert len(blocks) == len(ids) // N_CTX > 2
    assert torch.cat(blocks).tolist() == ids[: len(blocks) * N_CTX]


def test_split_is_deterministic_and_disjoint(tok):
    texts = docs()
    val = [i for i in range(len(texts)) if is_validation(i, 0.3)]
    assert 0.15 < len(val) / len(texts) < 0.45
    assert val == [i for i in range(len(texts)) if is_validation(i, 0.3)]

    def tags(split):  # documents seen by a split, by their unique tag
        blocks = list(TokenBlockStream(texts, tok, N_CTX, split=split, val_fraction=0.3))
        return {int(i) for i in re.findall(r"doc(\d+)\.", tok.decode(torch.cat(blocks)))}

    train, valid = tags("train"), tags("validation")
    assert train and valid and not train & valid
    assert valid <= set(val) and len(valid) >= len(val) - 2  # a partial last block is dropped


def test_sources_by_name_and_factory_agree(tok):
    by_name = TokenBlockStream("builtin", tok, N_CTX, seed=4)
    factory = TokenBlockStream(lambda: iter_documents("builtin", seed=4, limit=50), tok, N_CTX)
    for a, b, _ in zip(by_name, factory, range(20)):
        assert torch.equal(a, b)


def test_sharding_disjoint_and_complete(tok):
    texts = docs(200)
    single = list(TokenBlockStream(texts, tok, N_CTX))
    ws = 3
    shards = [list(TokenBlockStream(texts, tok, N_CTX, rank=r, world_size=ws)) for r in range(ws)]
    rounds = len(single) // ws
    assert all(len(s) == rounds for s in shards)  # equal counts: no DDP hang
    for r, shard in enumerate(shards):
        for k, block in enumerate(shard):
            assert torch.equal(block, single[k * ws + r])
    # a global batch of the single stream = the union of the ranks' batches
    assert torch.equal(torch.cat([s[0] for s in shards]), torch.cat(single[:ws]))


@pytest.mark.parametrize("world_size", [1, 2])
def test_resume_is_exact(tok, world_size):
    texts = docs(200)

    def make(rank):
        return TokenBlockStream(texts, tok, N_CTX, rank=rank, world_size=world_size, repeat=True)

    for rank in range(world_size):
        reference = make(rank).batches(3)
        want = [next(reference) for _ in range(12)]
        first = make(rank)
        batches = first.batches(3)
        got = [next(batches) for _ in range(5)]
        state = json.loads(json.dumps(first.state_dict()))  # JSON round trip
        resumed = make(rank)
        resumed.load_state_dict(state)
        got += [b for b, _ in zip(resumed.batches(3), range(7))]
        assert all(torch.equal(a, b) for a, b in zip(got, want)) and len(got) == 12
    # the saved state is rank-independent (ranks move in lockstep)
    if world_size == 2:
        states = []
        for rank in range(2):
            s = make(rank)
            next(iter(s))
            states.append(s.state_dict())
        assert states[0] == states[1]


def test_resume_builtin_mid_document(tok):
    ref = TokenBlockStream("builtin", tok, 200)
    it = iter(ref)
    want = [next(it) for _ in range(6)]
    first = TokenBlockStream("builtin", tok, 200)
    it = iter(first)
    for _ in range(3):
        next(it)
    state = first.state_dict()
    assert state["token_offset"] > 0 or state["doc_index"] > 0
    again = TokenBlockStream("builtin", tok, 200)
    again.load_state_dict(state)
    it = iter(again)
    assert all(torch.equal(next(it), w) for w in want[3:])


def test_repeat_continues_into_next_epoch(tok):
    texts = docs(30)
    once = list(TokenBlockStream(texts, tok, N_CTX))
    stream = TokenBlockStream(texts, tok, N_CTX, repeat=True)
    more = [b for b, _ in zip(stream, range(3 * len(once)))]
    assert len(more) == 3 * len(once)
    assert stream.state_dict()["epoch"] >= 2


def test_state_from_other_settings_is_refused(tok):
    state = TokenBlockStream(docs(), tok, N_CTX).state_dict()
    with pytest.raises(ValueError, match="n_ctx=32.*n_ctx=64"):
        TokenBlockStream(docs(), tok, 64).load_state_dict(state)
    with pytest.raises(ValueError, match="world_size"):
        TokenBlockStream(docs(), tok, N_CTX, world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="not a TokenBlockStream state"):
        TokenBlockStream(docs(), tok, N_CTX).load_state_dict({"step": 3})


def test_short_documents_are_packed_and_tiny_corpus_is_an_error(tok):
    short = ["hi."] * 40  # every document far shorter than a block
    blocks = list(TokenBlockStream(short, tok, N_CTX, val_fraction=0.1))
    assert len(blocks) >= 2
    with pytest.raises(ValueError, match=r"'train' split .* tokens .*fewer than world_size=1 block\(s\) of n_ctx=32"):
        list(TokenBlockStream(["hi.", "there."], tok, N_CTX))
    with pytest.raises(ValueError, match="fewer than world_size=4"):
        list(TokenBlockStream(short, tok, N_CTX, world_size=4, rank=3, val_fraction=0.1))


def test_bad_arguments(tok):
    with pytest.raises(ValueError, match="split"):
        TokenBlockStream(docs(), tok, N_CTX, split="test")
    with pytest.raises(ValueError, match="rank"):
        TokenBlockStream(docs(), tok, N_CTX, rank=2, world_size=2)
    with pytest.raises(TypeError, match="one-shot iterator"):
        TokenBlockStream(iter(docs()), tok, N_CTX)
    with pytest.raises(FileNotFoundError):
        list(TokenBlockStream("/no/such/corpus.txt", tok, N_CTX))


def test_unigram_entropy(tok):
    assert unigram_entropy(torch.tensor([3, 3, 3]), 5) == 0.0
    assert math.isclose(unigram_entropy(torch.arange(8).repeat(4), 8), math.log(8))
    stream = TokenBlockStream("builtin", tok, 64)
    before = stream.state_dict()
    h = unigram_entropy(stream, len(tok), max_tokens=20_000)
    assert stream.state_dict() == before  # position untouched
    assert 3.0 < h < math.log(len(tok))
    with pytest.raises(ValueError, match="token ids must be in"):
        unigram_entropy(torch.tensor([0, 9]), 5)


def test_resume_with_a_source_limit_reads_the_same_documents(tok):
    limited = {"limit": 40}
    ref = list(TokenBlockStream("builtin", tok, 64, source_kwargs=limited))
    first = TokenBlockStream("builtin", tok, 64, source_kwargs=limited)
    it = iter(first)
    got = [next(it) for _ in range(len(ref) // 2)]
    assert first.state_dict()["doc_index"] > 0
    again = TokenBlockStream("builtin", tok, 64, source_kwargs=limited)
    again.load_state_dict(first.state_dict())
    got += list(again)
    assert len(got) == len(ref) and all(torch.equal(a, b) for a, b in zip(got, ref))
    with pytest.raises(ValueError, match="'start'"):
        TokenBlockStream("builtin", tok, 64, source_kwargs={"start": 3})
