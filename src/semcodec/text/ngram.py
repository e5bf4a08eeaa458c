"""Character (UTF-8 byte) n-gram model with interpolated Witten-Bell smoothing: the benchmark baseline.

    P_n(c | h) = (C(h c) + T(h) P_{n-1}(c | h')) / (C(h) + T(h)),   P_0 = 1/256

with T(h) the number of distinct bytes seen after context h and h' the context shortened by one.
Each text is ``BOS^(n-1) bytes EOS`` (0xFF / 0xFE never occur in UTF-8). The benchmark reports its
ideal code length sum(-log2 P), i.e. an arithmetic coder's size without termination overhead, so the
baseline is, if anything, flattered.
"""

from __future__ import annotations

import math
from collections import defaultdict

BOS, EOS = 0xFF, 0xFE


class WittenBellNgram:
    def __init__(self, order: int = 6) -> None:
        self.order = order
        self.counts: dict[bytes, int] = defaultdict(int)  # context + next byte -> count
        self.ctx: dict[bytes, list[int]] = {}  # context -> [total, distinct]

    def _seq(self, text: str) -> bytes:
        return bytes([BOS] * (self.order - 1)) + text.encode("utf-8", "surrogatepass") + bytes([EOS])

    def fit(self, texts: list[str]) -> WittenBellNgram:
        n = self.order
        for t in texts:
            s = self._seq(t)
            for i in range(n - 1, len(s)):
                for k in range(n):  # context length 0..n-1
                    key = s[i - k: i + 1]
                    c = self.counts[key]
                    self.counts[key] = c + 1
                    st = self.ctx.setdefault(key[:-1], [0, 0])
                    st[0] += 1
                    st[1] += c == 0
        return self

    def bits(self, text: str) -> float:
        n = self.order
        s = self._seq(text)
        total = 0.0
        for i in range(n - 1, len(s)):
            p = 1.0 / 256
            for k in range(n):
                h = s[i - k: i]
                st = self.ctx.get(h)
                if st is None:
                    break
                p = (self.counts.get(s[i - k: i + 1], 0) + st[1] * p) / (st[0] + st[1])
            total -= math.log2(p)
        return total
