"""The cluster entry point (see docs/scaling.md): the same assets with another executor and warehouse."""
