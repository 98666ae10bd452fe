"""labels: the Dagster assets and checks of the group (assets.py), loaded by `load_from_defs_folder`."""
