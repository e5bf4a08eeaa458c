"""Train semcodec's caption LM: byte-level BPE tokenizer + small GPT-2, on training captions only.

    semcodec train caption-lm train --run-dir runs/caption_lm      # resumable (alias: train-caption-lm)
    semcodec train caption-lm export --run-dir runs/caption_lm     # -> weights/caption_lm/
    semcodec train caption-lm ngram --run-dir runs/caption_lm      # + token 4-gram, weight table

Data flow::

    Flickr8k + COCO train2017 subset --corpus.build_documents(epoch)--> docs (captions + paragraphs)
        --byte-level BPE--> token ids + <|endoftext|> --pack--> [seq+1] windows --> GPT-2 (next token CE)

The tokenizer is byte-level BPE, so every Unicode string has an exact token sequence (unknown
characters fall back to byte tokens); the coders rely on that. Training runs on one CPU thread in
:class:`~semcodec.train.loop.TrainLoop`, checkpoints every few minutes to ``run_dir/ckpt.pt`` and
resumes from it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..paths import shared_data_dir
from ..text.corpus import build_documents, load_training_captions
from .args import DEFAULTS, caption_lm_arguments
from .loop import warmup_cosine

EOT = "<|endoftext|>"


def _split(groups: dict[str, list[str]], n_val: int, seed: int) -> tuple[dict, dict]:
    """Hold out a few COCO *train* images for an honest in-training validation loss."""
    coco = sorted(k for k in groups if k.startswith("c:"))
    val = set(random.Random(seed).sample(coco, n_val))
    return ({k: v for k, v in groups.items() if k not in val}, {k: v for k, v in groups.items() if k in val})


def train_tokenizer(docs: list[str], vocab: int, path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs, trainer)
    tok.save(str(path))


def _windows(tok, docs: list[str], seq: int, eot: int) -> np.ndarray:
    ids: list[int] = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.append(eot)
        ids.extend(enc.ids)
    ids.append(eot)
    arr = np.asarray(ids, dtype=np.int64)
    n = (len(arr) - 1) // seq
    # windows overlap by one token so every position has a target
    return np.stack([arr[i * seq: i * seq + seq + 1] for i in range(n)])


def _epoch_windows(tok, groups: dict, e: int, cfg: dict, eot: int) -> np.ndarray:
    win = _windows(tok, build_documents(groups, e, cfg["seed"], cfg["coco_repeat"], cfg["paragraph_p"]), cfg["seq"], eot)
    np.random.default_rng(cfg["seed"] + e).shuffle(win)
    return win


def _model(cfg: dict, vocab: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    conf = GPT2Config(vocab_size=vocab, n_positions=cfg["seq"], n_embd=cfg["d"], n_layer=cfg["layers"],
                      n_head=cfg["heads"], resid_pdrop=cfg["dropout"], embd_pdrop=cfg["dropout"],
                      attn_pdrop=cfg["dropout"], bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)
    return GPT2LMHeadModel(conf)


def _lr(step: int, cfg: dict) -> float:
    """Warm-up + cosine to 5%; a continued run (``--continue-steps``) restarts the cycle at ``restart``."""
    restarts = cfg.get("restarts", [])
    start, peak, end = 0, cfg["lr"], restarts[0][0] if restarts else cfg["steps"]
    for restart, restart_lr, restart_end in restarts:
        if step >= restart:
            start, peak, end = restart, restart_lr, restart_end
    return warmup_cosine(step - start, peak, cfg["warmup"], end - start, floor=0.05)


def _evaluate(model, val: np.ndarray, tok_per_char: float) -> tuple[float, float]:
    import torch  # lazy: the CLI declares this command without loading torch

    grad_was_enabled = torch.is_grad_enabled()
    torch.set_grad_enabled(False)  # evaluation only; restored below
    model.eval()
    tot = 0.0
    n_tok = 0
    for i in range(0, len(val), 8):
        x = torch.from_numpy(val[i:i + 8])
        out = model(input_ids=x[:, :-1], labels=x[:, :-1].clone())
        logits = out.logits
        lp = torch.log_softmax(logits.float(), -1).gather(-1, x[:, 1:, None]).squeeze(-1)
        tot += -lp.sum().item()
        n_tok += lp.numel()
    model.train()
    torch.set_grad_enabled(grad_was_enabled)
    return tot / n_tok, tot / n_tok / math.log(2) * tok_per_char


def _data(args: argparse.Namespace, run: Path, cfg: dict) -> tuple[Any, dict, np.ndarray, float]:
    """Tokenizer (trained once per run), training groups, validation windows, tokens per character."""
    from tokenizers import Tokenizer

    data_dir = Path(args.data_dir) if args.data_dir else shared_data_dir()
    if data_dir is None:
        sys.exit("shared data not found: set SEMCODEC_DATA or pass --data-dir")
    groups, val_groups = _split(load_training_captions(data_dir), cfg["val_images"], cfg["seed"])
    tok_path = run / "tokenizer.json"
    if not tok_path.exists():
        train_tokenizer(build_documents(groups, 0, cfg["seed"], cfg["coco_repeat"], 1.0), cfg["vocab"], tok_path)
    tok = Tokenizer.from_file(str(tok_path))
    val_docs = build_documents(val_groups, 0, cfg["seed"] + 1, 1)
    val = _windows(tok, val_docs, cfg["seq"], tok.token_to_id(EOT))
    # bits/char counts the end-of-text token each document pays for as part of that document
    tok_per_char = (sum(len(e.ids) + 1 for e in tok.encode_batch(val_docs, add_special_tokens=False))
                    / sum(len(d) for d in val_docs))
    return tok, groups, val, tok_per_char


def train(args: argparse.Namespace) -> None:
    import torch  # lazy: the CLI declares this command without loading torch

    from .loop import TrainLoop

    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    cfg = _run_config(args, run / "train_config.json")
    tok, groups, val, tok_per_char = _data(args, run, cfg)
    eot = tok.token_to_id(EOT)
    torch.manual_seed(cfg["seed"])
    model = _model(cfg, tok.get_vocab_size())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.98), weight_decay=0.05)
    per_epoch = int(len(_epoch_windows(tok, groups, 0, cfg, eot)) // cfg["batch"] * 0.98)
    cache: dict[int, np.ndarray] = {}

    def step_fn(step: int) -> dict[str, float]:
        e, j = divmod(step, per_epoch)  # the data position follows from the step alone: resuming is exact
        if e not in cache:
            cache.clear()
            cache[e] = _epoch_windows(tok, groups, e, cfg, eot)
        j %= len(cache[e]) // cfg["batch"]
        x = torch.from_numpy(cache[e][j * cfg["batch"]:(j + 1) * cfg["batch"]])
        loss = model(input_ids=x[:, :-1], labels=x[:, :-1].clone()).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss": loss.item(), "epoch": e}

    def validate() -> dict[str, float]:
        vl, bpc = _evaluate(model, val, tok_per_char)
        return {"val_loss": round(vl, 4), "val_bpc": round(bpc, 4)}

    loop = TrainLoop(run, model, {"opt": opt}, step_fn, cfg["steps"], validate_fn=validate,
                     lr_at=lambda s: _lr(s, cfg), max_minutes=args.max_minutes, val_every=250, ckpt_every=0,
                     ckpt_minutes=args.ckpt_minutes, log_every=20, desc="caption-lm")
    loop.load()
    model.train()
    res = loop.run()
    loop.close()
    print(f"stopped at step {res.step}", flush=True)


def _run_config(args: argparse.Namespace, cfg_path: Path) -> dict:
    """The run's settings, fixed at its first call; ``--continue-steps`` appends a new lr cycle."""
    if not cfg_path.exists():
        cfg = {k: getattr(args, k) for k in DEFAULTS}
        cfg_path.write_text(json.dumps(cfg, indent=1))
        return cfg
    cfg = json.loads(cfg_path.read_text())
    if args.continue_steps:  # a new warm-up + cosine cycle after the planned steps, recorded in the config
        restart = cfg["steps"]
        cfg["steps"] = restart + args.continue_steps
        cfg.setdefault("restarts", []).append([restart, args.continue_lr, cfg["steps"]])
        cfg_path.write_text(json.dumps(cfg, indent=1))
    return cfg


def export(args: argparse.Namespace) -> None:
    """Checkpoint -> package folder: fp16 model.safetensors, config.json, tokenizer.json."""
    import shutil

    import torch  # lazy: the CLI declares this command without loading torch
    from safetensors.torch import save_file

    run = Path(args.run_dir)
    cfg = json.loads((run / "train_config.json").read_text())
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(run / "tokenizer.json"))
    model = _model(cfg, tok.get_vocab_size())
    state = torch.load(run / "ckpt.pt", weights_only=True)
    model.load_state_dict(state["model"])
    model.config.resid_pdrop = model.config.embd_pdrop = model.config.attn_pdrop = 0.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(out / "config.json"))
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
          if k != "lm_head.weight"}  # tied to transformer.wte.weight
    save_file(sd, str(out / "model.safetensors"), metadata={"step": str(state["step"])})
    shutil.copy(run / "tokenizer.json", out / "tokenizer.json")
    shutil.copy(run / "train_config.json", out / "train_config.json")  # the lr cycles that really ran
    if (run / "train.log").exists():
        shutil.copy(run / "train.log", out / "train_log.jsonl")
    print(f"exported step {state['step']} to {out}")


def build_ngram(args: argparse.Namespace) -> None:
    """Token n-gram of the same training captions (held-out images excluded), then tune its weight.

    Writes ``--out/ngram.safetensors`` and prints the ideal code length of the held-out *training*
    captions for a grid of mixture weights with the LM in ``--out``: the weight in ``lm-mix`` is
    chosen from this table, never from evaluation text.
    """
    from tokenizers import Tokenizer

    from ..text.lm import fixed_threads, lm_probs, load_causal_lm
    from ..text.token_ngram import TokenNgram

    run = Path(args.run_dir)
    cfg = json.loads((run / "train_config.json").read_text())
    data_dir = Path(args.data_dir) if args.data_dir else shared_data_dir()
    if data_dir is None:
        sys.exit("shared data not found: set SEMCODEC_DATA or pass --data-dir")
    groups, val_groups = _split(load_training_captions(data_dir), cfg["val_images"], cfg["seed"])
    tok = Tokenizer.from_file(str(run / "tokenizer.json"))
    eot = tok.token_to_id(EOT)
    train_caps = [c for caps in groups.values() for c in caps]
    seqs = [e.ids for e in tok.encode_batch(train_caps, add_special_tokens=False)]
    ng = TokenNgram.fit(seqs, tok.get_vocab_size(), args.ngram_order, eot, args.ngram_min_count)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ng.save(out / "ngram.safetensors")
    print(f"token {args.ngram_order}-gram of {len(seqs)} training captions -> {out / 'ngram.safetensors'} "
          f"({(out / 'ngram.safetensors').stat().st_size / 1e6:.1f} MB, sha256 {ng.sha256()})")
    lm = load_causal_lm(out)
    held = [c for caps in val_groups.values() for c in caps]
    rows = []  # (p_lm, p_ngram) of every coded token, end-of-text included
    st = lm.stepper()
    with fixed_threads(1):
        for text in held:
            ids = lm.encode_ids(text) + [lm.eos_id]
            st.reset()
            logits, hist = st.step(lm.bos_id), ng.start()
            for t in ids:
                rows.append((lm_probs(logits)[t], ng.probs(hist)[t]))
                hist.append(t)
                if t != lm.eos_id:
                    logits = st.step(t)
    raw = 8 * sum(len(t.encode()) for t in held)
    p_lm, p_ng = np.array(rows).T
    print(f"held-out training captions: {len(held)} texts, {raw} raw bits; ideal saving by n-gram weight:")
    for a in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6):
        bits = -np.log2((1 - a) * p_lm + a * p_ng).sum()
        print(f"  weight {a:.1f}: {bits:9.0f} bits, saving {100 * (1 - bits / raw):.2f}%")


def run(args: argparse.Namespace) -> int:
    {"train": train, "export": export, "ngram": build_ngram}[args.action](args)
    return 0


def main(argv: list[str] | None = None) -> int:
    from .args import module_main

    return module_main("semcodec.train.caption_lm", __doc__, caption_lm_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
