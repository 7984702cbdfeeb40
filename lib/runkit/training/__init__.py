"""Training: one run with Lightning's Trainer (train, fit, config, the recorder, exact resume, ...). The heavy side: torch and Lightning."""
