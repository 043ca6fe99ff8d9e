"""The automatic rule checker for MNIST-4, MNIST-10 and MNIST-4-10 (`scenegen check`, `scenegen calibrate`).

    from scenegen.check import RuleChecker, summarize
    verdicts = RuleChecker.for_dataset("mnist4").check(images)   # images [N, C, H, W] float in [0, 1]
    print(summarize(verdicts).s_acc)

detect.py finds digit candidates, recogniser.py reads them, judge.py applies the dataset's own rules,
report.py summarises; trainset.py / fit.py / cache.py make the recogniser; violate.py makes
rule-breaking scenes; calibrate.py measures pass rates on real and rule-breaking scenes.
"""

from scenegen.check.judge import DetectedObject, JudgeSettings, RuleChecker, Verdict
from scenegen.check.report import Summary, summarize

__all__ = ["DetectedObject", "JudgeSettings", "RuleChecker", "Summary", "Verdict", "summarize"]
