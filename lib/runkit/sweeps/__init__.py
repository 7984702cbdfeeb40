"""Sweeps: specs, bindings, grids, what to do with each spec, the local and SLURM runners, code snapshots. Light: no torch."""
