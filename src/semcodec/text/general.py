"""General-purpose byte compressors as text coders: brotli and zstd at maximum settings.

Both are framed as tightly as the libraries allow (zstd: magic-less frame, no checksum/size/dict id;
brotli: raw stream), since every byte counts for a 50-character caption.
"""

from __future__ import annotations

from ..errors import FormatError
from .base import TextCoder

MAX_BYTES = 1 << 20


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise FormatError("corrupted text stream: invalid UTF-8") from None


class BrotliCoder(TextCoder):

    @classmethod
    def availability(cls) -> str | None:
        try:
            import brotli  # noqa: F401
        except ImportError:
            return "pip install brotli"
        return None

    def encode(self, text: str) -> bytes:
        import brotli

        return brotli.compress(text.encode("utf-8", "surrogatepass"), quality=11, lgwin=22)

    def decode(self, data: bytes) -> str:
        import brotli

        try:
            d = brotli.Decompressor()
            out = d.process(data, output_buffer_limit=MAX_BYTES + 1)
            if len(out) > MAX_BYTES or not d.is_finished():
                raise FormatError("corrupted text stream: brotli data incomplete or over 1 MiB")
        except brotli.error as e:
            raise FormatError(f"corrupted text stream: {e}") from None
        except TypeError:  # older brotli without output_buffer_limit
            try:
                out = brotli.decompress(data)
            except brotli.error as e:
                raise FormatError(f"corrupted text stream: {e}") from None
        return _utf8(out)


class ZstdCoder(TextCoder):

    @classmethod
    def availability(cls) -> str | None:
        try:
            import zstandard  # noqa: F401
        except ImportError:
            return "pip install zstandard"
        return None

    def encode(self, text: str) -> bytes:
        import zstandard as z

        p = z.ZstdCompressionParameters.from_level(19, format=z.FORMAT_ZSTD1_MAGICLESS, write_content_size=False,
                                                   write_checksum=False, write_dict_id=False)
        return z.ZstdCompressor(compression_params=p).compress(text.encode("utf-8", "surrogatepass"))

    def decode(self, data: bytes) -> str:
        import zstandard as z

        dz = z.ZstdDecompressor(format=z.FORMAT_ZSTD1_MAGICLESS)
        try:
            with dz.stream_reader(data, read_across_frames=False) as r:
                out = r.read(MAX_BYTES + 1)  # capped: a corrupt frame can't balloon memory
            if len(out) > MAX_BYTES:
                raise FormatError("corrupted text stream: zstd data over 1 MiB")
            o = dz.decompressobj()  # output is known to be small now
            if o.decompress(data) != out or o.unused_data or not o.eof:
                raise FormatError("corrupted text stream: zstd frame incomplete or followed by junk")
        except z.ZstdError as e:
            raise FormatError(f"corrupted text stream: {e}") from None
        return _utf8(out)
