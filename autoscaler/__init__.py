"""queuescale's controller half: ScalingPolicy models, the decision engine, the controller, the simulator
and dashboard generation. The command line is :mod:`queuescale`'s; the sandbox and the demo are :mod:`lab`'s."""
