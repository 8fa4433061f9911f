"""Layer 6: operations: health, doctor, systemd units, app loading, plugins."""
