# Source me: `source e.sh`. Activates .venv, puts the tools on PATH, sets where runs and data live.
# Lab-wide settings (SLURM defaults, the sync destination) belong here too; see README.
_runkit_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
if [ -f "$_runkit_root/.venv/bin/activate" ]; then
    . "$_runkit_root/.venv/bin/activate"
else
    echo "e.sh: no .venv yet; run 'make env' first" >&2
fi
case ":$PATH:" in *":$_runkit_root/tools:"*) ;; *) export PATH="$_runkit_root/tools:$PATH" ;; esac
export RESULTS_DIR="${RESULTS_DIR:-$_runkit_root/results}"
export DATA_DIR="${DATA_DIR:-$_runkit_root/data}"
# export SYNC_DEST=cluster:proj                   # used by `make sync`; proj is under your home there
# export RUNBATCH_SLURM_PARTITION=gpu             # runbatch --slurm defaults (see runbatch --help)
unset _runkit_root
