"""The generalization suite: seeded datasets that differ from the reference benchmark the ways real footage
does (textured and panning backgrounds, look-alike distractors, small and large actors, 32..128 px, 16..48
frames, 60..240 training clips per class, a second generator), one recipe trained and evaluated on each, and
one table with pass/fail against fixed targets. `make generalization`; docs/benchmark.md.

    suite.py     the members (one frozen definition each) and their targets
    run.py       data once, train (resumable), evaluate: `python -m stanet` subprocesses only
    verdict.py   pass/fail of a metrics.json, the table (training.report's formatter)
    cli.py       `python -m training.generalization list | generate | run | table`
"""
