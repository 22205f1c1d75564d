"""Packaged recipes (YAML): installed as edgepipe.recipes so `edgepipe run` finds the default anywhere."""
