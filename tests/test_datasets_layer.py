"""The data layer on ``datasets``: every loader returns ``Examples``, Arrow rows memory-mapped from the datasets cache
that read back exactly as parsed; the cache follows edits to the file; Hub datasets with a column mapping."""
import json
import os
import random
import subprocess
import sys

import datasets
import pandas as pd
import pytest
from datasets.table import MemoryMappedTable

import time

import cott.data
import cott.hub

from cott.data import DataError, Example, column_names, is_hub_id, load_clinc150, load_jsonl, load_tacred, load_wos, sample
from cott.examples import Examples, TextsOf, collect
from helpers import ROOT, toy_examples
from train.cli import settings

_REAL_REACHABLE = cott.hub._reachable


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """This test's own datasets cache."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    return tmp_path / "hf"


def _assert_memory_mapped(examples, cache):
    assert isinstance(examples, Examples) and set(vars(examples)) == {"dataset"}  # no Python list of the rows
    assert isinstance(examples.dataset.data, MemoryMappedTable)
    assert examples.dataset.cache_files and all(f["filename"].startswith(str(cache)) for f in examples.dataset.cache_files)


def _toy(n, seed=0):
    return [Example({"text": r["text"]}, (r["step"],), r["label"]) for r in toy_examples(n, seed)]


def _tacred_row(i, **over):
    return {"id": i, "token": ["Ada", "works", "for", "Acme", "."], "subj_start": 0, "subj_end": 0, "subj_type": "Peop",
            "obj_start": 3, "obj_end": 3, "obj_type": "Org", "relation": "Work_For"} | over


_TACRED = Example({"text": "Ada works for Acme .", "subj": "Ada", "obj": "Acme", "marked": "@ Ada @ works for # Acme # ."},
                  ("Peop", "Org"), "Work_For")


def _write(tmp_path, fmt):
    """A file of ``fmt`` in tmp_path, how to load it, and the Examples it holds (built apart from the loaders)."""
    if fmt in ("csv", "parquet", "jsonl"):
        frame = pd.DataFrame(toy_examples(20))
        path = tmp_path / f"train.{fmt}"
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in toy_examples(19)) + json.dumps(
                {"text": "ünïcode", "step": ["a", "b"], "label": "c"}) + "\n", encoding="utf-8")
            return path, load_jsonl, _toy(19) + [Example({"text": "ünïcode"}, ("a", "b"), "c")]
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
        return path, load_jsonl, _toy(20)
    if fmt in ("tacred.json", "tacred.jsonl"):
        rows = [_tacred_row("x1"), _tacred_row(7, subj_type="Org"), _tacred_row(None)]
        path = tmp_path / f"train.{fmt.split('.')[1]}"
        path.write_text(json.dumps(rows) if fmt.endswith("json") else "".join(json.dumps(r) + "\n" for r in rows))
        expected = [Example(_TACRED.fields, ("Peop", "Org"), "Work_For", {"id": "x1"}),
                    Example(_TACRED.fields, ("Org", "Org"), "Work_For", {"id": 7}), Example(**vars(_TACRED) | {"meta": {"id": None}})]
        return path, load_tacred, expected
    if fmt == "clinc150":
        (tmp_path / "domains.json").write_text(json.dumps({"banking": ["balance"], "travel": ["book_flight"]}))
        (tmp_path / "data_full.json").write_text(json.dumps({"train": [["my balance", "balance"], ["fly me", "book_flight"]]}))
        return tmp_path, load_clinc150, [Example({"text": "my balance"}, ("banking",), "balance"),
                                         Example({"text": "fly me"}, ("travel",), "book_flight")]
    if fmt == "wos.jsonl":
        path = tmp_path / "wos_train.json"
        path.write_text(json.dumps({"doc_token": "an abstract", "doc_label": ["CS ", " Machine learning"]}) + "\n")
        return tmp_path, load_wos, [Example({"text": "an abstract"}, ("CS",), "Machine learning")]
    path = tmp_path / "Data.txt"  # WOS TSV: shuffled with the seed, then cut 64/16/20
    path.write_text("Domain\tarea\tAbstract\n" + "".join(f"D{i % 3}\tA{i}\tabstract {i}\n" for i in range(25)))
    order = list(range(25))
    random.Random(0).shuffle(order)
    return path, load_wos, [Example({"text": f"abstract {i}"}, (f"D{i % 3}",), f"A{i}") for i in order[:16]]


FORMATS = ["jsonl", "csv", "parquet", "tacred.json", "tacred.jsonl", "clinc150", "wos.jsonl", "wos.tsv"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_loader_returns_memory_mapped_examples_as_parsed(tmp_path, cache, fmt):
    path, load, expected = _write(tmp_path, fmt)
    examples = load(path, "train")
    _assert_memory_mapped(examples, cache)
    assert len(examples) == len(expected) and list(examples) == expected
    assert [examples[i] for i in range(len(expected))] == expected and examples[-1] == expected[-1]
    assert all(type(e.step) is tuple for e in examples)
    for part in (slice(1, None), slice(None, None, -2), slice(len(expected), None)):
        assert isinstance(examples[part], Examples) and list(examples[part]) == expected[part]
    assert list(examples[[len(expected) - 1, 0]]) == [expected[-1], expected[0]]
    with pytest.raises(IndexError):
        examples[len(expected)]


def test_rows_round_trip_exactly(cache):
    odd = [Example({"text": "t", "subj": "s", "obj": "o", "marked": "m"}, ("a", "b"), "r", {"id": 3, "x": [None, 1.5]}),
           Example({"zeta": "z", "alpha": "ä"}, None, None), Example({"text": ""}, (), "")]
    examples = collect(lambda: iter(odd), {"test": "odd"})
    assert list(examples) == odd and [list(e.fields) for e in examples] == [list(e.fields) for e in odd]
    assert examples[1].step is None and examples[2].step == () and examples[1].label is None
    _assert_memory_mapped(examples, cache)
    empty = collect(lambda: iter(()), {"test": "empty"})
    assert isinstance(empty, Examples) and len(empty) == 0 and list(empty) == []
    # the repr says how many rows and where they live: the cache file(s), or in memory (no rows to cache)
    assert repr(examples) == f"Examples(3 rows, {[examples.dataset.cache_files[0]['filename']]})"
    assert str(cache) in repr(examples) and repr(empty) == "Examples(0 rows, in memory)"


def test_sample_keeps_its_subset_and_order_and_kind(tmp_path):
    path, load, expected = _write(tmp_path, "jsonl")
    examples = load(path, "train")
    keep = sorted(random.Random(3).sample(range(20), 7))
    picked = sample(examples, 7, seed=3)
    assert isinstance(picked, Examples) and list(picked) == [expected[i] for i in keep]
    assert sample(expected, 7, seed=3) == [expected[i] for i in keep]
    assert sample(examples, None) is examples and sample(examples, 20) is examples
    default = sorted(random.Random(0).sample(range(20), 7))  # seed 0 unless told: every run meets the same rows
    assert sample(expected, 7) == [expected[i] for i in default] and list(sample(examples, 7)) == sample(expected, 7)
    assert sample(examples, 0) is examples and sample(expected, 21) is expected
    texts = TextsOf(picked)
    assert len(texts) == 7 and [texts[i] for i in range(7)] == [expected[i].fields["text"] for i in keep]


def test_the_cache_follows_the_file_and_the_parser_and_is_reused_while_they_are_unchanged(tmp_path, monkeypatch):
    f = tmp_path / "train.jsonl"
    f.write_text('{"text": "a cat", "step": "animal", "label": "cat"}\n')
    assert load_jsonl(f, "train")[0].label == "cat"
    stat = f.stat()
    f.write_text('{"text": "a dog", "step": "animal", "label": "dog"}\n')  # the same size
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_jsonl(f, "train")[0].label == "dog"
    f.write_text('{"text": "a horse", "step": "animal", "label": "horse"}\n')  # another size, the same time
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_jsonl(f, "train")[0].label == "horse"
    assert load_jsonl(f, "train", columns={"label": "text"})[0].label == "a horse"  # the options are in the key
    twin = tmp_path / "twin" / "train.jsonl"  # another file of the same size and time: its own rows
    twin.parent.mkdir()
    twin.write_text(f.read_text().replace("horse", "zebra"))
    os.utime(twin, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_jsonl(twin, "train")[0].label == "zebra" and load_jsonl(f, "train")[0].label == "horse"
    parsed, read = [], cott.data._read_jsonl
    monkeypatch.setattr(cott.data, "_read_jsonl", lambda path: parsed.append(path) or read(path))
    assert load_jsonl(f, "train")[0].label == "horse" and parsed == []  # from the cache
    monkeypatch.setattr("cott.examples._code", lambda: "an edited parser")
    assert load_jsonl(f, "train")[0].label == "horse" and parsed == [f]


def test_errors_name_the_mapped_columns(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text('{"text": "a cat", "step": "animal", "label": "cat"}\n')
    (tmp_path / "t.csv").write_text("sentence,kind,answer\na cat,animal,cat\na bus,,bus\n")
    names = "text=sentence,step=kind,label=answer"
    with pytest.raises(DataError, match=r"t.csv, line 3: missing field 'step'"):
        load_jsonl(tmp_path / "t.csv", "train", names)
    with pytest.raises(DataError, match=r't.csv: no "utterance" column \(found: sentence, kind, answer\)'):
        load_jsonl(tmp_path / "t.csv", "train", {"text": "utterance"})
    with pytest.raises(DataError, match=r"train.jsonl, line 1: missing field 'sentence'"):
        load_jsonl(f, "train", names)


def test_column_names():
    assert column_names() == {"text": "text", "step": "step", "label": "label"}
    assert column_names(" text = utterance, label=intent ") == {"text": "utterance", "step": "step", "label": "intent"}
    assert column_names({"step": "domain"})["step"] == "domain"
    for bad in ("text", "text=a=b", "text=", "=a", "label=intent,text"):
        with pytest.raises(ValueError, match=rf"^columns '{bad}': expected ours=theirs pairs such as text=utterance,label=intent$"):
            column_names(bad)
    with pytest.raises(ValueError, match=r"^unknown column txt, x: the generic task reads text, step, label$"):
        column_names("x=a,txt=b,label=c")
    with pytest.raises(ValueError, match=r"^unknown column intent: the generic task reads text, step, label$"):
        column_names({"intent": "label"})


def test_which_names_are_hub_datasets(tmp_path, monkeypatch):
    """A string naming no local file or folder, in the Hub's id form, and not a data file's name."""
    for name in ("intents", "someone/intents", "someone/intents:plus", "some-one/in_tents.v2"):
        assert is_hub_id(name), name
    for name in ("missing.jsonl", "missing.csv", "missing.parquet", "missing.json", "Data.txt", "wos.tsv", "DATA.TXT",
                 "Train.JSON", "a/b/c", "some one/intents", "-intents", "someone/intents:", ""):
        assert not is_hub_id(name), name
    (tmp_path / "intents").mkdir()
    monkeypatch.chdir(tmp_path)
    assert not is_hub_id("intents") and not is_hub_id(tmp_path / "nothing")  # a local folder; a Path is never an id


def test_the_columns_flag(tmp_path, capsys):
    base = ["--data", "someone/intents", "--output-dir", str(tmp_path / "run")]
    args = settings(["--task", "jsonl", *base, "--columns", "text=utterance,label=intent"])
    assert args.columns == {"text": "utterance", "step": "step", "label": "intent"}
    assert settings(["--task", "jsonl", *base]).columns is None
    for task, columns, says in (("clinc150", "text=a", "--columns names the generic jsonl task's columns"),
                                ("jsonl", "txt=a", "unknown column txt")):
        with pytest.raises(SystemExit):
            settings(["--task", task, *base, "--columns", columns])
        assert says in capsys.readouterr().err


def _fake_hub(monkeypatch, calls):
    """``datasets.load_dataset`` answering with a local dataset: CLINC-like column names and a ClassLabel intent."""
    intent = datasets.ClassLabel(names=["balance", "book_flight", "weather"])
    features = datasets.Features({"utterance": datasets.Value("string"), "domain": datasets.Value("string"),
                                  "intent": intent, "text": datasets.Value("string")})

    def split(rows):
        return datasets.Dataset.from_dict({k: [r[i] for r in rows] for i, k in enumerate(features)}, features=features)

    def load_dataset(path, **kwargs):  # datasets.load_dataset(path, name=config, ...)
        calls.append((path, kwargs))
        assert "trust_remote_code" not in kwargs
        return datasets.DatasetDict({
            "train": split([("my balance", "banking", 0, "x"), ("fly me", "travel", 1, "y")]),
            "validation": split([("rain?", "meta", 2, "z"), ("no label", "meta", -1, "w")])})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(cott.hub, "_reachable", lambda: True)


def test_a_hub_dataset_with_a_column_mapping(tmp_path, cache, monkeypatch):
    calls = []
    _fake_hub(monkeypatch, calls)
    names = "text=utterance,step=domain,label=intent"
    train = load_jsonl("someone/intents", "train", names)
    assert list(train) == [Example({"text": "my balance"}, ("banking",), "balance"),
                           Example({"text": "fly me"}, ("travel",), "book_flight")]
    _assert_memory_mapped(train, cache)
    assert calls == [("someone/intents", {"cache_dir": str(cache)})]  # no trust_remote_code, the test's cache
    with pytest.raises(DataError, match=r"someone/intents \[validation\], row 2: missing field 'label'"):
        load_jsonl("someone/intents", "val", names)  # validation is our val; a -1 class label is no label
    with pytest.raises(DataError, match=r"^someone/intents: no test split on the Hub \(looked for test; it has train, validation\)$"):
        load_jsonl("someone/intents", "test", names)
    with pytest.raises(DataError, match=r'\[train\]: no "category" column \(found: utterance, domain, intent, text\)'):
        load_jsonl("someone/intents", "train", "text=utterance,step=domain,label=category")
    (tmp_path / "someone" / "intents").mkdir(parents=True)  # a local folder of that name is read as a folder
    (tmp_path / "someone" / "intents" / "train.jsonl").write_text('{"text": "t", "step": "s", "label": "l"}\n')
    monkeypatch.chdir(tmp_path)
    assert [e.label for e in load_jsonl("someone/intents", "train")] == ["l"] and len(calls) == 4
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        load_jsonl("missing.jsonl", "train")  # a missing file is no Hub id


@pytest.mark.parametrize("error, says", [
    (ConnectionError("Couldn't reach 'someone/x' on the Hub (ConnectError)"), "the Hugging Face Hub could not be reached"),
    (datasets.exceptions.DatasetNotFoundError("Dataset 'someone/x' doesn't exist on the Hub"), "nor a dataset on the Hugging Face Hub"),
    (ValueError("Config name is missing"), "loading it from the Hugging Face Hub failed .*Config name is missing")])
def test_a_hub_failure_says_which(monkeypatch, error, says):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)

    def load_dataset(name, **kwargs):
        raise error

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(cott.hub, "_reachable", lambda: True)
    with pytest.raises(DataError, match=f"^someone/x: (not a local file or folder|neither).*{says}"):
        load_jsonl("someone/x", "train")


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"])
def test_an_offline_hub_says_so(tmp_path, variable):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")} | {variable: "1"}
    done = subprocess.run([sys.executable, "-m", "train", "--task", "jsonl", "--data", "someone/absent-dataset",
                           "--output-dir", str(tmp_path / "run"), "--cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert ("python -m train: error: someone/absent-dataset: not a local file or folder, and the Hugging Face Hub is "
            "offline" in done.stderr), done.stderr[-2000:]


def test_a_hub_configuration_and_an_unreachable_hub(tmp_path, cache, monkeypatch):
    calls = []
    _fake_hub(monkeypatch, calls)
    load_jsonl("someone/intents:plus", "train", "text=utterance,step=domain,label=intent")
    assert calls == [("someone/intents", {"name": "plus", "cache_dir": str(cache)})]
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(cott.hub, "_reachable", _REAL_REACHABLE)
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"^someone/other: not a local file or folder, and the Hugging Face Hub "
                                        r"\(http://127.0.0.1:9\) could not be reached within 3 s: check the network, "
                                        r"or set HF_HUB_OFFLINE=1 to read a cached copy$"):
        load_jsonl("someone/other", "train")
    assert time.perf_counter() - started < 10 and len(calls) == 1  # no retries, and load_dataset never called
    monkeypatch.delenv("HF_ENDPOINT")  # the message names the public Hub unless HF_ENDPOINT says otherwise
    monkeypatch.setattr(cott.hub, "_reachable", lambda: False)
    with pytest.raises(DataError, match=r"the Hugging Face Hub \(https://huggingface.co\) could not be reached"):
        load_jsonl("someone/other", "train")


def test_loading_quiets_the_datasets_library_and_no_other_logger(monkeypatch):
    """``datasets``' progress bars and info logs are silenced; the root logger (the user's) is left as it was."""
    import logging

    from cott.examples import quiet

    root, lib = logging.getLogger(), logging.getLogger("datasets")
    monkeypatch.setattr(root, "level", logging.INFO)
    monkeypatch.setattr(lib, "level", logging.INFO)
    monkeypatch.setattr(datasets, "disable_progress_bars", lambda: calls.append("bars"))
    calls = []
    quiet()
    assert calls == ["bars"] and lib.level == logging.ERROR and root.level == logging.INFO
