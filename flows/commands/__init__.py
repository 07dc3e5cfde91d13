"""Sub-commands of `eia`, one module per area; `flows/cli.py` mounts each module's `app`."""
