"""Image codecs: classical (imagecodecs / pillow-heif) and learned (CompressAI)."""
