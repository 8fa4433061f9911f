"""Layer 3: the Huey adapter: storage, job context, interruptions, batches API."""
