"""Training: the schedule table, checkpoints, the DDP-aware loop and what it logs."""
