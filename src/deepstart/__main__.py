from deepstart.cli import entry_point

entry_point()
