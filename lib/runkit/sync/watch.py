"""Batches of file changes under a folder, from the watchman service: one batch per burst of edits.

A burst (an editor's save, a `git checkout`) ends when no change has arrived for `settle` seconds; watchman's
`defer_vcs` also holds news back while git holds its index lock. Paths the caller never syncs are left out of
the subscription, so outputs written under results/ do not wake us.
"""
import shutil

from runkit.errors import BadInput, WorkFailed

SUBSCRIPTION = "runkit-sync"


class Watcher:
    """A watchman subscription on `folder`; subscribe before the first sync so no change slips between."""

    def __init__(self, folder, ignored):
        if not shutil.which("watchman"):
            raise BadInput("watchman is not installed or not on PATH; apt-get install watchman "
                             "(or use --once)")
        try:
            import pywatchman
        except ImportError:
            raise BadInput("the Python package pywatchman is missing; run `make env` and `source e.sh`, "
                             "or use --once") from None
        self._errors = pywatchman.WatchmanError
        self._timeout = pywatchman.SocketTimeout
        try:
            # get-sockname, run by the client, starts the service when it is not running
            self.client = pywatchman.client(timeout=120)
            watch = self.client.query("watch-project", folder)
            self.root = watch["watch"]
            query = {"expression": _not_under(ignored), "fields": ["name"], "defer_vcs": True,
                     "empty_on_fresh_instance": True}
            if watch.get("relative_path"):
                query["relative_root"] = watch["relative_path"]
            self.client.query("subscribe", self.root, SUBSCRIPTION, query)
        except pywatchman.WatchmanError as e:
            raise BadInput(f"cannot start or use the watchman service ({e}); try `watchman get-sockname` "
                             "and its log") from None

    def batches(self, settle):
        """Yield the set of changed names (relative to the folder) once per burst of changes."""
        while True:
            names = set()
            while not names:  # block until something changes
                names = self._receive(None)
            while True:
                try:
                    names |= self._receive(settle)
                except self._timeout:
                    break
            yield names

    def _receive(self, timeout):
        self.client.setTimeout(timeout)
        try:
            self.client.receive()
        except self._timeout:  # a quiet spell, not a failure (SocketTimeout is a WatchmanError too)
            raise
        except self._errors as e:
            raise WorkFailed(f"lost the watchman service ({e})") from None
        names = set()
        for pdu in self.client.getSubscription(SUBSCRIPTION, root=self.root) or []:
            if pdu.get("canceled"):
                raise WorkFailed(f"watchman stopped watching {self.root} (was it deleted or watch-del'ed?)")
            names.update(pdu.get("files") or [])
        return names


def _not_under(ignored):
    """A watchman expression that drops the ignored paths (written with a leading / or not) and their contents."""
    terms = []
    for pattern in ignored:
        path = pattern.lstrip("/")
        if pattern.startswith("/"):
            terms += [["name", path, "wholename"], ["dirname", path]]
        else:
            terms += [["name", path], ["match", f"**/{path}/**", "wholename", {"includedotfiles": True}],
                      ["match", f"{path}/**", "wholename", {"includedotfiles": True}]]
    return ["not", ["anyof", *terms]]

