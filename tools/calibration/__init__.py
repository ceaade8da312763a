"""The labelled calibration zoo of ``deepstart check``: model builders, hook-measured truth, short-training labels,
and the runner that tables ``check``'s verdicts beside the labels (``python -m tools.calibration --help``).

Not part of the library: it lives beside the tests and imports ``deepstart`` like any user would.
"""
