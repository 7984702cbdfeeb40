"""`runbatch --slurm`: a batch of run specs as one SLURM job array, and waiting for it.

A submission writes a batch folder, <results folder of the runs>/batches/<time>/, holding
  specs.jsonl   the runs not finished and not running or queued, one per array task (task i = line i)
  job.sbatch    the script, readable and kept: `sbatch job.sbatch` resubmits it by hand
  batch.json    the job id, once submitted
  .tasks/<i>    a link to task i's run folder, so SLURM writes RUN_DIR/slurm-<job>_<task>.log itself
and each run folder gets slurm.json (runs.py): its batch and task, then each attempt's SLURM ids.
SLURM forgets finished jobs, so outcomes are read from the run folders; squeue only says what is queued.
"""
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field

import runkit
from runkit import batch, cli, runs

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
}
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

    @classmethod
    def from_args(cls, given, environ=os.environ):
        """Options from {name: value or None}, an unset one from its environment variable; UsageError if bad."""
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
        return cls(**values)


def _checked(name, var, value):
    flag = "--" + name.replace("_", "-")
    if name in ("cpus", "throttle", "signal_seconds", "max_requeues"):
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < (0 if name in ("signal_seconds", "max_requeues") else 1):
            raise cli.UsageError(f"{flag} (or {var}) must be a whole number of at least "
                                 f"{0 if name in ('signal_seconds', 'max_requeues') else 1}, not {value!r}")
        return number
    items = value if isinstance(value, list) else [value]
    if any("\n" in str(v) for v in items):
        raise cli.UsageError(f"{flag} (or {var}) holds a newline; give one value per flag")
    if name == "sbatch_args" and any(not str(v).startswith("-") for v in items):
        raise cli.UsageError(f"{flag} (or {var}) takes sbatch flags like --constraint=a100, not {items!r}")
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
        job = read_record(record["batch_dir"]).get("job_id")
        state = live.get((job, str(record["task"])))
        if state and state[1] == os.path.join(record["batch_dir"], SCRIPT) and state[0] not in FINAL:
            out.add(run_dir)
    return out


def _squeue(job_id=None):
    """{(array job id, task id): (state, script path)} for this user's array tasks that SLURM still lists."""
    argv = ["squeue", "--me", "--noheader", "--array", "--states=all", "--format=%F|%K|%T|%o"]
    if job_id:
        argv.append(f"--jobs={job_id}")
    done = _slurm(argv)
    if done.returncode != 0:
        if job_id and "Invalid job id" in done.stderr:
            return {}  # SLURM forgot the whole job already
        raise cli.WorkFailed(f"squeue failed: {done.stderr.strip() or done.returncode}")
    table = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4:
            table[(parts[0], parts[1])] = (parts[2], parts[3])
    return table


def _slurm(argv, **kwargs):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
    except FileNotFoundError:
        raise cli.UsageError(f"{argv[0]} not found: run this where SLURM's commands are on PATH "
                             "(or try scripts/slurm-cluster start)") from None
    except subprocess.TimeoutExpired:
        raise cli.WorkFailed(f"{argv[0]} did not answer in 120 s: is the SLURM controller up?") from None


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


def render(batch_dir, specs, options, restart_changed=False):
    """The sbatch script of a batch: #SBATCH lines, then exec the task runner (no shell sees spec values)."""
    n = len(specs)
    name = options.job_name or _job_name(specs)
    array = f"0-{n - 1}" + (f"%{options.throttle}" if options.throttle else "")
    lines = [
        "#!/bin/bash",
        f"# runkit: {n} run{'s' * (n != 1)} as one SLURM job array, written by `runbatch --slurm`.",
        "# Task i runs line i (from 0) of specs.jsonl, holding the run's lock; a finished run is skipped.",
        "# Resubmit by hand: sbatch " + shlex.quote(os.path.join(batch_dir, SCRIPT)),
        f"#SBATCH --job-name={name}",
        f"#SBATCH --array={array}",
        f"#SBATCH --output={_sbatch_quote(os.path.join(batch_dir, LINKS, '%a', runs.SLURM_LOG))}",
        "#SBATCH --open-mode=append",
        # On the warning signal the run checkpoints and requeues itself; the log continues.
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:USR1@{options.signal_seconds}",
    ]
    for flag, value in (("partition", options.partition), ("time", options.time), ("gres", options.gres),
                        ("cpus-per-task", options.cpus), ("mem", options.mem), ("account", options.account),
                        ("qos", options.qos)):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={_sbatch_quote(str(value))}")
    lines += [f"#SBATCH {_sbatch_quote(arg)}" for arg in options.sbatch_args]
    lib = os.path.dirname(os.path.dirname(os.path.abspath(runkit.__file__)))
    lines += [
        "",
        f"export PYTHONPATH={shlex.quote(lib)}${{PYTHONPATH:+:$PYTHONPATH}}",
        f"export RUNKIT_SLURM_MAX_REQUEUES={options.max_requeues}",
        f"exec {shlex.quote(sys.executable)} -m runkit.slurm_task {shlex.quote(os.path.join(batch_dir, SPECS))}"
        ' "$SLURM_ARRAY_TASK_ID"' + (" --restart-changed" if restart_changed else ""),
    ]
    return "\n".join(lines) + "\n"


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
    """Let sbatch judge the script and options without submitting (--test-only); UsageError if it objects."""
    done = _slurm(["sbatch", "--test-only"], input=script)
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit {done.returncode}"
        raise cli.UsageError(f"sbatch rejects the job: {message} (check the --slurm options)")


def submit(specs, options, restart_changed=False):
    """Write the batch folder, submit its array, record the job id: (job id, batch folder)."""
    batch_dir = new_batch_dir(specs)
    script = render(batch_dir, specs, options, restart_changed)
    check(script)
    os.makedirs(os.path.join(batch_dir, LINKS))
    with open(os.path.join(batch_dir, SPECS), "w", encoding="utf-8") as stream:
        for s in specs:
            cli.write_jsonl(s, stream)
    for task, s in enumerate(specs):
        os.makedirs(s["run_dir"], exist_ok=True)
        os.symlink(os.path.abspath(s["run_dir"]), os.path.join(batch_dir, LINKS, str(task)))
        runs.record_slurm_submission(s["run_dir"], batch_dir, task)
    runs.write_atomic(os.path.join(batch_dir, SCRIPT), script)
    done = _slurm(["sbatch", "--parsable", os.path.join(batch_dir, SCRIPT)])
    if done.returncode != 0:
        raise cli.WorkFailed(f"sbatch failed: {' '.join(done.stderr.split())} (batch folder {batch_dir})")
    job_id = done.stdout.strip().split(";")[0]
    runs.write_atomic(os.path.join(batch_dir, RECORD), json.dumps(
        {"job_id": job_id, "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": len(specs)}, indent=2) + "\n")
    return job_id, batch_dir


def read_record(batch_dir):
    try:
        with open(os.path.join(batch_dir, RECORD), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


# ---- waiting ---------------------------------------------------------------------------------

def wait_for(job_id, specs, poll=10.0, progress=sys.stderr):
    """Block until no task of the array is queued or running; progress on stderr. {task: last SLURM state}."""
    seen, shown = {}, None
    while True:
        tasks = {int(task): state for (job, task), (state, _script) in _squeue(job_id).items()
                 if job == job_id and task.isdigit()}
        seen.update(tasks)
        # A task SLURM no longer lists (it forgets finished jobs) is as done as one in a final state.
        live = [t for t, state in tasks.items() if state not in FINAL]
        counts = {}
        for s in specs:
            state = runs.status(s["run_dir"])
            counts[state] = counts.get(state, 0) + 1
        line = (f"runbatch: job {job_id}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
                + f"; {len(live)} of {len(specs)} tasks queued or running")
        if line != shown:
            print(line, file=progress, flush=True)
            shown = line
        if not live:
            return seen
        time.sleep(poll)


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
    return {"name": s["name"], "run_dir": run_dir, "status": status, "exit_code": last.get("exit_code"),
            "signal": last.get("signal"), "duration": round(duration, 3), "attempts": len(attempts), "reason": reason,
            "slurm_job": last.get("job_id"), "slurm_task": last.get("task_id")}


def not_run_outcome(s, verdict):
    """The outcome of a spec that was not submitted: skipped, or a conflict naming what changed."""
    out = {"name": s["name"], "run_dir": s["run_dir"], "status": verdict.action, "exit_code": None, "signal": None,
           "duration": 0.0, "attempts": 0, "reason": verdict.reason}
    if verdict.action == "conflict":
        out["changed"] = list(verdict.changes)
    return out


# ---- runbatch --slurm ------------------------------------------------------------------------

def run_batch(specs, options, dry_run=False, wait=False, poll=10.0, restart_changed=False, out=cli.write_jsonl):
    """Submit what is still to do (or print its script); with `wait`, block and print each run's outcome."""
    todo, others = split(specs, restart_changed)
    conflicts = [(s, v) for s, v in others if v.action == "conflict"]
    for s, v in conflicts:
        print(f"runbatch: {s['name']}: conflict: {v.reason}", file=sys.stderr)
    say = f"{len(todo)} of {len(specs)} runs ({len(others) - len(conflicts)} finished, running or queued" \
          f"{f', {len(conflicts)} in conflict' if conflicts else ''})"
    if dry_run:
        if todo:
            sys.stdout.write(render(new_batch_dir(todo), todo, options, restart_changed))
        print(f"runbatch: would submit {say}; nothing written", file=sys.stderr)
        return
    if not todo:
        print(f"runbatch: nothing to submit: {say}", file=sys.stderr)
        job_id, batch_dir = None, None
    else:
        job_id, batch_dir = submit(todo, options, restart_changed)
        print(f"runbatch: submitted job {job_id}: {say}; batch folder {batch_dir}", file=sys.stderr)
    if not wait:
        out({"job_id": job_id, "batch_dir": batch_dir, "runs": len(todo), "skipped": len(others) - len(conflicts),
             "conflicts": len(conflicts)})
        return _conflicts_fail(conflicts)
    for s, verdict in others:
        out(not_run_outcome(s, verdict))
    if not todo:
        return _conflicts_fail(conflicts)
    try:
        states = wait_for(job_id, todo, poll)
    except KeyboardInterrupt:
        print(f"runbatch: stopped waiting; job {job_id} goes on (`collect` shows its runs, "
              f"`scancel {job_id}` stops it)", file=sys.stderr)
        raise
    results = [outcome(s, states.get(task)) for task, s in enumerate(todo)]
    for result in results:
        out(result)
    bad = sum(r["status"] not in ("finished", "skipped") for r in results)
    if bad:
        raise cli.WorkFailed(f"{bad} of {len(todo)} runs failed, were killed, stopped or in conflict; see "
                             "RUN_DIR/slurm-*.log and RUN_DIR/error.json")
    _conflicts_fail(conflicts)


def _conflicts_fail(conflicts):
    if conflicts:
        raise cli.WorkFailed(f"{len(conflicts)} runs conflict with what their folders were made from (listed above): "
                             "rerun with --restart-changed to start them over, or give them other names")
