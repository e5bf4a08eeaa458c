"""lossless"""
