"""The demo's tables without a server: Markdown and CSV rendering (escaping, order, rounding, shortened cells),
uploaded batch files read as a user wrote them, and the Batch tab's rows around a stubbed forward pass."""
from __future__ import annotations

import json

import pytest

from cott.pipeline import Prediction, Sweep
from cott_demo import files, render, rows
from cott_demo.inputs import CUT_NOTE, InputError
from cott_demo.serving import Failure


def _pred(answer="balance", step_prob=0.9, p_final=None, truncated=False, out_of_scope=None, step_words="banking"):
    labels = ["balance", "travel", "timer"]
    return Prediction(text="t", labels=labels, answer=answer, p_rectified=[0.5, 0.3, 0.2], p_answer=[0.4, 0.4, 0.2],
                      steps=["banking", "travel"], step="banking", step_words=step_words, step_prob=step_prob,
                      p_steps=[0.9, 0.1], p_answer_step=[0.2, 0.7, 0.1], p_final=p_final, truncated=truncated,
                      out_of_scope=out_of_scope)


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row: split at the pipes that are not escaped."""
    out, cell, i = [], "", 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            cell += line[i : i + 2]
            i += 2
            continue
        if line[i] == "|":
            out.append(cell)
            cell = ""
        else:
            cell += line[i]
        i += 1
    return out[1:]  # the text before the first pipe


def test_a_two_part_step_keeps_the_comparison_table_three_columns_wide():
    md = render.comparison_md(_pred(), _pred(step_words="person | organization"))
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert all(len(_cells(line)) == 3 for line in table)
    assert "person \\| organization" in md


def test_every_markdown_character_a_user_types_is_shown_as_itself():
    for ch in "\\`*_{}[]()#+-!|~":  # ">" and "<" are HTML-escaped first
        assert render.esc(f"a{ch}b") == f"a\\{ch}b"
    assert render.esc("<b>&") == "&lt;b&gt;&amp;"


def test_the_sweep_table_lists_the_most_likely_step_first():
    sw = Sweep("t", ["a", "b", "c"], ["x", "y"], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0.2, 0.5, 0.3])
    table = render.sweep_table(sw, ["step a", "step b", "step c"])  # the steps as shown, in sw.steps' order
    assert list(table["step"]) == ["step b", "step c", "step a"] and list(table["answer under step"]) == ["y", "x", "x"]


def test_cells_are_shortened_for_the_screen_and_rounded_and_defused_for_the_csv():
    assert render.short("x" * 80) == "x" * 80
    assert render.short("x" * 81) == "x" * 79 + "…" and len(render.short("y" * 500, 30)) == 30
    row = {"row": 1, "text": "=HYPERLINK(1)" + "z" * 100, "step": "\tb", "step_prob": 0.123456789, "answer": "a",
           "confidence": 0.5, "flag": "", "note": "\r"}
    shown, csv = render.batch_frames([row], [{"answer": "file's", "score": 3}])
    assert list(csv.columns) == render.BATCH_COLUMNS + ["answer (file)", "score"]  # a file's column never hides ours
    assert csv["answer"][0] == "a" and csv["answer (file)"][0] == "file's"
    assert csv["step_prob"][0] == pytest.approx(0.1235, abs=1e-12) and shown["step_prob"][0] == "12.3%"
    assert csv["text"][0].startswith("'=") and csv["step"][0] == "'\tb" and csv["note"][0] == "'\r"
    assert len(shown["text"][0]) == 80 and len(csv["text"][0]) == 114


def test_the_answer_shows_the_probability_it_was_chosen_by():
    pred = _pred(answer="travel", p_final=[0.1, 0.8, 0.1])
    assert "80.0%" in render.answer_section(pred) and render.summary("m", pred, 0.5, [])["confidence"] == 0.8


def _upload(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return files.read_batch_file(str(path))


def test_batch_files_are_read_as_a_spreadsheet_or_editor_writes_them(tmp_path):
    got = _upload(tmp_path, "a.csv", "\ufeffText,Score\nwhat is my balance,1\n\nbook a flight\n".encode("utf-8"))
    assert got == [{"text": "what is my balance", "Score": "1"}, {"text": "book a flight", "Score": ""}]
    lines = _upload(tmp_path, "b.jsonl", '{"text": "a", "meta": {"k": [1], "city": "Z\u00fcrich"}, "n": 2}\n\n{"text": "b"}\n'.encode())
    assert lines == [{"text": "a", "meta": '{"k": [1], "city": "Z\u00fcrich"}', "n": 2}, {"text": "b"}]  # as written
    with pytest.raises(InputError, match="Line 2 is not valid JSON"):
        _upload(tmp_path, "c.jsonl", b'{"text": "a"}\n{"text": \n')


def test_an_upload_is_found_in_whichever_form_the_ui_gives_it():
    class Upload:
        name = "/tmp/up.csv"

    assert files.upload_path("/tmp/a.csv") == "/tmp/a.csv"
    assert files.upload_path(Upload()) == "/tmp/up.csv"
    assert files.upload_path({"path": "/tmp/b.jsonl", "orig_name": "b.jsonl"}) == "/tmp/b.jsonl"
    for nothing in (None, "", {}):
        with pytest.raises(InputError, match=r'^Upload a CSV \(column "text"\) or JSON-lines \(\{"text": \.\.\.\}\) file first\.$'):
            files.upload_path(nothing)


@pytest.mark.parametrize("name, data, says", [
    ("a.csv", b"text\x00\nhi\n", r'^The file looks binary; upload a UTF-8 CSV \(column "text"\) or JSON-lines \(\{"text": \.\.\.\}\) file\.$'),
    ("a.csv", b"text\ncaf\xe9\n", r"^The file is not UTF-8 text \(byte 8\); save it as UTF-8 CSV or JSON-lines\.$"),
    ("a.csv", b" \n\t\n", r"^The file is empty\.$"),
    ("a.csv", b"text,label\n", r"^The file has no rows\.$"),
    ("a.csv", b"Sentence,label\nhi,x\n", r'^The CSV has no "text" column \(found: Sentence, label\)\. Add a header row with a "text" column\.$'),
    ("a.jsonl", b'{"text": "a"}\n{"sentence": "b"}\n', r'^Line 2 has no "text" field; each line must be like \{"text": "\.\.\."\}\.$'),
    ("a.jsonl", b'{"text": "a"}\n["b"]\n', r'^Line 2 has no "text" field'),
])
def test_a_batch_file_that_cannot_be_read_says_why(tmp_path, name, data, says):
    with pytest.raises(InputError, match=says):
        _upload(tmp_path, name, data)


def test_a_batch_files_format_is_told_by_its_name_then_its_first_character(tmp_path):
    assert _upload(tmp_path, "rows.txt", b'{"text": "a"}\n') == [{"text": "a"}]  # JSON lines without the suffix
    assert _upload(tmp_path, "rows", b'[{"text": "a"}]') == [{"text": "a"}]  # a JSON array
    assert _upload(tmp_path, "rows.json", b'{"text": "a"}\n{"text": "b"}\n') == [{"text": "a"}, {"text": "b"}]
    assert _upload(tmp_path, "rows.csv", b'text\n[not json\n') == [{"text": "[not json"}]  # a .csv is a CSV
    assert _upload(tmp_path, "rows.txt", b'TEXT, ,n\nhi\nyo,x,1\n') == [  # a header in any case, a short row padded
        {"text": "hi", "column 2": "", "n": ""}, {"text": "yo", "column 2": "x", "n": "1"}]

def test_a_batch_file_may_hold_exactly_the_row_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "BATCH_MAX_ROWS", 3)
    assert len(_upload(tmp_path, "three.csv", b"text\na\nb\nc\n")) == 3
    with pytest.raises(InputError, match="4 rows; the limit is 3"):
        _upload(tmp_path, "four.csv", b"text\na\nb\nc\nd\n")


def test_batch_rows_are_numbered_flagged_and_noted_across_chunks(monkeypatch):
    """Rows keep their file numbers over several chunks; the confidence is of the answer's own distribution; a row
    is flagged strictly below the threshold; a cut text is noted even when flagged; a failing row leaves the next."""
    outcomes = {"ok": [_pred(step_prob=0.9, p_final=[0.1, 0.1, 0.8], answer="timer")],
                "low": [_pred(step_prob=0.5, p_final=[0.4, 0.3, 0.3], truncated=True)],
                "edge": [_pred(step_prob=0.5)],  # p(Î|x) and the confidence (0.5) at the threshold: not below it
                "bad": Failure("ValueError", "no good"),
                "cut": [_pred(truncated=True)]}
    calls = []

    def forward(spec, requests):
        calls.append(len(requests))
        return [outcomes[texts[0]] for texts, _ in requests]

    monkeypatch.setattr(rows, "forward", forward)
    monkeypatch.setattr(rows, "BATCH_SIZE", 2)
    got = rows.predict_rows("m", ["ok", "low", "bad", "cut", "   ", "edge"], threshold=0.5)
    assert [r["row"] for r in got] == [1, 2, 3, 4, 5, 6] and calls == [2, 2, 1]
    ok, low, bad, cut, empty, edge = got
    assert ok["answer"] == "timer" and ok["confidence"] == 0.8 and ok["flag"] == ""
    assert low["flag"] == "⚠ low answer confidence" and CUT_NOTE in low["note"]  # step_prob 0.5 is not below 0.5
    assert edge["flag"] == "" and edge["confidence"] == 0.5 and edge["step_prob"] == 0.5
    assert empty["note"] == "error: empty text" and "answer" not in empty
    assert bad["note"] == "error: no good" and "answer" not in bad
    assert cut["answer"] == "balance" and cut["note"] == CUT_NOTE  # the row after a failure in its chunk
    assert json.dumps(got)  # plain data for the table and the CSV


def test_batch_rows_say_every_flag_and_note_and_report_progress(monkeypatch):
    """A row below the threshold on both counts, out of scope and cut shows all three flags in order, and its note says
    the scope verdict, the text's own notices and the cut; a direct model (no step) is never flagged for its step; a
    value that is no text is shown as JSON; the progress bar names the rows of each chunk."""
    from cott_demo.experiment import SCOPE_VERDICT

    outcomes = {"<b>xxx": [_pred(step_prob=0.2, p_final=[0.3, 0.4, 0.3], out_of_scope=True, truncated=True)],
                "direct": [_pred(step_prob=None, p_final=[0.9, 0.05, 0.05])],
                "ok": [_pred(p_final=[0.9, 0.05, 0.05])]}
    calls = []
    monkeypatch.setattr(rows, "forward", lambda spec, requests: calls.append((spec, len(requests))) or
                        [outcomes[texts[0][:6]] for texts, _ in requests])
    monkeypatch.setattr(rows, "BATCH_SIZE", 2)
    ticks = []
    got = rows.predict_rows("m", ["<b>" + "x" * 2_100, "direct", 3, "ok", "  "], threshold=0.5,
                            progress=lambda fraction, desc: ticks.append((fraction, desc)))
    flagged, direct, number, ok, empty = got
    assert calls == [("m", 2), ("m", 1)]  # the good rows of each chunk; a chunk of bad rows asks nothing
    assert flagged["flag"] == "⚠ low step prob, low answer confidence, out of scope"
    assert flagged["note"] == "; ".join([SCOPE_VERDICT, "The text had 2,103 characters; only the first 2,000 were used. "
                                         "The text contains HTML tags: they are read as plain text, never rendered.",
                                         CUT_NOTE])
    assert flagged["text"] == ("<b>" + "x" * 2_100)[:2_000] and flagged["confidence"] == 0.3
    assert direct["flag"] == "" and direct["step_prob"] is None and direct["step"] == "banking"
    assert ok == {"row": 4, "text": "ok", "note": "", "step": "banking", "step_prob": 0.9, "answer": "balance",
                  "confidence": 0.9, "flag": ""}
    assert number == {"row": 3, "text": "3", "note": "error: empty text"}
    assert empty == {"row": 5, "text": "  ", "note": "error: empty text"}
    assert ticks == [(0.0, "rows 1–2 of 5"), (0.4, "rows 3–4 of 5"), (0.8, "rows 5–5 of 5"), (1.0, "done")]


def test_a_batch_file_over_the_size_limit_says_both_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_UPLOAD_BYTES", 2**20)
    with pytest.raises(InputError, match=r"^The file is 1\.5 MB; the limit is 1 MB\. Split it\.$"):
        _upload(tmp_path, "big.csv", b"text\n" + b"x" * (3 * 2**19 - 5))
    assert len(_upload(tmp_path, "edge.jsonl", b'{"text": "' + b"x" * (2**20 - 13) + b'"}\n')[0]["text"]) == 2**20 - 13


def test_a_batch_files_name_says_json_lines_before_its_first_character(tmp_path):
    """A .json, .jsonl or .ndjson file is JSON lines (or an array) whatever it starts with: its errors are JSON's."""
    for name in ("rows.json", "rows.jsonl", "rows.NDJSON"):
        with pytest.raises(InputError, match=r'^Line 1 is not valid JSON; each line must be like \{"text": "\.\.\."\}\.$'):
            _upload(tmp_path, name, b"text\nhello\n")
        with pytest.raises(InputError, match=r'^Line 2 has no "text" field'):
            _upload(tmp_path, name, b'\n"just a string"\n')
    assert _upload(tmp_path, "rows.jsonl", b'\n  [{"text": "a"}]\n') == [{"text": "a"}]  # an array after blank space
    assert _upload(tmp_path, "rows", b'\n\n  [{"text": "a", "n": 1.5}]') == [{"text": "a", "n": 1.5}]


def test_a_batch_csv_reads_its_text_column_wherever_it_is_and_pads_short_rows(tmp_path):
    got = _upload(tmp_path, "rows.csv", b"id,Text,note\n1,first,n\n2\n")
    assert got == [{"text": "first", "id": "1", "note": "n"}, {"text": "", "id": "2", "note": ""}]
    with pytest.raises(InputError, match=r'^The CSV has no "text" column \(found: none\)\. Add a header row'):
        _upload(tmp_path, "blank.csv", b"\ntext\nhi\n")  # the first line is the header, blank here
    wide = ",".join(f"c{i}" for i in range(10)).encode()
    with pytest.raises(InputError, match=r"\(found: c0, c1, c2, c3, c4, c5, c6, c7\)\. Add"):
        _upload(tmp_path, "wide.csv", wide + b"\n" + b"1," * 9 + b"1\n")
    with pytest.raises(InputError, match=r"^The CSV could not be read \(field larger than field limit \(131072\)\)\.$"):
        _upload(tmp_path, "huge.csv", b"text\n" + b"x" * 140_000 + b"\n")
