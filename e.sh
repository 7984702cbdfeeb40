# Source me: `source e.sh`. Activates .venv (make env installed the tools in .venv/bin, so they are on PATH)
# and sets where runs and data live.
# Lab-wide settings (SLURM defaults, the sync destination) belong here too; see README.
_runkit_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
if [ -f "$_runkit_root/.venv/bin/activate" ]; then
    . "$_runkit_root/.venv/bin/activate"
else
    echo "e.sh: no .venv yet; run 'make env' first" >&2
fi
export RESULTS_DIR="${RESULTS_DIR:-$_runkit_root/results}"
export DATA_DIR="${DATA_DIR:-$_runkit_root/data}"
# export SYNC_DEST=cluster:proj                   # used by `make sync`; proj is under your home there
# runbatch --slurm defaults (runbatch --help; README.md):
# export RUNBATCH_SLURM_PARTITION=gpu RUNBATCH_SLURM_TIME=4:00:00 RUNBATCH_SLURM_GRES=gpu:1
# export RUNBATCH_SLURM_CPUS=8 RUNBATCH_SLURM_MEM=32G RUNBATCH_SLURM_ACCOUNT=mylab RUNBATCH_SLURM_THROTTLE=8
# export RUNBATCH_SLURM_EXTRA="--constraint=a100 --mail-type=FAIL"
unset _runkit_root
