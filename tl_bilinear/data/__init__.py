"""Text data: sources, the built-in synthetic story generator, tokenizers, packing.

``iter_documents(source)`` yields documents from ``"builtin"`` (synthetic stories, no
network), local ``.txt`` / ``.jsonl`` / ``.parquet`` files and directories, or a
Hugging Face dataset name (streamed). ``train_tokenizer`` / ``load_tokenizer`` give a
tokenizer TransformerLens accepts; ``TokenBlockStream`` packs documents into
``n_ctx`` blocks with a deterministic train/validation split, DDP sharding and exact
resume.
"""

from tl_bilinear.data.packing import VAL_FRACTION, TokenBlockStream, is_validation, unigram_entropy
from tl_bilinear.data.sources import (
    BUILTIN,
    END_OF_TEXT,
    DocumentStream,
    InvalidUTF8Error,
    iter_documents,
    list_files,
)
from tl_bilinear.data.stories import (
    construction_counts,
    distinct_story_lower_bound,
    distinct_words,
    generate_story,
    iter_stories,
)
from tl_bilinear.data.tokenizer import check_vocab, load_tokenizer, save_tokenizer, train_tokenizer

__all__ = [
    "BUILTIN",
    "END_OF_TEXT",
    "DocumentStream",
    "InvalidUTF8Error",
    "VAL_FRACTION",
    "TokenBlockStream",
    "check_vocab",
    "construction_counts",
    "distinct_story_lower_bound",
    "distinct_words",
    "generate_story",
    "is_validation",
    "iter_documents",
    "iter_stories",
    "list_files",
    "load_tokenizer",
    "save_tokenizer",
    "train_tokenizer",
    "unigram_entropy",
]
