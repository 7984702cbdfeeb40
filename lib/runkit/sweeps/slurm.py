"""`runbatch --slurm`: a batch of run specs as one SLURM job array, and waiting for it.

A submission writes a batch folder, <results folder of the runs>/batches/<time>/, holding
  specs.jsonl   the runs not finished and not running or queued, one per task (task i = line i, from 0)
  job.sbatch    the script, readable and kept: `sbatch job.sbatch` resubmits it by hand
  batch.json    the job ids, once submitted: {"job_id", "jobs": [{"job_id", "script", "first", "count"}], ...}
  .tasks/<i>    a link to task i's run folder, so SLURM writes RUN_DIR/slurm-<job>_<task>.log itself
  code/         the project's code as submitted, from which every task runs (runkit.sweeps.snapshot; not with
                --live-code), and code.json, what it is (commit, uncommitted changes, size)
and each run folder gets slurm.json (runs.py): its batch and task, then each attempt's SLURM ids.
With --runs-per-task K (packed), task t runs lines tK..tK+K-1 one after another (runkit.sweeps.slurm_task),
.tasks/<t> is a folder for the task's own log, and each run's output goes to RUN_DIR/slurm-<job>_<task>.log;
a run's slurm.json names its task, so task-versus-run bookkeeping maps run i to task i // K.
A batch larger than the cluster's MaxArraySize is several arrays: array k runs tasks first..first+count-1,
with its own script job.<k>.sbatch and links .tasks.<k>/ (array k's task j is batch task first+j).
SLURM forgets finished jobs, so outcomes are read from the run folders; squeue only says what is queued,
asked once per poll for the whole batch, less often while the controller is slow or away.
"""
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field

import runkit
from runkit import cli, errors
from runkit.rundir import runs
from runkit.sweeps import batch, snapshot
from runkit.sweeps import outcome as outcomes

# Options users set daily, with the environment variable a lab sets once in e.sh.
ENV = {
    "partition": "RUNBATCH_SLURM_PARTITION",
    "time": "RUNBATCH_SLURM_TIME",
    "gres": "RUNBATCH_SLURM_GRES",
    "cpus": "RUNBATCH_SLURM_CPUS",
    "mem": "RUNBATCH_SLURM_MEM",
    "account": "RUNBATCH_SLURM_ACCOUNT",
    "qos": "RUNBATCH_SLURM_QOS",
    "throttle": "RUNBATCH_SLURM_THROTTLE",
    "signal_seconds": "RUNBATCH_SLURM_SIGNAL_SECONDS",
    "max_requeues": "RUNBATCH_SLURM_MAX_REQUEUES",
    "sbatch_args": "RUNBATCH_SLURM_EXTRA",
    "nodes": "RUNBATCH_SLURM_NODES",
    "gpus_per_node": "RUNBATCH_SLURM_GPUS_PER_NODE",
    "ntasks_per_node": "RUNBATCH_SLURM_NTASKS_PER_NODE",
    "runs_per_task": "RUNBATCH_SLURM_RUNS_PER_TASK",
}
COUNTS = ("cpus", "throttle", "signal_seconds", "max_requeues", "nodes", "gpus_per_node", "ntasks_per_node",
          "runs_per_task")
# How long --wait keeps asking a controller that does not answer before it gives up (the jobs go on).
PATIENCE_VAR, PATIENCE = "RUNBATCH_SLURM_PATIENCE", 600.0
SIGNAL_SECONDS, MAX_REQUEUES = 120, 20
# Array task states after which a task never runs again (a requeued one goes back to PENDING).
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "SPECIAL_EXIT", "REVOKED"}
SCRIPT, SPECS, RECORD, LINKS = "job.sbatch", "specs.jsonl", "batch.json", ".tasks"


@dataclass
class Options:
    partition: str = None
    time: str = None
    gres: str = None
    cpus: int = None
    mem: str = None
    account: str = None
    qos: str = None
    throttle: int = None
    signal_seconds: int = SIGNAL_SECONDS
    max_requeues: int = MAX_REQUEUES
    sbatch_args: list = field(default_factory=list)
    job_name: str = None
    nodes: int = None
    gpus_per_node: int = None
    ntasks_per_node: int = None
    dependency: str = None
    runs_per_task: int = 1

    @property
    def tasks_per_node(self):
        """Processes per node of a run: --ntasks-per-node, else one per GPU, else one."""
        return self.ntasks_per_node or self.gpus_per_node or 1

    @property
    def several(self):
        """True if a run is several processes (started through srun)."""
        return (self.nodes or 1) * self.tasks_per_node > 1

    @classmethod
    def from_args(cls, given, environ=os.environ):
        """Options from {name: value or None}, an unset one from its environment variable; BadInput if bad."""
        values = {}
        for name, var in ENV.items():
            value = given.get(name)
            if name == "sbatch_args":
                # The lab's flags first, then the user's: both apply (a later flag wins in sbatch).
                value = shlex.split(environ.get(var, "")) + list(value or [])
            elif value is None:
                value = environ.get(var) or None
            if value is not None:
                values[name] = _checked(name, var, value)
        values["job_name"] = given.get("job_name")
        dependency = given.get("dependency")
        if dependency is not None:
            if not dependency or any(c.isspace() for c in dependency):
                raise errors.BadInput(f"--dependency takes one SLURM dependency like afterok:1234, not {dependency!r}")
            values["dependency"] = dependency
        return cls(**values)


def _checked(name, var, value):
    flag = "--" + name.replace("_", "-")
    if name in COUNTS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < (0 if name in ("signal_seconds", "max_requeues") else 1):
            raise errors.BadInput(f"{flag} (or {var}) must be a whole number of at least "
                                 f"{0 if name in ('signal_seconds', 'max_requeues') else 1}, not {value!r}")
        return number
    items = value if isinstance(value, list) else [value]
    if any("\n" in str(v) for v in items):
        raise errors.BadInput(f"{flag} (or {var}) holds a newline; give one value per flag")
    if name == "sbatch_args" and any(not str(v).startswith("-") for v in items):
        raise errors.BadInput(f"{flag} (or {var}) takes sbatch flags like --constraint=a100, not {items!r}")
    return value


# ---- which runs to submit --------------------------------------------------------------------

def queued(specs):
    """The run folders of specs whose runs are queued or running in a SLURM job array we submitted."""
    recorded = {s["run_dir"]: runs.read_slurm(s["run_dir"]) for s in specs}
    recorded = {d: r for d, r in recorded.items() if r and r.get("batch_dir")}
    if not recorded:
        return set()
    live = _squeue()
    out = set()
    for run_dir, record in recorded.items():
        where = array_task(record["batch_dir"], int(record["task"]))
        if where is None:
            continue
        job, task, script = where
        state = live.get((job, str(task)))
        if state and state[1] == script and state[0] not in FINAL:
            out.add(run_dir)
    return out


def arrays(batch_dir):
    """The arrays of a submitted batch: [{"job_id", "script", "first", "count"}] (one for older batch folders)."""
    record = read_record(batch_dir)
    if "jobs" in record:
        return record["jobs"]
    if record.get("job_id"):
        return [{"job_id": record["job_id"], "script": os.path.join(batch_dir, SCRIPT), "first": 0,
                 "count": record.get("runs", 0)}]
    return []


def array_task(batch_dir, task):
    """(job id, array task id, script) of the batch's task number `task`, or None if never submitted."""
    for array in arrays(batch_dir):
        if array["first"] <= task < array["first"] + array["count"]:
            return array["job_id"], task - array["first"], array["script"]
    return None


def _squeue(waiting=None):
    """{(array job id, task id): (state, script path)} for this user's array tasks that SLURM still lists.

    One call for all of the user's jobs, whatever the number of arrays: the controller answers it once.
    waiting(seconds): called once if squeue has not answered after SLOW seconds (SLURM's clients keep trying a
    controller that is down, up to its SlurmctldTimeout, rather than fail)."""
    done = _slurm(["squeue", "--me", "--noheader", "--array", "--states=all", "--format=%F|%K|%T|%o"],
                  waiting=waiting)
    if done.returncode != 0:
        raise Unreachable(f"squeue failed: {' '.join(done.stderr.split()) or f'exit {done.returncode}'}")
    table = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4:
            table[(parts[0], parts[1])] = (parts[2], parts[3])
    return table


class Unreachable(errors.WorkFailed):
    """A SLURM command did not answer (the controller is down, unreachable or overloaded)."""


# Seconds a SLURM command may take before it fails as Unreachable, and before --wait says it is waiting for one.
TIMEOUT, SLOW = 120, 10


def _slurm(argv, input=None, waiting=None):
    """The command's CompletedProcess; waiting(SLOW) is called if it is still running after SLOW seconds."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise errors.BadInput(f"{argv[0]} not found: run this where SLURM's commands are on PATH "
                             "(or try scripts/slurm-cluster start)") from None
    try:
        try:
            out, err = proc.communicate(input, timeout=SLOW if waiting else TIMEOUT)
        except subprocess.TimeoutExpired:
            if not waiting:
                raise
            waiting(SLOW)
            out, err = proc.communicate(timeout=TIMEOUT - SLOW)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise Unreachable(f"{argv[0]} did not answer in {TIMEOUT} s: is the SLURM controller up?") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def split(specs, restart_changed=False):
    """(specs to submit, [(spec, batch.Verdict)] of the others): finished, running, queued under SLURM, conflicts."""
    verdicts = batch.pending(specs, restart_changed)
    waiting = queued([s for s, v in verdicts if v.action == "run"])
    todo = [s for s, v in verdicts if v.action == "run" and s["run_dir"] not in waiting]
    others = [(s, batch.Verdict("skipped", "queued") if s["run_dir"] in waiting else v)
              for s, v in verdicts if v.action != "run" or s["run_dir"] in waiting]
    return todo, others


# ---- the script and the batch folder ---------------------------------------------------------

def results_folder(specs):
    """The folder that holds every run folder of the batch: where batches/ goes."""
    parents = [os.path.dirname(os.path.abspath(s["run_dir"])) for s in specs]
    return os.path.commonpath(parents)


def render(batch_dir, specs, options, restart_changed=False, part=0, first=0, frozen=None):
    """The sbatch script of (one array of) a batch: #SBATCH lines, then exec the task runner (no shell sees
    spec values). part, first: the array's number in the batch and its first task; frozen: the project's root
    when the batch runs from a code snapshot (runkit.sweeps.snapshot), else None. With options.runs_per_task
    K > 1, each task runs K of the specs, one after another."""
    per = options.runs_per_task
    n = task_count(len(specs), per)
    name = options.job_name or _job_name(specs)
    array = f"0-{n - 1}" + (f"%{options.throttle}" if options.throttle else "")
    task = f"{first} + i" if first else "i"
    if per == 1:
        says = [f"# runkit: {n} run{'s' * (n != 1)} as one SLURM job array, written by `runbatch --slurm`.",
                f"# Task i runs line {task} (from 0) of specs.jsonl, holding the run's lock; a finished run is skipped."]
    else:
        says = [f"# runkit: {len(specs)} runs, {per} per task, as one SLURM job array of {n} tasks, written by "
                "`runbatch --slurm --runs-per-task`.",
                f"# Task i runs lines ({task}) x {per} to ({task}) x {per} + {per - 1} (from 0) of specs.jsonl, one "
                "after another, each holding its run's lock; a finished run is skipped."]
    lines = [
        "#!/bin/bash",
        *says,
        "# Resubmit by hand: sbatch " + shlex.quote(os.path.join(batch_dir, script_name(part))),
        f"#SBATCH --job-name={name}",
        f"#SBATCH --array={array}",
        f"#SBATCH --output={_sbatch_quote(os.path.join(batch_dir, links_name(part), '%a', runs.SLURM_LOG))}",
        "#SBATCH --open-mode=append",
        # On the warning signal the run checkpoints and requeues itself; the log continues.
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:USR1@{options.signal_seconds}",
    ]
    if options.nodes or options.ntasks_per_node or options.gpus_per_node:
        # A run of several processes: srun starts one per task (runkit.sweeps.slurm_task), Lightning ranks them.
        lines += [f"#SBATCH --nodes={options.nodes or 1}", f"#SBATCH --ntasks-per-node={options.tasks_per_node}"]
        if options.gpus_per_node:
            lines.append(f"#SBATCH --gpus-per-node={options.gpus_per_node}")
    for flag, value in (("partition", options.partition), ("time", options.time), ("gres", options.gres),
                        ("cpus-per-task", options.cpus), ("mem", options.mem), ("account", options.account),
                        ("qos", options.qos), ("dependency", options.dependency)):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={_sbatch_quote(str(value))}")
    lines += [f"#SBATCH {_sbatch_quote(arg)}" for arg in options.sbatch_args]
    lib = os.path.dirname(os.path.dirname(os.path.abspath(runkit.__file__)))
    exports = []
    if frozen is not None:
        code = os.path.join(batch_dir, snapshot.FOLDER)
        if lib == frozen or lib.startswith(frozen + os.sep):
            lib = os.path.join(code, os.path.relpath(lib, frozen))  # the task runner runs from the snapshot too
        exports.append(f"export {snapshot.ENV}={shlex.quote(code)}")
    if options.several:
        exports.append("export RUNKIT_SLURM_SRUN=1")
    lines += [
        "",
        f"export PYTHONPATH={shlex.quote(lib)}${{PYTHONPATH:+:$PYTHONPATH}}",
        f"export RUNKIT_SLURM_MAX_REQUEUES={options.max_requeues}",
        *exports,
        f"exec {shlex.quote(sys.executable)} -m runkit.sweeps.slurm_task {shlex.quote(os.path.join(batch_dir, SPECS))}"
        ' "$SLURM_ARRAY_TASK_ID"' + (f" --first={first}" if first else "")
        + (f" --runs-per-task={per}" if per > 1 else "") + (" --restart-changed" if restart_changed else ""),
    ]
    return "\n".join(lines) + "\n"


def script_name(part):
    return SCRIPT if part == 0 else f"job.{part}.sbatch"


def links_name(part):
    return LINKS if part == 0 else f"{LINKS}.{part}"


def max_array_size():
    """The cluster's MaxArraySize (an array's task ids must be below it); 1001, SLURM's default, if unknown."""
    try:
        done = _slurm(["scontrol", "show", "config"])
    except (errors.BadInput, Unreachable):
        return 1001  # no SLURM here (--dry-run on a laptop), or none that answers: sbatch will say
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return max(int(value.strip()), 1)
    return 1001


def task_count(runs_count, per):
    """How many array tasks hold runs_count runs, per a task."""
    return -(-runs_count // per)


def chunks(n, size):
    """[(first, count)] of arrays of at most `size` tasks covering n tasks."""
    return [(first, min(size, n - first)) for first in range(0, n, size)]


def _job_name(specs):
    names = {s.get("experiment") for s in specs}
    only = names.pop() if len(names) == 1 else None
    return only if isinstance(only, str) and only and only.replace("_", "").replace("-", "").isalnum() else "runkit"


def _sbatch_quote(text):
    """sbatch reads #SBATCH lines with its own parser: double-quote a value that holds spaces."""
    return f'"{text}"' if any(c.isspace() for c in text) else text


def new_batch_dir(specs):
    """A fresh batch folder name under <results folder>/batches/ (not created)."""
    root = os.path.join(results_folder(specs), "batches")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = os.path.join(root, stamp), 1
    while os.path.exists(candidate):
        n += 1
        candidate = os.path.join(root, f"{stamp}-{n}")
    return candidate


def check(script):
    """Let sbatch judge the script and options without submitting (--test-only); BadInput if it objects."""
    done = _slurm(["sbatch", "--test-only"], input=script)
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit {done.returncode}"
        raise errors.BadInput(f"sbatch rejects the job: {message} (check the --slurm options)")


def submit(specs, options, restart_changed=False, freeze=True):
    """Write the batch folder, snapshot the code (freeze), submit its arrays (several if the batch is larger
    than MaxArraySize), record the job ids: ([job id of each array], batch folder)."""
    batch_dir = new_batch_dir(specs)
    frozen = snapshot.project_root() if freeze else None
    per = options.runs_per_task
    parts = chunks(task_count(len(specs), per), max_array_size())
    scripts = [render(batch_dir, specs[first * per:(first + count) * per], options, restart_changed, part, first,
                      frozen) for part, (first, count) in enumerate(parts)]
    check(scripts[0])
    os.makedirs(batch_dir)
    if frozen is not None:
        made = snapshot.make(batch_dir, frozen)
        print(f"runbatch: froze the code of {frozen} into {made['snapshot']} ({made['files']} files, "
              f"{made['bytes'] / 1e6:.1f} MB, {made['seconds']:.2f} s)", file=sys.stderr)
    with open(os.path.join(batch_dir, SPECS), "w", encoding="utf-8") as stream:
        for s in specs:
            cli.write_jsonl(s, stream)
    for part, (first, count) in enumerate(parts):
        os.makedirs(os.path.join(batch_dir, links_name(part)))
        for j in range(count):
            if per > 1:  # the task's own log; each run's output goes to its folder (slurm_task)
                os.makedirs(os.path.join(batch_dir, links_name(part), str(j)))
            for s in specs[(first + j) * per:(first + j + 1) * per]:
                os.makedirs(s["run_dir"], exist_ok=True)
                if per == 1:
                    os.symlink(os.path.abspath(s["run_dir"]), os.path.join(batch_dir, links_name(part), str(j)))
                runs.record_slurm_submission(s["run_dir"], batch_dir, first + j)
        runs.write_atomic(os.path.join(batch_dir, script_name(part)), scripts[part])
    jobs = []
    record = {"job_id": None, "jobs": jobs, "runs": len(specs),
              "code_snapshot": os.path.join(batch_dir, snapshot.FOLDER) if frozen else None,
              **({"runs_per_task": per} if per > 1 else {})}
    for part, (first, count) in enumerate(parts):
        script = os.path.join(batch_dir, script_name(part))
        done = _slurm(["sbatch", "--parsable", script])
        if done.returncode != 0:
            _write_record(batch_dir, record)
            raise errors.WorkFailed(f"sbatch failed: {' '.join(done.stderr.split())} (batch folder {batch_dir}; "
                                 f"{len(jobs)} of {len(parts)} arrays submitted)")
        jobs.append({"job_id": done.stdout.strip().split(";")[0], "script": script, "first": first, "count": count})
        record["job_id"] = jobs[0]["job_id"]
        _write_record(batch_dir, record)
    return [j["job_id"] for j in jobs], batch_dir


def _write_record(batch_dir, record):
    record = {**record, "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    runs.write_atomic(os.path.join(batch_dir, RECORD), json.dumps(record, indent=2) + "\n")


def read_record(batch_dir):
    try:
        with open(os.path.join(batch_dir, RECORD), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


# ---- waiting ---------------------------------------------------------------------------------

def wait_for(batch_dir, specs, poll=10.0, progress=sys.stderr, patience=None, clock=time.monotonic,
             sleep=time.sleep):
    """Block until no task of the batch's arrays is queued or running; progress on stderr. {task: last SLURM
    state}, by the batch's task number (run i of specs is in task i // K, K: the batch's runs per task).

    One squeue a poll for the whole batch. When squeue is slow (more than a quarter of the poll) or fails, the
    next poll waits twice as long (up to 5 minutes); after `patience` seconds (RUNBATCH_SLURM_PATIENCE, 600)
    without an answer it gives up with a message: the jobs go on, and `collect` shows the runs."""
    if patience is None:
        patience = float(os.environ.get(PATIENCE_VAR) or PATIENCE)
    per = read_record(batch_dir).get("runs_per_task", 1)
    where = {(a["job_id"], str(j)): a["first"] + j for a in arrays(batch_dir) for j in range(a["count"])}
    ids = ", ".join(dict.fromkeys(job for job, _ in where))
    seen, shown, delay, silent_since, restarts = {}, None, poll, None, {}
    while True:
        asked = clock()
        slow = []

        def waiting(seconds):
            slow.append(seconds)
            print(f"runbatch: squeue has not answered for {seconds:.0f} s (the SLURM controller is down, restarting "
                  f"or busy); still waiting for it, up to {TIMEOUT} s: jobs {ids} go on", file=progress, flush=True)
        try:
            listed = _squeue(waiting)
        except Unreachable as e:
            now = clock()
            silent_since = silent_since if silent_since is not None else asked
            if now - silent_since >= patience:
                raise Unreachable(f"the SLURM controller has not answered for {now - silent_since:.0f} s ({e}); "
                                  f"stopped waiting: jobs {ids} go on, and `collect` shows their runs") from None
            delay = min(max(delay * 2, poll), 300.0)
            print(f"runbatch: no answer from SLURM ({e}); jobs {ids} go on; asking again in {delay:.0f} s "
                  f"(giving up after {patience:.0f} s of silence: {PATIENCE_VAR})", file=progress, flush=True)
            sleep(delay)
            continue
        took = clock() - asked
        if silent_since is not None or slow:
            since = silent_since if silent_since is not None else asked
            print(f"runbatch: SLURM answers again, after {clock() - since:.0f} s", file=progress, flush=True)
        silent_since = None
        delay = min(delay * 2, 300.0) if took > poll / 4 else poll
        tasks = {where[key]: state for key, (state, _script) in listed.items() if key in where}
        for task, state in tasks.items():
            _say_requeues(task, specs[task * per:(task + 1) * per], seen.get(task), state, restarts, progress)
        seen.update(tasks)
        # A task SLURM no longer lists (it forgets finished jobs) is as done as one in a final state.
        live = [t for t, state in tasks.items() if state not in FINAL]
        counts = {}
        for s in specs:
            state = runs.status(s["run_dir"])
            counts[state] = counts.get(state, 0) + 1
        line = (f"runbatch: job{'s' * (',' in ids)} {ids}: "
                + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
                + f"; {len(live)} of {task_count(len(specs), per)} tasks queued or running")
        if line != shown:
            print(line, file=progress, flush=True)
            shown = line
        if not live:
            return seen
        sleep(delay)


def _say_requeues(task, group, before, state, restarts, progress):
    """Say on `progress` when SLURM puts a task back in the queue (preempted, warned, its node died) and when
    it starts again (a new attempt in slurm.json with a higher SLURM_RESTART_COUNT); group: the task's specs;
    restarts: {task: the count said so far}, updated."""
    names = ", ".join(s["name"] for s in group)
    name = f"task {task}" + (f" ({names})" if group else "")
    if state == "PENDING" and before not in (None, "PENDING"):
        print(f"runbatch: {name} was requeued by SLURM (it was {before}); it runs again, from its last "
              "checkpoint for a run that saves them", file=progress, flush=True)
    if state == "RUNNING" and group:
        count = max(requeues(s["run_dir"]) for s in group)
        if count > restarts.get(task, 0):
            print(f"runbatch: {name} restarted after {count} requeue{'s' * (count != 1)} (SLURM_RESTART_COUNT "
                  f"{count}; its attempts are in {runs.SLURM})", file=progress, flush=True)
            restarts[task] = count


def requeues(run_dir):
    """How many times SLURM requeued the run's task: the highest restart_count of its slurm.json attempts."""
    return max((a.get("restart_count") or 0 for a in (runs.read_slurm(run_dir) or {}).get("attempts", [])),
               default=0)


def outcome(s, slurm_state=None):
    """The outcome line of a run whose task left the queue (docs/spec.md), read from its run folder."""
    run_dir = s["run_dir"]
    tried = (runs.read_slurm(run_dir) or {}).get("attempts", [])
    attempts = [a for a in tried if a.get("status") not in ("skipped", "conflict")]
    last = attempts[-1] if attempts else {}
    state, reason = runs.status(run_dir), last.get("reason")
    if not attempts and tried:
        status, reason = tried[-1]["status"], tried[-1].get("reason")  # its task found nothing to do
    elif state in ("finished", "stopped"):
        status = state
    elif state == "failed":
        status = "killed" if last.get("status") == "killed" else "failed"
        reason = (runs.read_json(run_dir, runs.ERROR) or {}).get("error")
    else:
        status = "killed"
        reason = f"SLURM says {slurm_state}" if slurm_state else f"its task is gone and the run is {state}"
    duration = (last.get("end") or time.time()) - attempts[0]["start"] if attempts else 0.0
    return outcomes.outcome(s, status, exit_code=last.get("exit_code"), signal=last.get("signal"),
                            duration=duration, attempts=len(attempts), reason=reason,
                            slurm_job=last.get("job_id"), slurm_task=last.get("task_id"),
                            slurm_requeues=requeues(run_dir))


# ---- runbatch --slurm ------------------------------------------------------------------------

def run_batch(specs, options, dry_run=False, wait=False, poll=10.0, restart_changed=False, out=cli.write_jsonl,
              freeze=True):
    """Submit what is still to do (or print its script); with `wait`, block and print each run's outcome."""
    todo, others = split(specs, restart_changed)
    conflicts = [(s, v) for s, v in others if v.action == "conflict"]
    for s, v in conflicts:
        print(f"runbatch: {s['name']}: conflict: {v.reason}", file=sys.stderr)
    say = f"{len(todo)} of {len(specs)} runs ({len(others) - len(conflicts)} finished, running or queued" \
          f"{f', {len(conflicts)} in conflict' if conflicts else ''})"
    if dry_run:
        if todo:
            batch_dir, size = new_batch_dir(todo), max_array_size()
            frozen = snapshot.project_root() if freeze else None
            per = options.runs_per_task
            for part, (first, count) in enumerate(chunks(task_count(len(todo), per), size)):
                sys.stdout.write(("\n" if part else "") + render(batch_dir, todo[first * per:(first + count) * per],
                                                                  options, restart_changed, part, first, frozen))
        print(f"runbatch: would submit {say}; nothing written", file=sys.stderr)
        return
    if not todo:
        print(f"runbatch: nothing to submit: {say}", file=sys.stderr)
        job_ids, batch_dir = [], None
    else:
        job_ids, batch_dir = submit(todo, options, restart_changed, freeze)
        print(f"runbatch: submitted job{'s' * (len(job_ids) > 1)} {', '.join(job_ids)}: {say}; "
              f"batch folder {batch_dir}", file=sys.stderr)
    job_id = job_ids[0] if job_ids else None
    if not wait:
        out({"job_id": job_id, "job_ids": job_ids, "batch_dir": batch_dir, "runs": len(todo),
             "skipped": len(others) - len(conflicts), "conflicts": len(conflicts)})
        return _conflicts_fail(conflicts)
    for s, verdict in others:
        out(outcomes.not_run(s, verdict))
    if not todo:
        return _conflicts_fail(conflicts)
    try:
        states = wait_for(batch_dir, todo, poll)
    except KeyboardInterrupt:
        print(f"runbatch: stopped waiting; job {', '.join(job_ids)} goes on (`collect` shows its runs, "
              f"`scancel {' '.join(job_ids)}` stops it)", file=sys.stderr)
        raise
    results = [outcome(s, states.get(i // options.runs_per_task)) for i, s in enumerate(todo)]
    for result in results:
        out(result)
    bad = sum(r["status"] not in ("finished", "skipped") for r in results)
    if bad:
        raise errors.WorkFailed(f"{bad} of {len(todo)} runs failed, were killed, stopped or in conflict; see "
                             "RUN_DIR/slurm-*.log and RUN_DIR/error.json")
    _conflicts_fail(conflicts)


def _conflicts_fail(conflicts):
    if conflicts:
        raise errors.WorkFailed(f"{len(conflicts)} runs conflict with what their folders were made from (listed above): "
                             "rerun with --restart-changed to start them over, or give them other names")
