"""CLI wiring of capabilities that have no tools package of their own (``analyze``,
``lossless-estimate``) and the cached ``profiles`` listing: command declarations live here, above the
codec packages, never inside them."""
