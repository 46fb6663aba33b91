"""Generic tables through `datasets`: CSV and Parquet files train like JSON lines, with clear errors."""
import json
import re

import datasets
import pandas as pd
import pytest

import cott.data
from cott.data import DataError, load_jsonl
from cott.table import checked, json_objects, read_rows
from train.evaluate import main as evaluate_main
from helpers import toy_examples, train_args
from train.cli import main as train_main


def _write(folder, fmt, names=None):
    """Toy train/val/test tables of ``fmt``, the columns renamed as ``names`` says (ours -> the file's)."""
    folder.mkdir()
    for split, n, seed in (("train", 64, 0), ("val", 16, 1), ("test", 16, 2)):
        frame = pd.DataFrame(toy_examples(n, seed)).rename(columns=names or {})
        frame.to_csv(folder / f"{split}.csv", index=False) if fmt == "csv" else frame.to_parquet(folder / f"{split}.parquet")
    return folder


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_table_loads_like_json_lines(tmp_path, fmt):
    folder = _write(tmp_path / fmt, fmt)
    expected = toy_examples(64, 0)
    examples = load_jsonl(folder, "train")
    assert [(e.fields["text"], e.step, e.label) for e in examples] == [(r["text"], (r["step"],), r["label"]) for r in expected]


@pytest.mark.parametrize("fmt, names", [("csv", {"text": "sentence", "step": "kind", "label": "answer"}), ("parquet", None)])
def test_train_from_a_table(tiny_bert, tmp_path, monkeypatch, fmt, names):
    """Training reads every split as Examples memory-mapped from the cache; --columns names a table's columns."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    folder = _write(tmp_path / fmt, fmt, names)
    loaded, collect = [], cott.data.collect
    monkeypatch.setattr(cott.data, "collect", lambda *args: loaded.append(collect(*args)) or loaded[-1])
    columns = ["--columns", ",".join(f"{k}={v}" for k, v in names.items())] if names else []
    result = train_main(train_args(tiny_bert, folder, tmp_path / "run", "--epochs", "1", "--eval-test", *columns))
    assert result["test"]["examples"] == 16 and [len(e) for e in loaded] == [64, 16, 16, 16]  # test: report, reading
    assert all(e.dataset.cache_files[0]["filename"].startswith(str(tmp_path / "hf")) for e in loaded)
    config = json.loads((tmp_path / "run" / "best" / "cott.json").read_text())
    assert config["step_answers"] == {"animal": ["cat", "dog", "horse"], "vehicle": ["bus", "car", "truck"]}
    # the column names travel with the checkpoint: train.evaluate reads the renamed file without being told them
    again = evaluate_main(["--checkpoint", str(tmp_path / "run" / "best"), "--data", str(folder),
                           "--output", str(tmp_path / "again.json")])
    assert again["examples"] == 16 and again["answer"] == result["test"]["answer"]


def test_table_errors_name_the_file_and_row(tmp_path):
    (tmp_path / "train.csv").write_text("text,step,label\na cat,animal,cat\na bus,vehicle,\n")
    with pytest.raises(DataError, match=r"train.csv, line 3: missing field 'label'"):
        load_jsonl(tmp_path / "train.csv", "train")
    (tmp_path / "nostep.csv").write_text("text,label\na cat,cat\n")
    with pytest.raises(DataError, match="missing field 'step'"):
        load_jsonl(tmp_path / "nostep.csv", "train")
    with pytest.raises(DataError, match="no test file"):
        load_jsonl(tmp_path, "test")


def test_read_rows_formats_and_limits(tmp_path):
    (tmp_path / "a.csv").write_text('text,step\n"hello, there",travel\nbye,\n')
    rows = read_rows(tmp_path / "a.csv")
    assert [(r["text"], r["step"], r["label"]) for r in rows] == [("hello, there", "travel", None), ("bye", None, None)]
    (tmp_path / "b.jsonl").write_text('{"text": "a", "step": ["person", "organization"]}\n{"text": "b"}\n')
    assert [r["step"] for r in read_rows(tmp_path / "b.jsonl")] == ["person | organization", None]
    (tmp_path / "c.json").write_text('[{"text": "a"}, {"text": "b", "label": "7"}]')
    assert [r["label"] for r in read_rows(tmp_path / "c.json")] == [None, "7"]
    pd.DataFrame({"text": ["p", "q"], "label": ["1", None]}).to_parquet(tmp_path / "d.parquet")
    assert [r["label"] for r in read_rows(tmp_path / "d.parquet")] == ["1", None]
    (tmp_path / "n.csv").write_text("text,label\n1,2\n")
    assert read_rows(tmp_path / "n.csv")[0] == {"text": "1", "step": None, "label": "2", "subj": None, "obj": None}
    assert len(read_rows(tmp_path / "a.csv", max_rows=2)) == 2
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'e.csv'))}: 3 rows; the limit is 2: split the file$"):
        (tmp_path / "e.csv").write_text("text\na\nb\nc\n")
        read_rows(tmp_path / "e.csv", max_rows=2)
    (tmp_path / "big.csv").write_text("text\n" + "a\n" * 1001)
    with pytest.raises(DataError, match=r"big.csv: 1,001 rows; the limit is 1,000: split the file$"):
        read_rows(tmp_path / "big.csv", max_rows=1000)
    (tmp_path / "f.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(DataError, match='no "text" column'):
        read_rows(tmp_path / "f.csv")
    (tmp_path / "g.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_rows(tmp_path / "g.csv")
    (tmp_path / "i.csv").write_text("text,step\n")
    with pytest.raises(DataError, match="no rows"):
        read_rows(tmp_path / "i.csv")
    (tmp_path / "h.csv").write_text("text,step\na,b\n,c\n")
    with pytest.raises(DataError, match='h.csv, line 3: the "text" cell is empty'):
        read_rows(tmp_path / "h.csv")


ONE_TEXT_PER_ITEM = r'^Every item of the JSON array must be an object with a "text" field\.$'


@pytest.mark.parametrize("content, texts, batch_error, rows_error", [
    ('[{"text": "a", "label": "x"}, {"text": "b"}]', ["a", "b"], None, None),
    ('[{"text": "a"}, {"text": ', None, r"^The file is not valid JSON \(", r"up.json: not valid JSON \("),
    ('[{"text": "a"}, 7]', None, ONE_TEXT_PER_ITEM, r"up.json: a JSON file must be an array of objects, or one object per line$"),
    ('[{"text": "a"}, {"sentence": "b"}]', None, ONE_TEXT_PER_ITEM, r'up.json, line 2: the "text" cell is empty$'),
])
def test_one_json_array_reader_for_both_upload_tabs(tmp_path, content, texts, batch_error, rows_error):
    """cott.table.json_objects reads a JSON array for read_rows (the Experiment tab) and the Batch tab's files; each
    words its own messages."""
    from cott_demo.files import read_batch_file
    from cott_demo.inputs import InputError

    path = tmp_path / "up.json"
    path.write_text(content, encoding="utf-8")
    if texts is not None:
        assert json_objects(content) == json.loads(content)
        assert [row["text"] for row in read_batch_file(str(path))] == texts  # rows keep their other columns
        assert [r["text"] for r in read_rows(path)] == texts
        return
    with pytest.raises(InputError, match=batch_error):
        read_batch_file(str(path))
    with pytest.raises(DataError, match=rows_error):
        read_rows(path)


def test_json_objects_refuses_what_is_not_an_array_of_objects():
    with pytest.raises(ValueError):
        json_objects("[{")
    for content in ('{"text": "a"}', "[1, 2]", '[{"text": "a"}, [1]]'):
        with pytest.raises(TypeError):
            json_objects(content)


def test_cells_are_read_as_a_user_means_them(tmp_path):
    """A .tsv splits at tabs only (a comma inside a text stays), a blank cell is a missing one, and a step's parts
    are trimmed ("a | b")."""
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("text\tstep\tlabel\nwell, i saw a cat\tanimal | pet \tcat\na big bus\t  \tbus\n", encoding="utf-8")
    assert read_rows(tsv) == [
        {"text": "well, i saw a cat", "step": "animal | pet ", "label": "cat", "subj": None, "obj": None},
        {"text": "a big bus", "step": None, "label": "bus", "subj": None, "obj": None}]
    csv = tmp_path / "train.csv"
    csv.write_text('text,step,label\n"well, i saw a cat", animal |pet ,cat\n', encoding="utf-8")
    [example] = load_jsonl(csv, "train")
    assert example.fields == {"text": "well, i saw a cat"} and example.step == ("animal", "pet") and example.label == "cat"
    blank = tmp_path / "val.csv"
    blank.write_text("text,step,label\na cat,animal,   \n", encoding="utf-8")
    with pytest.raises(DataError, match="missing field 'label'"):
        list(load_jsonl(blank, "val"))


def test_a_table_without_text_says_which_columns_it_has(tmp_path):
    """The message lists the first 8 columns found (or "none"), so a user sees what the file holds."""
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b,c,d,e,f,g,h,i,j\n1,2,3,4,5,6,7,8,9,10\n")
    with pytest.raises(DataError, match=rf'^{re.escape(str(wide))}: no "text" column \(found: a, b, c, d, e, f, g, h\)$'):
        read_rows(wide)
    for content, found in (('[{"sentence": "a"}]', "none"), ('[{"sentence": "a", "step": "s"}, {"label": "l"}]', "step, label"),
                           ('\n  [{"sentence": "a"}]', "none")):  # an array after blank space too
        array = tmp_path / "rows.json"  # a JSON array keeps only the known columns that some row holds
        array.write_text(content)
        with pytest.raises(DataError, match=rf'^{re.escape(str(array))}: no "text" column \(found: {found}\)$'):
            read_rows(array)
    array.write_text('[{"text": "a"}, {"text": "b", "label": "l"}]')
    assert read_rows(array) == [{"text": "a", "step": None, "label": None, "subj": None, "obj": None},
                                {"text": "b", "step": None, "label": "l", "subj": None, "obj": None}]
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'absent.csv'))}: file not found$"):
        read_rows(tmp_path / "absent.csv")


def test_a_table_with_no_rows_says_whether_it_is_a_file_or_a_split(tmp_path):
    empty = datasets.Dataset.from_dict({"text": [], "label": []})
    with pytest.raises(DataError, match=r"^someone/intents \[train\]: the split has no rows$"):
        checked(empty, "someone/intents [train]")
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 't.csv'))}: the file has no rows$"):
        checked(empty, tmp_path / "t.csv")
    one = datasets.Dataset.from_dict({"text": ["a"], "label": ["b"]})
    assert checked(one, "someone/intents [train]")[0] == {"text": "a", "label": "b"}


def test_mapped_columns_replace_and_may_swap_the_files_own(tmp_path):
    """A mapped column replaces a column of our name in the file; two columns may trade names."""
    f = tmp_path / "train.csv"
    f.write_text("text,sentence,step,label\nignored,a cat,cat,animal\n")
    [example] = load_jsonl(f, "train", "text=sentence,step=label,label=step")
    assert (example.fields, example.step, example.label) == ({"text": "a cat"}, ("animal",), "cat")
    table = checked(datasets.Dataset.from_dict({"text": ["t"], "sentence": ["s"], "step": ["x"], "label": ["y"]}), "hub",
                    {"text": "sentence", "step": "label", "label": "step", "subj": "subj"})
    assert sorted(table.column_names) == ["label", "step", "text"] and table[0] == {"text": "s", "step": "y", "label": "x"}


def test_an_unreadable_table_names_its_format_and_the_cause(tmp_path, monkeypatch):
    for name, content, says in [
            ("latin.csv", "text,label\ncaf\xe9,1\n".encode("latin-1"), "could not be read as CSV: UnicodeDecodeError: 'utf-8' codec can't decode"),
            ("quote.csv", b'text,label\n"a,1\nb,2\n', "could not be read as CSV: ParserError: Error tokenizing data"),
            ("bom.csv", "\ufeff".encode("utf-8"), "could not be read as CSV: EmptyDataError: No columns to parse from file"),
            ("junk.parquet", b"not a parquet file", "could not be read as PARQUET: ArrowInvalid: Parquet magic bytes not found"),
            ("broken.jsonl", b'{"text": "a"}\n{"text": \n', "could not be read as JSON: ArrowInvalid: JSON parse error"),
            ("latin.json", '[{"text": "caf\xe9"}]'.encode("latin-1"), r"not valid JSON \('utf-8' codec can't decode byte 0xe9")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / name))}: {says}"):
            read_rows(tmp_path / name)

    def load_dataset(*args, **kwargs):
        raise RuntimeError("wrapped") from OSError("disk " + "x" * 1000)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(DataError) as raised:  # the cause, not datasets' wrapper; cut at 500 characters
        read_rows(tmp_path / "quote.csv")
    problem = str(raised.value).removeprefix(f"{tmp_path / 'quote.csv'}: ")
    assert problem.startswith("could not be read as CSV: OSError: disk xxx") and len(problem) == 500


def test_cells_keep_what_a_spreadsheet_or_a_json_file_wrote(tmp_path):
    """A spreadsheet's byte-order mark is no part of the first column's name; numbers and objects in JSON lines are
    read as their text; a CSV whose first column's name starts with "[" is still a CSV, and its header may hold a
    quoted line break."""
    bom = tmp_path / "excel.csv"
    bom.write_bytes("\ufefftext,label\n1,2\n".encode("utf-8"))
    assert read_rows(bom) == [{"text": "1", "step": None, "label": "2", "subj": None, "obj": None}]
    lines = tmp_path / "rows.jsonl"
    lines.write_text('{"text": "a", "step": 7, "label": {"x": 1}, "subj": true, "obj": 0.5}\n')
    assert read_rows(lines) == [{"text": "a", "step": "7", "label": '{"x": 1}', "subj": "True", "obj": "0.5"}]
    brackets = tmp_path / "ids.csv"
    brackets.write_text("[id],text\n1,hello\n")
    assert [r["text"] for r in read_rows(brackets)] == ["hello"]
    windows = tmp_path / "windows.csv"  # a quoted header cell may hold a Windows line break
    windows.write_bytes(b'"multi\r\nline",text\r\nx,hello\r\n')
    assert [r["text"] for r in read_rows(windows)] == ["hello"]


def test_json_objects_says_what_is_wrong_with_json_that_is_not_an_array_of_objects():
    for content in ('{"text": "a"}', '[{"text": "a"}, "b"]'):
        with pytest.raises(TypeError, match="^not an array of objects$"):
            json_objects(content)
    with pytest.raises(ValueError):
        json_objects("[{")
