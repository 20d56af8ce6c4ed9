"""Names a run folder and a run's processes share, known to the loggers, the CLI and the harness alike. No imports:
the harness's table reads run folders without loading Lightning."""

#: The run's final metrics, written beside its checkpoints (what the harness's tables read).
METRICS_FILE = "metrics.json"

#: The run this process works for (DDP children learn their parent's through it).
RUN_ID_VARIABLE = "VMP_LIGHTNING_RUN_ID"
