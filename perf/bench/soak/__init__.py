"""The fault soak (docs/SOAK.md): traffic under injected faults, and its end-of-run checks."""
