"""What a finished CoTT run's validation says about its step, in words a user can act on (issue 31).

Where the step is hard to learn, CoTT's answer lags single-step prompt tuning: on CoNLL04 variants whose entity
types are noisy, CoTT's step was right for 14-16% of test pairs and it trailed or tied prompt tuning; on a relation
dataset whose step was right 59-65% it trailed far; on CoNLL04 itself (87%) and CLINC150 (98%) it did not
(results/README.md, "Where the step is hard"). Below ``HARD_STEP`` the run says so and names what to try: the
baseline, and a lighter step loss (α = 0.25 was the best of the one-change variants on validation there).
"""
from __future__ import annotations

HARD_STEP = 0.75  # between the 59-65% where CoTT trailed and the 87% where it led


def step_advice(val: dict) -> str | None:
    """A warning when the selected checkpoint's validation ``step_accuracy`` is below ``HARD_STEP``; else None."""
    accuracy = val.get("step_accuracy")
    if accuracy is None or accuracy >= HARD_STEP:
        return None
    return (f"the step was right for {accuracy:.0%} of validation examples: where the step is this hard to learn, "
            "CoTT's answer trailed single-step prompt tuning in our tests (results/README.md, 'Where the step is "
            "hard'); train --method prompt on the same data and compare, and try --step-loss-weight 0.25 (there it "
            "lifted CoTT's validation F1 by 5 points, its test F1 by 1)")
