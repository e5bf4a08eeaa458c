"""CLI wiring of capabilities that have no tools package of their own (``analyze``,
``lossless-estimate``): command declarations live here, above the codec packages, never inside them."""
