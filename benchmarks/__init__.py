"""Benchmarks of SPEC §11: each prints its figures and the machine it ran on."""
