"""train's command line (tools/train), importable: the same main runs in a cold `train` process and in a
warm one forked from runbatch's zygote (runkit.training.zygote, docs/warm-runs.md).

Imports nothing heavy at module level: torch loads once the config files and -b bindings read well.
"""
import atexit
import gc
import os
import sys

from runkit import cli, errors
from runkit.rundir import hash_seed  # here: it reads PYTHONHASHSEED as the interpreter (or warm process) started
from runkit.training import stopping

DESCRIPTION = "train one model into one run folder; rerun the same command to resume it."

EXAMPLE = """\
examples:
  train $RESULTS_DIR/demo configs/digits_mlp.gin                                 # ~5 s on a laptop CPU
  train $RESULTS_DIR/demo configs/digits_mlp.gin -b training_loop.n_epochs=20    # continue it to 20 epochs
  train $RESULTS_DIR/lr01 configs/digits_mlp.gin -b "optimizer.lr=0.1#training_loop.seed=1"
  train $RESULTS_DIR/ae configs/digits_autoencoder.gin -b trainer.gradient_clip_val=1.0
  train $RESULTS_DIR/tuned configs/digits_mlp.gin --from $RESULTS_DIR/demo -b optimizer.lr=0.01   # fine-tune

Configs apply in order, then the -b bindings (repeatable; '#' separates several in one -b). Any
pytorch_lightning.Trainer argument binds as trainer.NAME; the epochs are training_loop.n_epochs.
Rerunning the same command continues from checkpoints/last.ckpt (written every
training_loop.checkpoint_every_n_steps steps and at each epoch end), or from prev.ckpt beside it when
last.ckpt is damaged (its .sha256 digest does not match); on a finished run it does nothing.
Other changed bindings are refused: use another RUN_DIR or --restart (which removes only what train wrote).
--from SOURCE starts a new run from another run's checkpoints/best.ckpt (or the checkpoint file named):
its weights, and with --from-state its optimizer and scheduler state; the run is otherwise its own, and
resumes from its own checkpoints. Every rerun names the same --from (meta.json's source records it).

stdout: one JSON line, the metrics {"monitor", "mode", "final": {...}, "best": {...}}; messages go to
stderr and RUN_DIR/train.log. exit: 0 done, 1 training failed (RUN_DIR/error.json says why; rerun
resumes), 2 bad usage or config (nothing written), 128+N stopped by signal N (SIGUSR1, SIGUSR2, SIGTERM, SIGINT)
after a checkpoint.
"""


def main(argv):
    parser = cli.Parser("train", DESCRIPTION, EXAMPLE)  # a bad command line: one usage line, one error line
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (created if missing)")
    parser.add_argument("configs", metavar="CONFIG.gin", nargs="+", help="gin config files, applied in order")
    parser.add_argument("-b", "--bind", action="append", default=[], metavar="BINDINGS",
                        help="gin bindings, e.g. -b \"optimizer.lr=0.1#training_loop.seed=2\"")
    parser.add_argument("--restart", action="store_true", help="delete what train wrote in RUN_DIR (nothing else) and start over")
    parser.add_argument("--from", dest="start_from", metavar="SOURCE",
                        help="start from another run's weights: RUN_DIR (its checkpoints/best.ckpt) or a .ckpt file")
    parser.add_argument("--from-state", action="store_true",
                        help="with --from: also the source's optimizer and scheduler state")
    args = parser.parse_args(argv)
    if args.from_state and args.start_from is None:
        parser.error("--from-state needs --from SOURCE")
    hash_seed.settle(args.run_dir, args.restart, sys.argv[0])  # may start this tool again under the run's seed
    # At exit, spare the collector its last passes over torch's and Lightning's many objects: 0.7-0.9 s of
    # every run on a 2-core machine (bench/README.md); what train opens it closes itself.
    atexit.register(gc.freeze)

    # Only the final JSON line may reach stdout: everything else printed to fd 1 goes to stderr.
    stdout = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import shlex

    from runkit.rundir import runs
    from runkit.training import train  # torch loads later, once the config files and -b bindings read well
    try:
        metrics = train.train(args.run_dir, args.configs, args.bind, restart=args.restart,
                              command=shlex.join(["train", *argv]), start_from=args.start_from,
                              from_state=args.from_state)
    except stopping.Stopped as e:  # said on stderr and in train.log already
        return 128 + e.signum
    except errors.BadInput:  # bad usage or config: one line, exit 2 (cli.run_main)
        raise
    except Exception as e:  # noqa: BLE001 - a failed attempt (exit 1, see error.json)
        where = (f" (see {args.run_dir}/error.json; rerun to resume)"
                 if os.path.exists(runs.path(args.run_dir, runs.ERROR)) else "")
        raise errors.WorkFailed(f"{type(e).__name__}: {cli.first_line(e)}{where}") from e
    if metrics is None:  # an extra process of a distributed run: it wrote nothing, so it leaves at once
        sys.stderr.flush()  # (its C++ communication threads could abort the process in the interpreter's
        os._exit(0)         # own teardown, "terminate called without an active exception": seen under srun)
    cli.write_jsonl(metrics, stdout)
    return 0
