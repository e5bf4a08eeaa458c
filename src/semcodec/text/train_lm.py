"""Train semcodec's caption LM: byte-level BPE tokenizer + small GPT-2, on training captions only.

    python -m semcodec.text.train_lm train --run-dir /work/runs/caption_lm      # resumable
    python -m semcodec.text.train_lm export --run-dir /work/runs/caption_lm     # -> weights/caption_lm/

Data flow::

    Flickr8k + COCO train2017 subset --corpus.build_documents(epoch)--> docs (captions + paragraphs)
        --byte-level BPE--> token ids + <|endoftext|> --pack--> [seq+1] windows --> GPT-2 (next token CE)

The tokenizer is byte-level BPE, so every Unicode string has an exact token sequence (unknown
characters fall back to byte tokens); the coders rely on that. Training runs on one CPU thread,
checkpoints every few minutes to ``run_dir/ckpt.pt`` (model + optimiser + step) and resumes from it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

from ..paths import PACKAGE_WEIGHTS, shared_data_dir
from .corpus import build_documents, load_training_captions

EOT = "<|endoftext|>"
DEFAULTS = dict(vocab=4096, d=192, layers=4, heads=3, seq=512, batch=6, lr=3e-3, steps=700, warmup=50,
                dropout=0.1, seed=1234, coco_repeat=2, paragraph_p=0.5, val_images=150)


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
    if step < cfg["warmup"]:
        return cfg["lr"] * (step + 1) / cfg["warmup"]
    t = min(1.0, (step - cfg["warmup"]) / max(1, cfg["steps"] - cfg["warmup"]))
    return cfg["lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


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


def train(args: argparse.Namespace) -> None:
    import torch  # lazy: the CLI declares this command without loading torch
    from tokenizers import Tokenizer
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    cfg_path = run / "train_config.json"
    if cfg_path.exists():
        cfg = json.loads(cfg_path.read_text())
    else:
        cfg = {k: getattr(args, k) for k in DEFAULTS}
        cfg_path.write_text(json.dumps(cfg, indent=1))
    data_dir = Path(args.data_dir) if args.data_dir else shared_data_dir()
    if data_dir is None:
        sys.exit("shared data not found: set SEMCODEC_DATA or pass --data-dir")
    groups, val_groups = _split(load_training_captions(data_dir), cfg["val_images"], cfg["seed"])
    tok_path = run / "tokenizer.json"
    if not tok_path.exists():
        train_tokenizer(build_documents(groups, 0, cfg["seed"], cfg["coco_repeat"], 1.0), cfg["vocab"], tok_path)
    tok = Tokenizer.from_file(str(tok_path))
    eot = tok.token_to_id(EOT)
    val_docs = build_documents(val_groups, 0, cfg["seed"] + 1, 1)
    val = _windows(tok, val_docs, cfg["seq"], eot)
    # bits/char counts the end-of-text token each document pays for as part of that document
    tok_per_char = (sum(len(e.ids) + 1 for e in tok.encode_batch(val_docs, add_special_tokens=False))
         / sum(len(d) for d in val_docs))

    torch.manual_seed(cfg["seed"])
    model = _model(cfg, tok.get_vocab_size())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.98), weight_decay=0.05)
    step = 0
    ck = run / "ckpt.pt"
    if ck.exists():
        state = torch.load(ck, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        print(f"resumed from step {step}", flush=True)
    log = (run / "train.log").open("a")
    epoch, cached = -1, None
    per_epoch = int(len(_epoch_windows(tok, groups, 0, cfg, eot)) // cfg["batch"] * 0.98)
    t0, last_ck = time.time(), time.time()
    bar = tqdm(total=cfg["steps"], initial=step, desc="caption-lm", mininterval=10, file=sys.stdout)
    model.train()
    while step < cfg["steps"] and (time.time() - t0) < args.max_minutes * 60:
        # the data position follows from the step alone, so resuming is exact
        e, j = divmod(step, per_epoch)
        if e != epoch:
            cached = _epoch_windows(tok, groups, e, cfg, eot)
            epoch = e
        j %= len(cached) // cfg["batch"]
        x = torch.from_numpy(cached[j * cfg["batch"]:(j + 1) * cfg["batch"]])
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        loss = model(input_ids=x[:, :-1], labels=x[:, :-1].clone()).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if step % 20 == 0:
            log.write(json.dumps({"step": step, "epoch": epoch, "loss": round(loss.item(), 4),
                                  "lr": _lr(step, cfg), "t": round(time.time() - t0, 1)}) + "\n")
            log.flush()
        if step % 250 == 0 or step == cfg["steps"]:
            vl, bpc = _evaluate(model, val, tok_per_char)
            log.write(json.dumps({"step": step, "val_loss": round(vl, 4), "val_bpc": round(bpc, 4)}) + "\n")
            log.flush()
        if time.time() - last_ck > args.ckpt_minutes * 60 or step == cfg["steps"]:
            _save(ck, model, opt, step)
            last_ck = time.time()
    _save(ck, model, opt, step)
    bar.close()
    print(f"stopped at step {step}", flush=True)


def _save(path: Path, model, opt, step: int) -> None:
    import torch  # lazy: the CLI declares this command without loading torch
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
    tmp.replace(path)


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
    print(f"exported step {state['step']} to {out}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["train", "export"], nargs="?", default="train")
    p.add_argument("--run-dir", default="/work/runs/caption_lm")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(PACKAGE_WEIGHTS / "caption_lm"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-minutes", type=float, default=90.0, help="wall-time bound for this invocation")
    p.add_argument("--ckpt-minutes", type=float, default=4.0)
    for k, v in DEFAULTS.items():
        p.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)


def run(args: argparse.Namespace) -> int:
    (train if args.action == "train" else export)(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m semcodec.text.train_lm", description=__doc__.split("\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
