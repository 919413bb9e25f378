"""The composition root: the ``queuescale`` command.

Argument parsing, logging, signal handling and the in-process wiring of the adapter, the controller, the
simulator, the dashboards and the demo live here (:mod:`queuescale.cli`, one module per subcommand in
:mod:`queuescale.commands`); no library module imports this package.
"""
