"""Sub-commands of `eia`, one module per area; `flows/cli/app.py` mounts each module's `app`."""
