"""The Compare tab: two models of one task (e.g. today's CoTT and the step-following one) under the same edited step,
and one Experiment file on both (the logic is in cott_demo.compare)."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from . import compare, plots
from . import experiment as exp
from .events import BAD_INPUT, plot, warn
from .files import upload_path
from .inputs import MAX_STEP_CHARS, clean_text
from .render import status_md
from .serving import Model, run_counterfactuals, run_predict

HELP = """Put **the same text and the same edited step** to two models of one task and see both answers side by side:
a model whose answer *follows* its step moves into the step you give it; one that does not keeps the text's own
answer. The shipped `clinc150-following` model was trained to follow its step (`--step-following`); `clinc150` is
the paper's objective. Below, run one Experiment file on both and compare how often each answer follows an injected
step."""


def compare_tab(models: dict[str, Model]) -> None:
    """Two models side by side: one text under one edited step, and one file of texts under an injection policy."""
    first, second = compare.same_task(models)
    names = list(models)
    with gr.Tab("Compare"):
        gr.Markdown(HELP)
        with gr.Row(equal_height=False):
            model_a = gr.Dropdown(names, value=first, label="Model A", min_width=200, elem_id="compare-a")
            model_b = gr.Dropdown(names, value=second, label="Model B", min_width=200, elem_id="compare-b")
        text = gr.Textbox(label="Text", lines=2, max_lines=6, elem_id="compare-text",
                          placeholder="e.g. can you tell me why my card was declined at the grocery store")
        steps = models[first].pipe.step_space.shown if first else []
        with gr.Row(equal_height=False):
            step = gr.Dropdown(steps, value=None, allow_custom_value=True, label="Your step", scale=3, min_width=200,
                               info="A known step (label or words) or your own words.", elem_id="compare-step")
            go = gr.Button("Compare", variant="primary", scale=1, min_width=140, elem_id="compare-run")
        status = gr.Markdown()
        table = gr.Markdown(elem_id="compare-table")
        with gr.Row(equal_height=False):
            plot_a = gr.Plot(label="Model A: its step vs yours", min_width=300)
            plot_b = gr.Plot(label="Model B: its step vs yours", min_width=300)

        def run(a_name, b_name, text_value, step_value):
            try:
                a, b = compare.pair(models, a_name, b_name)
                text_value, notices = clean_text(text_value)
                step_value, more = clean_text(step_value, MAX_STEP_CHARS, "step")
                named = []
                for m in (a, b):
                    base, mine = run_predict(m.spec, [text_value, text_value], [None, step_value])
                    named.append((m.name, base, mine, compare.follows(m.pipe, mine.step, mine.answer)))
            except BAD_INPUT as err:
                return {status: warn(err), table: "", plot_a: None, plot_b: None}
            return {status: status_md(notices=notices + more), table: compare.side_by_side(named),
                    plot_a: plot(plots.comparison_figure(named[0][1], named[0][2])),
                    plot_b: plot(plots.comparison_figure(named[1][1], named[1][2]))}

        go.click(run, [model_a, model_b, text, step], [status, table, plot_a, plot_b], api_name="compare")

        def pick(a_name):  # model A's steps to choose from
            m = models.get(a_name)
            return gr.Dropdown(choices=m.pipe.step_space.shown if m and m.pipe else [], value=None)

        model_a.change(pick, model_a, step, queue=False, api_visibility="private")

        gr.Markdown("### One file on both models")
        with gr.Row(equal_height=False):
            upload = gr.File(label="File (as in the Experiment tab)", file_types=[".csv", ".jsonl", ".json", ".txt"],
                             min_width=260, elem_id="compare-file")
            with gr.Column(min_width=260):
                policy = gr.Dropdown(compare.COMPARE_POLICIES, value="random_wrong", label="Which steps to inject")
                fixed = gr.Dropdown(steps, value=None, allow_custom_value=True, label="Fixed step (for a fixed step)")
                seed = gr.Number(0, precision=0, label="Seed (random wrong step)")
                file_go = gr.Button("Run on both", variant="primary", elem_id="compare-file-run")
        file_status = gr.Markdown()
        rates = gr.Dataframe(pd.DataFrame(columns=compare.RATE_COLUMNS), label="Rates per model", interactive=False,
                             wrap=True, elem_id="compare-rates")

        def run_file(a_name, b_name, file, policy_value, fixed_value, seed_value, progress=gr.Progress()):
            try:
                rows = exp.read_file(upload_path(file))
                out, notices = compare.experiment_rates(
                    models, (a_name, b_name), rows, policy_value, run_counterfactuals, fixed_value, seed_value,
                    lambda done, total: progress(done / total, desc=f"{done:,} of {total:,} rows"))
            except (*BAD_INPUT, OSError) as err:
                return {file_status: warn(err), rates: pd.DataFrame(columns=compare.RATE_COLUMNS)}  # no "1 2 3" headers
            return {file_status: status_md(notices=notices), rates: pd.DataFrame(out, columns=compare.RATE_COLUMNS)}

        file_go.click(run_file, [model_a, model_b, upload, policy, fixed, seed], [file_status, rates],
                      api_name="compare_experiment", concurrency_limit=1)
