"""Which pytest-xdist worker runs which test (`make test`: pytest -n 2; conftest's pytest_xdist_make_scheduler).

One group of tests, one worker: a test file's tests (its module-scoped reference runs are made once); every
test file that holds a `pytest.mark.slurm` test, together, since some restart the one-node cluster's
controller or kill a node under the others; test_slurm_two_nodes.py's apart (its own daemons and network
namespaces), unless RUNKIT_SLURM_NODES=2 makes the two-node cluster the cluster of all.

The groups are found from the node id alone, because xdist's controller schedules node ids it never
collected: pytest-xdist 3.8's own `--dist loadgroup` appends the group to item._nodeid, which pytest 9 no
longer reads, so there it does not group (tests/test_workers.py shows this scheduler does).
"""
import functools
import os

from xdist.scheduler import LoadScopeScheduling

SLURM_MARK = "pytest.mark.slurm"
TWO_NODES = "test_slurm_two_nodes.py"


def group(nodeid, root):
    """The group of a test: its file, or "slurm", or "slurm-two-nodes"."""
    path = nodeid.split("::", 1)[0]
    if os.path.basename(path) == TWO_NODES and os.environ.get("RUNKIT_SLURM_NODES", "1") == "1":
        return "slurm-two-nodes"
    return "slurm" if _holds_slurm_tests(os.path.join(root, path)) else path


@functools.cache
def _holds_slurm_tests(path):
    try:
        with open(path, encoding="utf-8") as f:
            return SLURM_MARK in f.read()
    except OSError:
        return False


class ByGroup(LoadScopeScheduling):
    """xdist's load-by-scope scheduling, with the groups above as the scopes, the SLURM groups handed out first:
    they are the longest (xdist orders the rest by their number of tests), and started last they would end the
    suite on one worker while the others idle."""

    _ordered = False

    def _split_scope(self, nodeid):
        return group(nodeid, str(self.config.rootpath))

    def _assign_work_unit(self, node):
        if not self._ordered:
            self._ordered = True
            for scope in reversed([s for s in self.workqueue if s.startswith("slurm")]):
                self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)
