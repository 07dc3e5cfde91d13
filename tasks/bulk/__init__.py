"""EIA bulk archives: manifest → download → verify → stream lines → batches through the shared gate and merge."""
