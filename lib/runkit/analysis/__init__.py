"""Analysis of run folders: the table, plots, successive halving, proposals. Light: no torch (pandas and matplotlib only where a plot is drawn)."""
