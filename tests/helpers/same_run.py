""""Ends equal to the uninterrupted run", the check every exactness test makes, written once: the same
history.csv but for its `time` column, and the same metrics.json but for the `time` of its rows."""
from runkit.rundir import runs

TIME = "time"  # the wall-clock column, which no two runs share


def assert_same_run(run, reference, why=""):
    """run's history and metrics equal reference's (the uninterrupted run's), time aside; `why` names the
    case (a seed, a kill) in the failure."""
    history, expected = (_without_time(runs.read_history(r)) for r in (run, reference))
    assert history == expected, f"history.csv differs from {reference}'s {why}"
    metrics, wanted = (_without_time(runs.read_json(r, runs.METRICS)) for r in (run, reference))
    assert metrics == wanted, f"metrics.json differs from {reference}'s {why}"


def _without_time(value):
    if isinstance(value, list):
        return [_without_time(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_time(v) for k, v in value.items() if k != TIME}
    return value
