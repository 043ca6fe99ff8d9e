"""The Arrow Room rule checker (`RuleChecker.for_dataset("arrow-room", train=DIR)`; docs/checker.md).

nets.py: DetectNet (object centres and boxes) and ObjectNet (per-object shape, colour, material, image
geometry); recogniser.py runs them; geometry.py lifts what was read onto the floor; checker.py builds the
Layout and applies the dataset's own rules; trainset.py / fit.py / cache.py / evaluate.py fit, cache and
measure the recogniser on rendered splits; calibrate.py measures pass rates on rendered test splits.
"""

from scenegen.check.arrow.checker import ArrowChecker, ArrowObject

__all__ = ["ArrowChecker", "ArrowObject"]
