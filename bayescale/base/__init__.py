"""Ground floor: errors and warnings, argument checks, units, files, progress bars, the compiled-model cache.

Nothing here imports another part of bayescale.
"""
