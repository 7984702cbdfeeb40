"""Weights & Biases by name (`training_loop.loggers = ['wandb']`, or `'WandbLogger'`): one W&B run per run
folder, whatever happens to its attempts.

- Offline unless told otherwise: `wandb.offline = False`, or WANDB_MODE in the environment, which wins.
  W&B writes into RUN_DIR/wandb/ (one `offline-run-...` folder per attempt, all with the run's id:
  `wandb sync RUN_DIR/wandb/offline-run-*` uploads them as one run).
- The W&B run id is derived from the run folder's path on the first start and kept in RUN_DIR/wandb/
  (runs.WANDB_ID), so a resume, a SIGTERM, a SLURM requeue or a packed task's second start log into the same
  W&B run, even from another path to the folder.
- Every step once: W&B keeps what it was given only once it flushes its `.wandb` file, so a `kill -9`
  loses what it had not flushed. runkit writes each logged (step, metrics) to a journal in the same folder
  before handing it to W&B, and a new attempt first logs again whatever of the journal no `.wandb` file of
  the run holds; then it logs only what the journal does not hold yet. A resumed run recomputes the steps
  after its checkpoint exactly, so what a killed attempt logged there is what the rerun would log.
- At the end, the run's bindings go to W&B's config and its best, final and test metrics to its summary
  (what loggers.record_hparams gives TensorBoard's HParams).
"""
import glob
import hashlib
import json
import os
import re
import struct

from runkit.rundir import runs
from runkit.training import lightning_package
from runkit.training.registry import LOGGERS

JOURNAL = "runkit-journal.jsonl"  # in RUN_DIR/wandb/: one {"step", "metrics"} line per log call
STEP_KEY = "trainer/global_step"  # Lightning's x-axis for W&B


def run_id(run_dir):
    """The W&B run id: the one kept in the folder, else one derived from the folder's absolute path."""
    try:
        with open(os.path.join(run_dir, runs.WANDB, runs.WANDB_ID), encoding="utf-8") as f:
            kept = f.read().strip()
        if kept:
            return kept
    except FileNotFoundError:
        pass
    path = os.path.abspath(run_dir)
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", os.path.basename(path))[:40].strip("-") or "run"
    return f"{name}-{hashlib.sha256(path.encode()).hexdigest()[:10]}"


@LOGGERS.register("wandb", denylist=["resume_step"])
def wandb(run_dir, resume_step=0, offline=True, project="runkit", **kwargs):
    import wandb  # noqa: F401 - Lightning's WandbLogger defers the import; fail here, before training
    if "WANDB_MODE" not in os.environ:
        kwargs["mode"] = "offline" if offline else "online"
    return _logger_class()(run_dir, project=project, **kwargs)


LOGGERS.register("WandbLogger", denylist=["resume_step"])(wandb)


def _logger_class():
    """Lightning's WandbLogger of the run's package, with the journal around its log_metrics."""
    base = lightning_package.module("loggers").WandbLogger
    rank_zero_only = lightning_package.module("utilities").rank_zero_only

    class RunkitWandbLogger(base):
        def __init__(self, run_dir, **kwargs):
            self._run_dir, self._journal = run_dir, None
            super().__init__(save_dir=run_dir, name=os.path.basename(os.path.abspath(run_dir)),
                             id=run_id(run_dir), **kwargs)
            self._wandb_init.pop("anonymous", None)  # Lightning's default, which wandb now warns about

        @property
        def experiment(self):
            opening = self._experiment is None
            if opening and rank_zero_only.rank == 0:
                import wandb
                if wandb.run is not None and wandb.run.id != self._id:
                    wandb.run.finish()  # another run's, left open in this process (a stopped run of a packed task)
            run = base.experiment.fget(self)
            if opening and self._journal is None and rank_zero_only.rank == 0:
                self._journal = Journal(self._run_dir, self._id)
                for step, values in self._journal.missing():  # what a killed attempt's W&B lost
                    run.log({**values, STEP_KEY: step}, step=step)
            return run

        @rank_zero_only
        def log_metrics(self, metrics, step=None):
            if step is None:
                return super().log_metrics(metrics, step)
            self.experiment  # noqa: B018 - opens the run and the journal (and replays) before this step
            fresh = self._journal.add(step, dict(metrics))
            if fresh:
                self.experiment.log({**fresh, STEP_KEY: step}, step=step)

        @rank_zero_only
        def record_summary(self, bindings, values):
            """The run's bindings as W&B config, its best/final/test metrics as summary; then the run ends."""
            run = self.experiment
            run.config.update(bindings, allow_val_change=True)
            run.summary.update(values)
            run.finish()

    return RunkitWandbLogger


class Journal:
    """The (step, metric) pairs the run has logged to W&B, in every attempt: RUN_DIR/wandb/runkit-journal.jsonl."""

    def __init__(self, run_dir, wandb_id):
        folder = os.path.join(run_dir, runs.WANDB)
        os.makedirs(folder, exist_ok=True)
        mark = os.path.join(folder, runs.WANDB_ID)
        if not os.path.exists(mark):  # kept: every later attempt finds the same id (and --restart knows it is ours)
            runs.write_atomic(mark, wandb_id + "\n")
        self.folder, self.id, self.path = folder, wandb_id, os.path.join(folder, JOURNAL)
        self.entries = _read_journal(self.path)  # [(step, {metric: value})], a line cut short dropped
        self.logged = {(step, key) for step, values in self.entries for key in values}
        self.file = open(self.path, "a", encoding="utf-8")

    def missing(self):
        """[(step, {metric: value})] the journal holds and no .wandb file of this run does, in order."""
        held = set()
        for path in glob.glob(os.path.join(self.folder, f"*-{self.id}", f"run-{self.id}.wandb")):
            held |= {(step, key) for step, values in history(path) for key in values}
        out = []
        for step, values in self.entries:
            lost = {k: v for k, v in values.items() if (step, k) not in held}
            if lost:
                out.append((step, lost))
        return out

    def add(self, step, metrics):
        """The metrics not logged at this step before (by any attempt), written down first."""
        fresh = {k: v for k, v in metrics.items() if (step, k) not in self.logged}
        if fresh:
            self.file.write(json.dumps({"step": step, "metrics": fresh}) + "\n")
            self.file.flush()  # in the kernel's hands: a kill -9 of this process does not lose it
            self.logged |= {(step, k) for k in fresh}
            self.entries.append((step, fresh))
        return fresh


def _read_journal(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    whole = data[:data.rfind(b"\n") + 1]
    if len(whole) != len(data):  # a kill -9 in the middle of a line: drop its half, so the next line starts clean
        with open(path, "r+b") as f:
            f.truncate(len(whole))
    return [(line["step"], line["metrics"]) for line in map(json.loads, whole.decode().splitlines())]


# ---- W&B's transaction log (the .wandb file), read with W&B's own record type ------------------

BLOCK, HEADER = 32768, 7  # LevelDB's log format: 32 KiB blocks of records, each with a 7-byte header
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path):
    """The W&B records of a .wandb file (W&B's `Record` protobuf messages), up to the last whole one."""
    from wandb.proto import wandb_internal_pb2
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b":W&B"):
        return
    pos, pieces = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        if kind == 0 or len(chunk) < length:  # zeros: not written yet; short: cut off by a kill
            return
        pos += HEADER + length
        pieces = chunk if kind in (FULL, FIRST) else pieces + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            yield record


def history(path):
    """[(step, {metric: value})] of the history rows in a .wandb file (W&B's own `_step`, `_runtime`... left out)."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            values = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                      for item in record.history.item}
            step = values.get("_step", record.history.step.num)
            rows.append((int(step), {k: v for k, v in values.items() if not k.startswith("_")}))
    return rows
