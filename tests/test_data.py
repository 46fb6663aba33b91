"""Loaders read every supported layout and name the file, line and problem of a malformed one."""
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cott.data import DataError, Example, load_clinc150, load_clinc150_out_of_scope, load_jsonl, load_tacred, load_wos
from cott.examples import Examples
from helpers import needs_data

ROOT = Path(__file__).resolve().parents[1]


def test_generic_jsonl_errors_name_file_and_line(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text('{"text": "a cat", "step": "animal", "label": "cat"}\n\n{"text": "a bus", "label": "bus"}\n')
    with pytest.raises(DataError, match=r"train.jsonl, line 3: missing field 'step'"):
        load_jsonl(f, "train")
    f.write_text('{"text": "a cat", "step": "animal", "label": "cat"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"line 2: invalid JSON"):
        load_jsonl(f, "train")
    f.write_text('{"text": 3, "step": "animal", "label": "cat"}\n')
    with pytest.raises(DataError, match=r"line 1: field 'text' should be str"):
        load_jsonl(f, "train")
    f.write_bytes(b'{"text": "\xff\xfe", "step": "a", "label": "b"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        load_jsonl(f, "train")
    with pytest.raises(DataError, match="file not found"):
        load_jsonl(tmp_path / "missing.jsonl", "train")
    with pytest.raises(ValueError, match=r"^unknown split 'dev'; expected one of \('train', 'val', 'test'\)$"):
        load_jsonl(f, "dev")
    f.write_text('{"text": "a cat", "step": "animal", "label": "cat"}\n')  # fixed: read, nothing left of the errors
    assert [e.label for e in load_jsonl(f, "train")] == ["cat"]


def test_generic_jsonl_says_which_field_of_which_line_is_wrong(tmp_path):
    f = tmp_path / "train.jsonl"
    good = '{"text": "a cat", "step": "animal", "label": "cat"}'
    for bad, problem in [('{"step": "animal", "label": "cat"}', "missing field 'text'"),
                         ('{"text": "a cat", "step": "animal"}', "missing field 'label'"),
                         ('{"text": "a cat", "step": "animal", "label": 3}', "field 'label' should be str, got int"),
                         ('{"text": ["a cat"], "step": "animal", "label": "cat"}', "field 'text' should be str, got list"),
                         ('{"text": "a cat", "step": 3, "label": "cat"}', "field 'step' should be .*, got int"),
                         ('{"text": "a cat", "step": [], "label": "cat"}', "step should be a non-empty string or a list of them"),
                         ('{"text": "a cat", "step": "", "label": "cat"}', "step should be a non-empty string or a list of them"),
                         ('{"text": "a cat", "step": ["animal", ""], "label": "cat"}', "step should be a non-empty string or a list of them"),
                         ('{"text": "a cat", "step": ["animal", 2], "label": "cat"}', "step should be a non-empty string or a list of them"),
                         ('["a cat", "animal", "cat"]', "expected a JSON object, got list"),
                         ('{"text": "a cat", "step": "animal", "label": "cat",}', r"invalid JSON: Expecting property name enclosed in double quotes \(column 52\)")]:
        f.write_text(f"{good}\n\n  \n{bad}\n")  # blank lines are skipped, and counted
        with pytest.raises(DataError, match=rf"^{re.escape(str(f))}, line 4: {problem}$"):
            load_jsonl(f, "train")
    f.write_bytes(good.encode() + b"\n" + '{"text": "caf\u00e9"}'.encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(f))}: not UTF-8 text \(invalid continuation byte\)$"):
        load_jsonl(f, "train")
    f.write_text('{"sentence": "a bus", "step": "vehicle", "label": "bus"}\n' + good + "\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(f))}, line 2: missing field 'sentence'$"):  # the source's column name
        load_jsonl(f, "train", "text=sentence")


def test_a_folder_holds_each_split_as_one_table(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a cat", "step": "animal", "label": "cat"}\n')
    (tmp_path / "train.csv").write_text("text,step,label\na bus,vehicle,bus\n")  # JSON lines come first
    (tmp_path / "val.csv").write_text("text,step,label\na bus,vehicle,bus\n")
    assert [e.label for e in load_jsonl(tmp_path, "train")] == ["cat"]
    assert [e.label for e in load_jsonl(tmp_path, "val")] == ["bus"]
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}: no test file \(looked for test.jsonl, test.csv, test.parquet\)$"):
        load_jsonl(tmp_path, "test")
    (tmp_path / "UPPER.CSV").write_text("text,step,label\na van,vehicle,van\n")  # the suffix in any case
    assert [e.label for e in load_jsonl(tmp_path / "UPPER.CSV", "train")] == ["van"]

def test_generic_jsonl_multi_part_step(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"text": "t", "step": ["a", "b"], "label": "c"}) + "\n")
    assert load_jsonl(f, "train")[0].step == ("a", "b")


def _tacred_row(**over):
    row = {"token": ["Ada", "works", "for", "Acme", "."], "subj_start": 0, "subj_end": 0, "subj_type": "Peop",
           "obj_start": 3, "obj_end": 3, "obj_type": "Org", "relation": "Work_For"}
    row.update(over)
    return row


def test_tacred_json_and_jsonl(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([_tacred_row()]))
    (tmp_path / "test.jsonl").write_text(json.dumps(_tacred_row(obj_end=4)) + "\n")
    ex = load_tacred(tmp_path, "train")[0]
    assert ex.fields == {"text": "Ada works for Acme .", "subj": "Ada", "obj": "Acme", "marked": "@ Ada @ works for # Acme # ."}
    assert ex.step == ("Peop", "Org") and ex.label == "Work_For"
    assert load_tacred(tmp_path, "test")[0].fields["obj"] == "Acme ."
    assert load_tacred(tmp_path, "test")[0].fields["marked"] == "@ Ada @ works for # Acme . #"
    with pytest.raises(DataError, match="no val file"):
        load_tacred(tmp_path, "val")


def test_tacred_bad_span_names_line(tmp_path):
    f = tmp_path / "dev.jsonl"
    f.write_text(json.dumps(_tacred_row()) + "\n" + json.dumps(_tacred_row(obj_start=7, obj_end=9)) + "\n")
    with pytest.raises(DataError, match=r"dev.jsonl, line 2: obj span \[7, 9\] is outside the 5 tokens"):
        load_tacred(tmp_path, "val")
    f.write_text(json.dumps({k: v for k, v in _tacred_row().items() if k != "relation"}) + "\n")
    with pytest.raises(DataError, match="line 1: missing field 'relation'"):
        load_tacred(f, "val")


def test_clinc_errors(tmp_path):
    (tmp_path / "domains.json").write_text(json.dumps({"banking": ["balance"]}))
    (tmp_path / "data_full.json").write_text(json.dumps({"train": [["what is my balance", "balance"], ["hi", "greeting"]]}))
    with pytest.raises(DataError, match=r"train\[1\]: intent 'greeting' is not in domains.json"):
        load_clinc150(tmp_path, "train")
    with pytest.raises(DataError, match=r"data_full.json: no 'test' split \(keys: \['train'\]\)$"):
        load_clinc150(tmp_path, "test")
    with pytest.raises(DataError, match=r"data_full.json: no 'oos_test' split$"):
        load_clinc150_out_of_scope(tmp_path, "test")
    with pytest.raises(DataError, match=r"absent.json: file not found$"):
        load_clinc150_out_of_scope(tmp_path / "absent.json", "test")
    (tmp_path / "data_full.json").write_text('{"train": [\n  ["what is my balance", "balance"],\n  ["hi" "greeting"]\n]}')
    with pytest.raises(DataError, match=r"data_full.json, line 3: invalid JSON: Expecting ',' delimiter \(column 9\)$"):
        load_clinc150(tmp_path, "train")


def test_clinc_reads_a_data_file_beside_its_domains_and_its_out_of_scope_queries(tmp_path):
    """``path`` may name a ``data_*.json`` file (not only the folder); the out-of-scope queries are the first cell of
    each well-formed ``oos_*`` row."""
    (tmp_path / "domains.json").write_text(json.dumps({"banking": ["balance"], "travel": ["book_flight"]}))
    small = tmp_path / "data_small.json"
    small.write_text(json.dumps({"train": [["my balance", "balance"], ["fly me", "book_flight"]],
                                 "oos_val": [["sing a song", "oos"], [], [3, "oos"], "text", ["tell a joke", "oos"]]}))
    assert [(e.fields, e.step, e.label) for e in load_clinc150(small, "train")] == [
        ({"text": "my balance"}, ("banking",), "balance"), ({"text": "fly me"}, ("travel",), "book_flight")]
    assert load_clinc150_out_of_scope(small, "val") == ["sing a song", "tell a joke"]
    (tmp_path / "data_full.json").write_text(json.dumps({"oos_test": [["weather on mars", "oos"]]}))
    assert load_clinc150_out_of_scope(tmp_path, "test") == ["weather on mars"]
    assert load_clinc150_out_of_scope(small, "val") == ["sing a song", "tell a joke"]  # the file, not the folder's


def test_clinc_says_what_is_wrong_with_a_malformed_file(tmp_path):
    domains, data = tmp_path / "domains.json", tmp_path / "data_full.json"
    domains.write_text(json.dumps(["balance"]))
    data.write_text(json.dumps({"train": [["my balance", "balance"]]}))
    with pytest.raises(DataError, match=rf"^{re.escape(str(domains))}: expected an object mapping each domain to its intents$"):
        load_clinc150(tmp_path, "train")
    domains.write_text(json.dumps({"banking": ["balance"]}))
    data.write_text(json.dumps([["my balance", "balance"]]))
    with pytest.raises(DataError, match=rf"^{re.escape(str(data))}: no 'train' split \(keys: -\)$"):
        load_clinc150(tmp_path, "train")
    with pytest.raises(DataError, match=rf"^{re.escape(str(data))}: no 'oos_train' split$"):
        load_clinc150_out_of_scope(tmp_path, "train")
    for bad in (["my balance"], ["my balance", "balance", "x"], ["my balance", 3], "my balance", {"text": "t"}):
        data.write_text(json.dumps({"val": [["fine", "balance"], bad]}))
        with pytest.raises(DataError, match=rf"^{re.escape(str(data))}: val\[1\] should be \[text, intent\]$"):
            load_clinc150(tmp_path, "val")
    data.write_text(json.dumps({"val": [["fine", "balance"], ["hi", "greet"]]}))
    with pytest.raises(DataError, match=rf"^{re.escape(str(data))}: val\[1\]: intent 'greet' is not in domains.json$"):
        load_clinc150(tmp_path, "val")
    data.write_text('{"val": [["fine", "balance"]')
    with pytest.raises(DataError, match=rf"^{re.escape(str(data))}, line 1: invalid JSON: Expecting ',' delimiter \(column 29\)$"):
        load_clinc150(tmp_path, "val")
    data.unlink()
    with pytest.raises(DataError, match=rf"^{re.escape(str(data))}: file not found$"):
        load_clinc150(tmp_path, "val")
    data.write_bytes(b'{"val": [["caf\xe9", "balance"]]}')
    with pytest.raises(DataError, match=rf"^{re.escape(str(data))}: not UTF-8 text \(invalid continuation byte\)$"):
        load_clinc150(tmp_path, "val")


def test_wos_tsv_split_and_errors(tmp_path):
    f = tmp_path / "Data.txt"
    rows = ["Y1\tY2\tY\tDomain\tarea\tkeywords\tAbstract"] + [f"0\t0\t0\tCS \t Machine learning \tk\tabstract {i}" for i in range(50)]
    f.write_text("\n".join(rows) + "\n")
    parts = [load_wos(f, s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [32, 8, 10]
    assert parts[0][0].step == ("CS",) and parts[0][0].label == "Machine learning"
    assert not {e.fields["text"] for e in parts[0]} & {e.fields["text"] for e in parts[2]}
    f.write_text("Y1\tDomain\n0\tCS\n")
    with pytest.raises(DataError, match="line 1: header lacks column 'area'"):
        load_wos(f, "train")



def test_wos_tsv_malformed_files_name_the_file_and_row(tmp_path):
    f = tmp_path / "Data.txt"
    header = "Domain\tarea\tAbstract\n"
    f.write_text(header + "CS\tML\tabstract one\nCS\tML\n")  # the second data row lacks a column: line 3
    with pytest.raises(DataError, match=r"Data.txt, line 3: expected 3 tab-separated columns, found 2"):
        load_wos(f, "train")
    f.write_text(header + "CS\tML\n")
    with pytest.raises(DataError, match=r"Data.txt, line 2: expected 3"):
        load_wos(f, "train")
    f.write_text("")
    with pytest.raises(DataError, match=r"Data.txt: empty file$"):
        load_wos(f, "train")
    f.write_bytes(header.encode() + b"CS\tML\tcaf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(DataError, match=r"Data.txt: not UTF-8 text \(invalid continuation byte\)$"):
        load_wos(f, "train")
    f.write_text("Y1\tarea\n0\tML\n")
    with pytest.raises(DataError, match=r"Data.txt, line 1: header lacks column 'Domain'"):
        load_wos(f, "train")


def test_wos_tsv_keeps_line_breaks_quoted_in_an_abstract(tmp_path):
    """The csv module reads the raw line ends: a quoted abstract keeps its Windows line break as written."""
    f = tmp_path / "Data.txt"
    f.write_bytes(b'Domain\tarea\tAbstract\r\n' + b''.join(b'CS\tML\t"part %d\r\nnext"\r\n' % i for i in range(5)))
    texts = {e.fields["text"] for s in ("train", "val", "test") for e in load_wos(f, s)}
    assert texts == {f"part {i}\r\nnext" for i in range(5)}


def test_wos_jsonl_errors_name_the_file_and_line(tmp_path):
    f = tmp_path / "wos_train.json"
    good = json.dumps({"doc_token": "an abstract", "doc_label": ["CS", "ML"]})
    for bad, problem in [({"doc_label": ["CS", "ML"]}, "missing field 'doc_token'"),
                         ({"doc_token": "t"}, "missing field 'doc_label'"),
                         ({"doc_token": "t", "doc_label": "CS"}, "field 'doc_label' should be list, got str"),
                         ({"doc_token": "t", "doc_label": ["CS"]}, r"doc_label should be \[domain, area\]"),
                         ({"doc_token": "t", "doc_label": ["CS", 3]}, r"doc_label should be \[domain, area\]"),
                         ({"doc_token": "t", "doc_label": ["CS", "ML", "x"]}, r"doc_label should be \[domain, area\]")]:
        f.write_text(good + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(DataError, match=rf"wos_train.json, line 2: {problem}$"):
            load_wos(tmp_path, "train")
    f.write_text(good + "\n")
    assert [(e.step, e.label) for e in load_wos(tmp_path, "train")] == [(("CS",), "ML")]


def test_wos_reads_one_json_lines_file_by_name(tmp_path):
    """A ``.json`` file is read as HiAGM JSON lines whatever its split; a folder picks ``wos_{split}.json``."""
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"doc_token": "an abstract", "doc_label": [" CS", "ML "]}) + "\n")
    assert [(e.fields, e.step, e.label) for e in load_wos(f, "test")] == [({"text": "an abstract"}, ("CS",), "ML")]
    (tmp_path / "wos_val.json").write_text(json.dumps({"doc_token": "another", "doc_label": ["Bio", "Genes"]}) + "\n")
    assert [e.label for e in load_wos(tmp_path, "val")] == ["Genes"]
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'wos_test.json'))}: file not found$"):
        load_wos(tmp_path, "test")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_wos(f, "dev")


def test_wos_tsv_split_follows_the_seed(tmp_path):
    """The seed shuffles the rows before the 64/16/20 cut: another seed, other rows; the same seed, the same rows."""
    f = tmp_path / "Data.txt"
    f.write_text("Domain\tarea\tAbstract\n" + "".join(f"D\tA{i}\tabstract {i}\n" for i in range(30)))
    order = list(range(30))
    random.Random(5).shuffle(order)
    assert [e.label for e in load_wos(f, "val", seed=5)] == [f"A{i}" for i in order[19:24]]
    assert [e.label for e in load_wos(f, "test", seed=5)] == [f"A{i}" for i in order[24:]]
    assert [e.label for e in load_wos(f, "val", seed=5)] != [e.label for e in load_wos(f, "val")]


def test_tacred_errors_name_the_item_of_a_json_list(tmp_path):
    f = tmp_path / "train.json"
    f.write_text(json.dumps([_tacred_row(), ["not", "an", "object"]]))
    with pytest.raises(DataError, match=r"train.json, line 2: expected a JSON object$"):
        load_tacred(f, "train")
    f.write_text(json.dumps([_tacred_row(), _tacred_row(subj_start="0")]))
    with pytest.raises(DataError, match=r"train.json, line 2: field 'subj_start' should be int, got str"):
        load_tacred(f, "train")
    for field in ("subj_type", "obj_type", "obj_end"):
        f.write_text(json.dumps([{k: v for k, v in _tacred_row().items() if k != field}]))
        with pytest.raises(DataError, match=rf"train.json, line 1: missing field '{field}'"):
            load_tacred(f, "train")


def test_tacred_spans_must_lie_inside_the_tokens(tmp_path):
    """Span ends are inclusive: the last token may end a span, one past it may not; a span never runs backwards."""
    f = tmp_path / "train.json"
    f.write_text(json.dumps([_tacred_row(obj_start=3, obj_end=4)]))
    assert load_tacred(f, "train")[0].fields["obj"] == "Acme ."
    for over, says in [({"obj_end": 5}, r"obj span \[3, 5\]"), ({"subj_start": -1}, r"subj span \[-1, 0\]"),
                       ({"subj_start": 2, "subj_end": 1}, r"subj span \[2, 1\]"), ({"subj_end": 5}, r"subj span \[0, 5\]")]:
        f.write_text(json.dumps([_tacred_row(), _tacred_row(**over)]))
        with pytest.raises(DataError, match=rf"^{re.escape(str(f))}, line 2: {says} is outside the 5 tokens$"):
            load_tacred(f, "train")
    f.write_text(json.dumps({"data": [_tacred_row()]}))
    with pytest.raises(DataError, match=rf"^{re.escape(str(f))}: expected a JSON list of relation instances$"):
        load_tacred(f, "train")
    fields = {"token": "list", "subj_start": "int", "subj_end": "int", "obj_start": "int", "obj_end": "int",
              "subj_type": "str", "obj_type": "str", "relation": "str"}
    for field, kind in fields.items():
        f.write_text(json.dumps([_tacred_row(), {k: v for k, v in _tacred_row().items() if k != field}]))
        with pytest.raises(DataError, match=rf"^{re.escape(str(f))}, line 2: missing field '{field}'$"):
            load_tacred(f, "train")
        f.write_text(json.dumps([_tacred_row(), _tacred_row(**{field: None})]))
        with pytest.raises(DataError, match=rf"^{re.escape(str(f))}, line 2: field '{field}' should be {kind}, got NoneType$"):
            load_tacred(f, "train")


def test_a_tacred_folder_prefers_json_lines_and_names_what_it_looked_for(tmp_path):
    (tmp_path / "dev.json").write_text(json.dumps([_tacred_row(relation="from_json")]))
    assert load_tacred(tmp_path, "val")[0].label == "from_json"
    (tmp_path / "dev.jsonl").write_text(json.dumps(_tacred_row(relation="from_jsonl")) + "\n")
    assert load_tacred(tmp_path, "val")[0].label == "from_jsonl"
    (tmp_path / "valid.json").write_text(json.dumps([_tacred_row(relation="valid")]))  # the first name wins
    assert load_tacred(tmp_path, "val")[0].label == "valid"
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}: no test file \(looked for test.jsonl, test.json\)$"):
        load_tacred(tmp_path, "test")
    with pytest.raises(DataError, match=r"^.*: no train file \(looked for train.jsonl, train.json\)$"):
        load_tacred(tmp_path, "train")


def test_tacred_multi_token_subject(tmp_path):
    f = tmp_path / "train.json"
    f.write_text(json.dumps([_tacred_row(token=["Ada", "King", "works", "for", "Acme"], subj_end=1, obj_start=4, obj_end=4)]))
    ex = load_tacred(f, "train")[0]
    assert (ex.fields["subj"], ex.fields["obj"]) == ("Ada King", "Acme")
    assert ex.fields["marked"] == "@ Ada King @ works for # Acme #"


LOAD_UNDER_ASCII_LOCALE = """
import json, sys
from pathlib import Path
from cott.data import load_clinc150, load_jsonl, load_tacred, load_wos
from cott.table import read_rows
d = Path(sys.argv[1])
loaded = [load_wos(d / "Data.txt", "test"), load_wos(d, "train"), load_clinc150(d, "train"), load_tacred(d / "rel.json", "train"),
          load_jsonl(d / "train.jsonl", "train")]
texts = [e.fields["text"] for examples in loaded for e in examples] + [r["text"] for f in ("a.json", "b.csv") for r in read_rows(d / f)]
print(json.dumps(texts))
"""


def test_data_files_read_as_utf8_whatever_the_locale(tmp_path):
    """Each loader names its encoding: under an ASCII locale (LC_ALL=C, no UTF-8 mode), non-ASCII text still reads."""
    word = "caf\u00e9 \u00fcber"
    (tmp_path / "Data.txt").write_text(f"Domain\tarea\tAbstract\nCS\tML\t{word}\n", encoding="utf-8")
    (tmp_path / "wos_train.json").write_text(json.dumps({"doc_token": word, "doc_label": ["CS", "ML"]}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "domains.json").write_text(json.dumps({"d\u00e9": ["\u00e9"]}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "data_full.json").write_text(json.dumps({"train": [[word, "\u00e9"]]}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "rel.json").write_text(json.dumps([_tacred_row(token=word.split(), obj_start=1, obj_end=1)], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": word, "step": "s", "label": "l"}, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps([{"text": word}], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "b.csv").write_text(f"text,not\u00e9\n{word},n\n", encoding="utf-8")
    env = os.environ | {"PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "LC_ALL": "C", "LANG": "C"}
    out = subprocess.run([sys.executable, "-c", LOAD_UNDER_ASCII_LOCALE, str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1]) == [word] * 7

# The real datasets load as Examples (memory-mapped Arrow rows) holding what the list loaders held, in their order.
def test_real_clinc150():
    path = needs_data("clinc150")
    test = load_clinc150(path, "test")
    assert isinstance(test, Examples) and test.dataset.cache_files
    assert len(test) == 4500 and len({e.step for e in test}) == 10 and len({e.label for e in test}) == 150
    assert test[0] == Example({"text": "how would you say fly in italian"}, ("travel",), "translate")
    assert test[-1] == Example({"text": "why didn't my card work"}, ("credit_cards",), "card_declined")


def test_real_conll04():
    path = needs_data("conll04", "derived_tacred_style")
    val = load_tacred(path, "val")
    assert isinstance(val, Examples) and len(val) == 3260
    assert {t for e in val for t in e.step} == {"Peop", "Loc", "Org", "Other"}
    assert val[0].fields["marked"] == "@ John Wilkes Booth @ , who assassinated # President Lincoln # , was an actor ."
    assert (val[0].step, val[0].label, val[0].meta) == (("Peop", "Peop"), "Kill", {"id": "conll04-valid-0-0-1"})


def test_real_wos_both_layouts():
    raw = load_wos(needs_data("wos1k", "raw", "Data1k.txt"), "train")
    processed = load_wos(needs_data("wos1k", "processed_640_160_200"), "train")
    assert isinstance(raw, Examples) and len(processed) == 640 and len(raw) == 640
    assert len({e.step for e in raw}) == 7
    assert [e.fields["text"][:20] for e in raw[:3]] == ["Study Objective: To ", "To raise the awarene", "BACKGROUND: 10-Deace"]
    assert (raw[0].step, raw[0].label) == (("Psychology",), "Seasonal affective disorder")  # the seeded shuffle
    assert (processed[0].step, processed[0].label) == (("Civil",), "Rainwater Harvesting")
