"""The demo's 'why this step?' rows through gradio_client: /explain (under Î), /explain_step (under an edited step),
escaped HTML, bad input answered with a message, and never computed on the /predict path."""
from __future__ import annotations

import pytest

from app_tiny import free_port, tiny_checkpoints  # root on sys.path

gr = pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402

import app  # noqa: E402
from cott import CoTTPipeline  # noqa: E402
from cott.attribution import Explanation  # noqa: E402
from cott_demo.explain import explanation_html  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    dirs, examples = tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))
    demo = app.build_demo(dirs, examples=examples)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.LAUNCH_KWARGS)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.close()


def test_explain_shows_both_rows_escaped(client):
    status, shown = client.predict("tinyintent", "<b>what</b> is my balance", api_name="/explain")
    assert "read as plain text" in status  # the HTML notice; the words are shown escaped below
    assert "Why this step" in shown and "Why this answer" in shown and "Method: <b>ig</b>" in shown
    assert "&lt;b&gt;what&lt;/b&gt;" in shown and "<b>what</b>" not in shown
    assert shown.count('class="cott-why-word"') == 2 * 4  # four words, two rows


def test_explain_under_an_edited_step_and_for_a_relation(client):
    status, shown = client.predict("tinyintent", "book a flight", "travel", api_name="/explain_step")
    assert status == "" and "under the step <b>travel</b>" in shown
    status, shown = client.predict("tinyrel", "[[Ada]] works for {{Acme}} in Paris.", "Peop | Org",
                                   api_name="/explain_step")
    assert status == "" and "<u>Ada</u>" in shown and "<u>Acme</u>" in shown and "[[" not in shown
    assert "under the step <b>person | organization</b>" in shown  # the step in words, as every tab shows it


def test_bad_input_gets_a_message(client):
    status, shown = client.predict("tinyintent", "   ", api_name="/explain")
    assert "empty" in status and shown == ""
    status, shown = client.predict("tinyrel", "no marks here", api_name="/explain")
    assert "subject" in status and shown == ""


def test_predict_never_computes_attributions(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("explain called on /predict")

    monkeypatch.setattr(CoTTPipeline, "explain", refuse)
    status, *_ = client.predict("tinyintent", "what is my balance", 0.5, api_name="/predict")
    assert status == ""


def test_html_escapes_checkpoint_text_too():
    exp = Explanation("x", ["<i>x</i>"], [""], [True], "occlusion", "<script>", 0.5, [0.1], step="a&b", step_prob=0.9,
                      step_scores=[-0.2], answer_step="<s>")
    shown = explanation_html(exp, str)
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "a&amp;b" in shown and "&lt;s&gt;" in shown
    assert "rgba(220, 38, 38" in shown and "rgba(34, 139, 34" in shown  # red lowers, green raises
