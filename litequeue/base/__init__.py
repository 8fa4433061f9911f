"""Layer 0: plain Python values every layer shares (no database, no Huey)."""
