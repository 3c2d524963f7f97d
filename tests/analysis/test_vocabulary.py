"""The decoded vocabulary: single-token lookup, near-match suggestions, ambiguous strings."""

import pytest
import torch

import tl_bilinear
from tl_bilinear.analysis import token_ids, unembed_directions, vocab_strings, vocabulary


def test_token_strings_and_near_match_suggestions(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "happy", "sad", "scared", "story", "the"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(tmp_path)
    model = tl_bilinear.make_model("ts-micro", d_vocab=6)
    model.set_tokenizer(PreTrainedTokenizerFast.from_pretrained(tmp_path), default_padding_side="right")
    torch.testing.assert_close(unembed_directions(model, ["sad", "happy"]), model.W_U[:, [2, 1]].T.detach())
    with pytest.raises(ValueError, match=r"'sadd' is not a single token.*'sad'"):
        unembed_directions(model, "sadd")


def test_a_string_several_ids_decode_to_is_refused(text_model):
    # byte tokens 0x80.. each decode to '\ufffd': no string lookup may pick one of them silently
    strings = text_model.tokenizer.batch_decode([[i] for i in range(text_model.cfg.d_vocab)])
    assert strings.count("\ufffd") > 1
    with pytest.raises(ValueError, match="is the text of .* token ids .* pass the token id"):
        token_ids(text_model, "\ufffd")
    assert token_ids(text_model, [" happy", strings.index("\ufffd")])[1] == strings.index("\ufffd")


def test_one_message_for_an_unknown_token(text_model):
    vocab = vocabulary(text_model)
    assert vocab.strings == vocab_strings(text_model) and len(vocab) == text_model.cfg.d_vocab
    assert vocab.token_id(" happy") == vocab.strings.index(" happy") and " happy" in vocab
    with pytest.raises(ValueError) as error:
        vocab.token_id(" happi", name="--token")
    assert str(error.value) == (
        f"--token ' happi' is not a single token of this model's vocabulary; near matches: "
        f"{', '.join(repr(t) for t in vocab.near_matches(' happi'))}"
    )
    assert vocab.near_matches(" happi")[0] == " happy"
    with pytest.raises(ValueError, match=r"^'zzzzqqq' is not a single token of this model's vocabulary$"):
        token_ids(text_model, "zzzzqqq", vocab=vocab)
