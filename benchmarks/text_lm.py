"""Language models: word level on WikiText-2, character level on Tiny Shakespeare.

    python -m benchmarks.text_lm [--threads N] [--only word char] [--word-epochs 3] ...

Word level: an AWD-LSTM trained on ``wiki.valid.tokens`` (the training split is not in
../shared/data) and evaluated on ``wiki.test.tokens``: perplexity per token of our
tokenizer (spaCy rules plus fastai's markers, with WikiText's ``<unk>`` mapped to ours, so
the figure is not comparable with published WikiText-2 perplexities), training and
inference tokens/s, peak memory.

Character level: Tiny Shakespeare split 90/10 (first 90% of the characters for training);
the validation loss in nats per character. Target (issue 5): <= 1.60 within 10 minutes on
2 cores.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from benchmarks._common import data_dir, md_table, peak_rss_mb, save
from text import LanguageModel


def wikitext(folder, name: str) -> list[str]:
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    return [ln.replace("<unk>", "xxunk") for ln in lines if ln.strip()]


def evaluate(lm: LanguageModel, texts: list[str]) -> tuple[float, float, int]:
    """(loss per token, inference tokens/s, tokens)."""
    docs = lm._encode(texts)  # tokenized outside the timing: inference alone is timed
    stream = lm._stream(docs, lm.batch_size)
    count = sum(int(y.numel()) for _, y in stream)
    start = time.perf_counter()
    loss = lm._make_learner().validate(stream)  # what score_tokens runs
    return loss, count / (time.perf_counter() - start), count


def word_level(args, data) -> dict:
    train = wikitext(data / "wikitext-2", "wiki.valid.tokens")
    test = wikitext(data / "wikitext-2", "wiki.test.tokens")
    lm = LanguageModel(
        emb_size=args.word_emb,
        hidden_size=args.word_hidden,
        n_layers=args.word_layers,
        bptt=70,
        min_freq=3,
        max_vocab=args.word_vocab,
        drop_mult=args.word_drop_mult,
        epochs=args.word_epochs,
        lr=args.word_lr,
        batch_size=32,
        random_state=0,
        verbose=args.verbose,
    )
    start = time.perf_counter()
    lm.fit(train)
    fit_s = time.perf_counter() - start
    train_time = float(lm.history_["time"].sum())
    loss, infer_tps, n_test = evaluate(lm, test)
    row = {
        "model": (
            f"word AWD-LSTM {args.word_emb}/{args.word_hidden}/{args.word_layers}, "
            f"vocab {len(lm.vocab_)}"
        ),
        "data": "WikiText-2 valid -> test",
        "epochs": args.word_epochs,
        "fit_s": fit_s,
        "train_tokens": lm.n_train_tokens_,
        "train_tokens_per_s": lm.n_train_tokens_ * args.word_epochs / train_time,
        "test_tokens": n_test,
        "infer_tokens_per_s": infer_tps,
        "test_loss": loss,
        "test_perplexity": float(np.exp(loss)),
        "sample": lm.generate("The", n_words=20, temperature=0.8, random_state=0),
    }
    print(json.dumps(row))
    return row


def char_level(args, data) -> dict:
    raw = (data / "tiny-shakespeare" / "input.txt").read_text(encoding="utf-8")
    cut = int(len(raw) * 0.9)
    train, valid = raw[:cut], raw[cut:]
    lm = LanguageModel(
        level="char",
        emb_size=args.char_emb,
        hidden_size=args.char_hidden,
        n_layers=args.char_layers,
        bptt=args.char_bptt,
        min_freq=1,
        drop_mult=args.char_drop_mult,
        epochs=args.char_epochs,
        lr=args.char_lr,
        batch_size=args.char_batch_size,
        random_state=0,
        verbose=args.verbose,
    )
    start = time.perf_counter()
    lm.fit([train], eval_set=[valid])
    fit_s = time.perf_counter() - start
    train_time = float(lm.history_["time"].sum())
    loss, infer_tps, n_valid = evaluate(lm, [valid])
    row = {
        "model": (
            f"char AWD-LSTM {args.char_emb}/{args.char_hidden}/{args.char_layers}, "
            f"vocab {len(lm.vocab_)}"
        ),
        "data": "Tiny Shakespeare 90/10",
        "epochs": args.char_epochs,
        "fit_s": fit_s,
        "train_tokens": lm.n_train_tokens_,
        "train_tokens_per_s": lm.n_train_tokens_ * args.char_epochs / train_time,
        "test_tokens": n_valid,
        "infer_tokens_per_s": infer_tps,
        "test_loss": loss,
        "valid_loss_by_epoch": [round(v, 4) for v in lm.history_["valid_loss"]],
        "sample": lm.generate("ROMEO:", n_words=200, temperature=0.8, random_state=0),
    }
    print(json.dumps(row))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--only", nargs="+", default=["word", "char"])
    p.add_argument("--verbose", type=int, default=2)
    p.add_argument("--word-emb", type=int, default=200)
    p.add_argument("--word-hidden", type=int, default=400)
    p.add_argument("--word-layers", type=int, default=2)
    p.add_argument("--word-vocab", type=int, default=12000)
    p.add_argument("--word-drop-mult", type=float, default=0.3)
    p.add_argument("--word-epochs", type=int, default=3)
    p.add_argument("--word-lr", type=float, default=1e-2)
    p.add_argument("--char-emb", type=int, default=128)
    p.add_argument("--char-hidden", type=int, default=256)
    p.add_argument("--char-layers", type=int, default=2)
    p.add_argument("--char-bptt", type=int, default=80)
    p.add_argument("--char-batch-size", type=int, default=32)
    p.add_argument("--char-drop-mult", type=float, default=0.1)
    p.add_argument("--char-epochs", type=int, default=5)
    p.add_argument("--char-lr", type=float, default=1e-2)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = data_dir()
    if data is None:
        raise SystemExit("data not found: set DEEPFIT_DATA or provide ../shared/data")
    rows = []
    if "word" in args.only:
        rows.append(word_level(args, data))
    if "char" in args.only:
        rows.append(char_level(args, data))
    payload = {"rows": rows, "args": vars(args), "peak_rss_mb": peak_rss_mb()}
    table = md_table(
        rows,
        [
            "model",
            "data",
            "epochs",
            "fit_s",
            "train_tokens_per_s",
            "infer_tokens_per_s",
            "test_loss",
            "test_perplexity",
        ],
    )
    table += f"\n\npeak memory {peak_rss_mb():.0f} MiB; torch threads {torch.get_num_threads()}"
    print(table)
    save("text_lm", payload, table)


if __name__ == "__main__":
    main()
