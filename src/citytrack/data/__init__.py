"""Datasets: real on-disk formats, the synthetic world, and Lightning datamodules."""
