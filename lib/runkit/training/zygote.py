"""The warm process of a local batch (docs/warm-runs.md): import torch, Lightning and runkit's training side
once, then fork one `train` per run, so that a sweep of short runs pays for training, not for imports.

    python -m runkit.training.zygote        # started by runbatch (runkit.sweeps.warm), never by hand

RUNKIT_ZYGOTE_FD names a SOCK_SEQPACKET unix socket to runbatch; RUNKIT_ZYGOTE_IMPORTS, a JSON list of the
modules the batch's configs `import`. The zygote dies with runbatch (PR_SET_PDEATHSIG), touches no CUDA,
runs no tensor op and parses no config: a forked child starts from a state a cold `train` would reach by
importing the same modules. For each request (JSON: argv, env, cwd; fds: a reply socket, stdout, stderr and
the pass_fds) it forks a middle process that forks the run and exits at once: the run is reparented to
runbatch (a child subreaper), which waits for it as for any child it started. The middle one sends
{"pid"}; once the zygote has reaped it, the zygote sends {"adopted": true}.
"""
import fcntl
import importlib
import json
import os
import signal
import socket
import sys

from runkit.training import stopping

TRAINING = ("torch", "pytorch_lightning", "runkit.training.train", "runkit.training.fit", "runkit.training.cli_main",
            "runkit.training.recorder", "runkit.training.resume", "runkit.sweeps.slurm.client",
            "runkit.training.metadata", "runkit.training.checkpoint_io")
# What a run usually loads later, when it builds its logger and data: loaded here if installed
OPTIONAL = ("pytorch_lightning.loggers.tensorboard", "torch.utils.tensorboard")
MAX_REQUEST = 1 << 20


def main():
    control = socket.socket(fileno=int(os.environ.pop("RUNKIT_ZYGOTE_FD")))
    wanted = json.loads(os.environ.pop("RUNKIT_ZYGOTE_IMPORTS", "[]"))
    stopping.die_with_parent()
    failed = load(wanted)
    sys.stdout.flush()
    sys.stderr.flush()
    import gc
    gc.freeze()  # what the imports made stays shared with the children: no page copied by the collector
    control.send(json.dumps({"ready": True, "pid": os.getpid(), "failed": failed,
                             "threads": len(os.listdir("/proc/self/task"))}).encode())
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(control, MAX_REQUEST, 16)
        except (OSError, ValueError):
            return
        if not data:  # runbatch closed its end: the batch is done
            return
        try:
            fork_run(json.loads(data), fds, control)
        finally:
            for fd in fds:
                os.close(fd)


def load(wanted):
    """Import the training side and the configs' modules; {module: "Error: message"} for those that failed."""
    for name in TRAINING:
        importlib.import_module(name)
    from runkit.training import components
    components.register()
    for name in OPTIONAL:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    failed = {}
    for name in wanted:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure: the runs that import it start cold instead
            failed[name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return failed


def fork_run(request, fds, control):
    reply = socket.socket(fileno=os.dup(fds[0]))
    try:
        middle = os.fork()
        if middle == 0:
            status = 1
            try:
                control.close()
                pid = os.fork()
                if pid == 0:
                    become(request, reply, fds)
                reply.send(json.dumps({"pid": pid}).encode())
                status = 0
            except BaseException as e:  # noqa: BLE001 - a fork that failed: runbatch starts the run cold
                try:
                    reply.send(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())
                except OSError:
                    pass
            finally:
                os._exit(status)
        os.waitpid(middle, 0)
        try:
            reply.send(json.dumps({"adopted": True}).encode())
        except OSError:
            pass
    finally:
        reply.close()


def become(request, reply, fds):
    """In the forked child: turn into the `train` process runbatch asked for; never returns."""
    code = 1
    try:
        stopping.install()
        stopping.received = None
        os.setsid()  # its own session and process group, as runbatch's cold runs (start_new_session)
        reply.close()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 512) for fd in fds[1:]]  # out of the way of the targets
        for fd in fds:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for source, target in zip(high, [1, 2, *request["pass_fds"]], strict=False):  # pass_fds at their numbers, as Popen
            os.dup2(source, target)
        for fd in high:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = run_train(request["argv"])
    except BaseException:  # noqa: BLE001 - say why on the run's stderr, as a crashed interpreter would
        import traceback
        traceback.print_exc()
    finally:
        _exit(code)


def run_train(argv):
    """tools/train's main in this process, as a fresh interpreter would run it; the exit status."""
    import random

    import gin
    import numpy as np
    import torch

    from runkit import cli
    from runkit.training import cli_main
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))  # the job's share of the cores, as a fresh process reads it
    gin.clear_config()
    random.seed()  # fresh entropy, as a new interpreter has (the run then seeds from its config)
    np.random.seed()
    script = cli.tool_path("train")  # what sys.argv[0] is in a cold `train`
    sys.argv = [script if argv[0] == "train" and os.path.exists(script) else argv[0], *argv[1:]]
    try:
        cli.run_main("train", cli_main.main, argv[1:])
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    return 0


def _exit(code):
    """Leave as an interpreter does (threads joined, atexit handlers, streams flushed), without the zygote's
    teardown."""
    import atexit
    import threading
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    main()
