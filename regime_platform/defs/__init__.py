"""The Dagster layer: one folder per asset group, loaded by `load_from_defs_folder`. Thin: no math here."""
