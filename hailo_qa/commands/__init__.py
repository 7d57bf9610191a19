"""``hailo-qa`` subcommands: one module each, discovered by :mod:`hailo_qa.cli`.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``, and imports its
heavy dependencies inside ``run`` so ``hailo-qa --help`` stays fast. The command name is the module name with
``_`` → ``-`` (``sweep_calib`` → ``sweep-calib``).
"""
