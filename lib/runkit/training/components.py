"""Every component's gin name, registered by importing the modules that declare them (the plug-in packages,
the Trainer's settings, the loggers, the optimizers). It sits above config and the pieces, so that reading a
config never imports upward: config.parse calls `register` once the files and bindings read well."""


def register():
    """Import every plug-in package and the Trainer's settings, so that their gin names exist (loads torch)."""
    import runkit.callbacks  # noqa: F401
    import runkit.data  # noqa: F401
    import runkit.models  # noqa: F401
    import runkit.tasks  # noqa: F401
    import runkit.training.fit  # noqa: F401
    import runkit.training.loggers  # noqa: F401
    import runkit.training.optim  # noqa: F401
