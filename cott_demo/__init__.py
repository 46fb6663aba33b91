"""The CoTT demo: a Gradio app to inspect a model's two-step reasoning and inject a step of your own."""
