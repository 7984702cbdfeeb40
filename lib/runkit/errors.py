"""The kit's two kinds of failure. Every tool turns them into its exit status in one place (cli.run_main):
BadInput exits 2 with one line naming the problem and the fix (nothing was written), WorkFailed exits 1."""


class BadInput(Exception):
    """Bad usage or bad input: the message names the problem and the fix; nothing was written; exit 2."""


class WorkFailed(Exception):
    """The work itself failed (a run crashed, a job failed); exit 1."""
