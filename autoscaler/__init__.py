"""queuescale controller, decision engine, simulator, sandbox and CLI."""
