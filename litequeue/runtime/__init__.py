"""Layer 4: the consumer process: dispatcher, workers, supervisor, scheduler."""
