"""Helpers the tests (and bench/) share: how to kill a training run so that a test cannot pass without
the resume it claims to test (kills)."""
