"""``queuescale demo``: the whole system on the embedded sandbox."""
