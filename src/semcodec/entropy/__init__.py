"""Entropy-coding layer shared by every codec package (sits below them, next to ``container/``).

- :mod:`.varint`     unsigned LEB128 (+ zigzag) with hard limits
- :mod:`.words`      constriction's uint32 words <-> stream bytes (the shipped conventions, named)
- :mod:`.models`     exact integer models: pmf -> integer frequencies, categorical / Bernoulli families
- :mod:`.rangecoder` range and ANS coders over those models; canonical shortest short messages
- :mod:`.hyperprior` the determinism rule of the CompressAI mean-scale hyperprior codecs (needs torch)

Nothing is imported here, so a text coder does not pay for torch and CompressAI.
"""
