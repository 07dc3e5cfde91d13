"""The data-quality rule registry, the Soda contract generated from it, and the gate."""
