"""One forward step of a Hugging Face model with its KV cache, under the transformers Cache API.

transformers renamed the cache argument and output field from ``past_key_values`` to ``cache`` and
warns on the old name (removal announced). Our stepping coders (lossless residual, caption LM) call
the model one token at a time; this wrapper passes the cache under whichever name the installed
model's ``forward`` takes and returns the Cache object the model filled in, so no deprecation warning
is printed and the same code runs on versions before and after the rename. The computation is the one
the model does with ``cache=None``: it creates the same ``DynamicCache`` itself on the first step.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def _cache_keyword(forward_owner: type) -> str:
    """``"cache"`` when this model class's forward takes the new keyword, else ``"past_key_values"``."""
    params = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _base_model(model: Any) -> Any:
    """The transformers model under a peft wrapper (whose forward only takes ``**kwargs``)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def forward_with_cache(model: Any, cache: Any, **inputs: Any) -> tuple[Any, Any]:
    """``model(**inputs)`` continuing ``cache`` (None to start); returns ``(output, new cache)``."""
    key = _cache_keyword(type(_base_model(model)))
    out = model(**inputs, **{key: cache}, use_cache=True)
    new_cache = out["cache"] if key == "cache" else out["past_key_values"]
    return out, new_cache
