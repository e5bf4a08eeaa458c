"""Trainers: one module per model (``lic``, ``lossless``, ``latent_codec``, ``caption_lm``, ``perco``,
``resulic_cdm``), each plugging its step and validation functions into :mod:`.loop`; their flags are in
:mod:`.args`, the ``semcodec train <model>`` commands in :mod:`.cli`. Tools layer: nothing below imports it."""
