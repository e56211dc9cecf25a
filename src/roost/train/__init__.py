"""Training: the distributed trainer (DDP, FSDP2, tensor parallel), exact-resume checkpoints,
evaluation and metrics, and conversation tuning. `trainer.train` runs it; `checkpoint.load_model`
gives serving a run's model."""
