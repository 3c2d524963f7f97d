"""iter_documents: built-in, local files of each format, the hub code path offline, bad input."""

import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tl_bilinear.data import InvalidUTF8Error, generate_story, iter_documents

TINYSTORIES_TXT = "Once upon a time.\n\nThe end.<|endoftext|>\nTom had a ball.<|endoftext|>\n  <|endoftext|>Lily ran.\n"


def write_jsonl(path, texts, **extra):
    path.write_text("".join(json.dumps({"text": t, **extra}) + "\n" for t in texts))
    return path


def write_parquet(path, texts):
    pq.write_table(pa.table({"text": texts, "id": list(range(len(texts)))}), path)
    return path


def test_builtin_is_the_story_generator():
    docs = list(iter_documents("builtin", seed=2, start=5, limit=3))
    assert docs == [generate_story(i, seed=2) for i in (5, 6, 7)]


def test_tinystories_txt_split_on_endoftext(tmp_path):
    path = tmp_path / "TinyStories-valid.txt"
    path.write_text(TINYSTORIES_TXT)
    # paragraphs inside a story are kept; empty documents dropped; whitespace stripped
    assert list(iter_documents(path)) == ["Once upon a time.\n\nThe end.", "Tom had a ball.", "Lily ran."]


def test_plain_txt_is_one_document(tmp_path):
    path = tmp_path / "essay.txt"
    path.write_text("first paragraph\n\nsecond paragraph\n")
    assert list(iter_documents(str(path))) == ["first paragraph\n\nsecond paragraph"]


def test_jsonl_and_parquet(tmp_path):
    assert list(iter_documents(write_jsonl(tmp_path / "a.jsonl", ["x", "y"], id=1))) == ["x", "y"]
    assert list(iter_documents(write_parquet(tmp_path / "b.parquet", ["p", "q", "r"]))) == ["p", "q", "r"]


def test_directory_sorted_recursive(tmp_path):
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "b.jsonl", ["b1"])
    (tmp_path / "a.txt").write_text("a1<|endoftext|>a2")
    write_parquet(tmp_path / "sub" / "c.parquet", ["c1"])
    (tmp_path / "notes.md").write_text("ignored")
    assert list(iter_documents(tmp_path)) == ["a1", "a2", "b1", "c1"]


def test_start_and_limit_on_files(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [f"d{i}" for i in range(10)])
    assert list(iter_documents(path, start=7)) == ["d7", "d8", "d9"]
    assert list(iter_documents(path, start=2, limit=2)) == ["d2", "d3"]


@pytest.mark.parametrize(
    "builder, writer, name", [("json", write_jsonl, "x.jsonl"), ("parquet", write_parquet, "x.parquet")]
)
def test_hub_code_path_offline_on_local_files(tmp_path, builder, writer, name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    path = writer(tmp_path / name, ["alpha", "beta", "gamma"])
    stream = iter_documents(builder, data_files=str(path))
    assert stream.kind == "hub"
    assert list(stream) == ["alpha", "beta", "gamma"]
    assert list(iter_documents(builder, data_files=str(path), start=1, limit=1)) == ["beta"]


def test_hub_path_missing_text_column(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"story": "a"}\n')
    with pytest.raises(ValueError, match="no 'text' column"):
        list(iter_documents("json", data_files=str(path)))
    assert list(iter_documents("json", data_files=str(path), text_column="story")) == ["a"]


def test_unknown_hub_name_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="could not open Hugging Face dataset 'no-such-user/no-such-set'"):
        list(iter_documents("no-such-user/no-such-set"))


def test_missing_path(tmp_path):
    missing = tmp_path / "nope" / "stories.txt"
    with pytest.raises(FileNotFoundError, match="nope"):
        iter_documents(str(missing))
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        iter_documents(tmp_path / "missing_dir")


def test_empty_corpus(tmp_path):
    with pytest.raises(ValueError, match="empty corpus"):
        iter_documents(tmp_path)  # a directory without corpus files
    (tmp_path / "blank.txt").write_text("  \n<|endoftext|>\n")
    with pytest.raises(ValueError, match="empty corpus"):
        list(iter_documents(tmp_path / "blank.txt"))


def test_unsupported_suffix(tmp_path):
    (tmp_path / "a.csv").write_text("text\nx\n")
    with pytest.raises(ValueError, match=r"unsupported corpus file .*a\.csv"):
        iter_documents(tmp_path / "a.csv")


def test_bad_jsonl_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match=r"a\.jsonl: line 2 is not valid JSON"):
        list(iter_documents(path))


def test_non_utf8_txt_names_file_line_and_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good one<|endoftext|>\nsecond \xff story<|endoftext|>third")
    with pytest.raises(InvalidUTF8Error, match=r"bad\.txt.*line 2, byte offset 29") as info:
        list(iter_documents(path))
    assert (info.value.line, info.value.offset) == (2, 29)
    assert path.read_bytes()[29] == 0xFF


def test_non_utf8_skipped_with_count(tmp_path, caplog):
    (tmp_path / "a.txt").write_bytes(b"one<|endoftext|>t\xc3wo<|endoftext|>three")
    (tmp_path / "b.jsonl").write_bytes(b'{"text": "four"}\n{"text": "fi\xffve"}\n{"text": "six"}\n')
    stream = iter_documents(tmp_path, skip_invalid=True)
    with caplog.at_level(logging.WARNING, logger="tl_bilinear.data.sources"):
        docs = list(stream)
    assert docs == ["one", "three", "four", "six"]
    assert stream.n_skipped == 2 and stream.n_documents == 4
    assert "skipped 2 document(s)" in caplog.text
    with pytest.raises(InvalidUTF8Error, match=r"b\.jsonl.*line 2"):
        list(iter_documents(tmp_path / "b.jsonl"))
