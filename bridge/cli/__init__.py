"""Command lines that open the bridge's whole database and configuration (entry points, like
bridge/app.py): they sit above every subsystem, so none of the subsystems depends on them."""
