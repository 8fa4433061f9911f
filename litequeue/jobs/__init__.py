"""Layer 2: the job-state writer, the only code that changes the job tables."""
