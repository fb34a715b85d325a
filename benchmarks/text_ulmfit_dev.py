"""Choosing ULMFiT's settings without the official validation reviews: 4-fold
cross-validation on the IMDB sample's 800 training reviews.

    python -m benchmarks.text_ulmfit_dev [--threads N] [--folds 0 1 2 3] [--no-base] \\
        --config name '{"crop": null, "lr_ratio": 2.6}' [--config ...]

The 800 training reviews are cut into 4 stratified folds (seed 0); each fold's 200
reviews are scored by a ``TextClassifier`` fitted on the other 600, from the cached
WikiText-2 encoder of ``benchmarks.text_imdb`` (run that first). A config is a JSON
object of ``TextClassifier`` parameters laid over this benchmark's base, which is
the setting ``text_imdb`` (b) had before adversarial training (sizes 200/400/2,
``drop_mult=0.3``, ``max_len=400``, 2 language-model epochs, 12 final epochs at
``lr=2e-2``, ``lr_ratio=1``, ``crop=0.1``, whole texts at prediction; kept so that
the base repeats its earlier figures). (b)'s present setting is the config
``'{"crop": 100, "epochs": 36, "adversarial": 0.05, "predict_window": 100}'``.
The TF-IDF baseline of ``text_imdb`` (c) on the same folds is the reference. The 200
official validation reviews are not used.

``--vote`` also fits ``text_imdb``'s generative classifier (d) on each fold (its
settings there) and scores every config averaged with it, the soft vote of
``text_imdb`` (g): ``VotingClassifier(voting="soft")`` averages its members'
``predict_proba`` the same way, here with (d) fitted once per fold for all configs.
(g)'s evidence is ``--no-base --vote --config e28 '{"crop": 100, "epochs": 28,
"adversarial": 0.05, "predict_window": 100}'``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold

from benchmarks._common import data_dir, md_table, save
from benchmarks.text_imdb import CACHE, generative, scores
from benchmarks.text_imdb import parser as imdb_parser
from text import TextClassifier
from text.demo import tfidf_baseline

BASE = {
    "emb_size": 200,
    "hidden_size": 400,
    "n_layers": 2,
    "drop_mult": 0.3,
    "max_len": 400,
    "lm_epochs": 2,
    "lm_lr": 5e-3,
    "epochs": 12,
    "lr": 2e-2,
    "lr_ratio": 1.0,
    "crop": 0.1,
    "adversarial": 0.0,
    "predict_window": None,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--config",
        nargs=2,
        action="append",
        metavar=("NAME", "JSON"),
        help="a name and TextClassifier parameters over the base (repeatable)",
    )
    p.add_argument(
        "--no-base",
        action="store_true",
        help="score only the --config settings (and TF-IDF), not the base itself",
    )
    p.add_argument(
        "--vote",
        action="store_true",
        help="also fit text_imdb's generative classifier (d) and score each config "
        "averaged with it (text_imdb's soft vote (g))",
    )
    args = p.parse_args()
    configs = [] if args.no_base else [("base", {})]
    configs += [(n, json.loads(c)) for n, c in args.config or []]
    if not configs:
        raise SystemExit("--no-base needs at least one --config")
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = data_dir()
    if data is None or not CACHE.exists():
        raise SystemExit(
            "needs ../shared/data (or DEEPFIT_DATA) and the cached WikiText-2 encoder: "
            "run python -m benchmarks.text_imdb --only pretrain first"
        )
    df = pd.read_csv(data / "imdb-sample" / "texts.csv")
    train = df[~df.is_valid].reset_index(drop=True)
    folds = list(
        StratifiedKFold(4, shuffle=True, random_state=0).split(train.text, train.label)
    )
    rows = []
    settings = {"TF-IDF (c)": ""}
    settings.update((n, json.dumps(c)) for n, c in configs)
    runs: list[tuple[str, str, dict]] = [("TF-IDF (c)", "tfidf", {})]
    if args.vote:
        gen_args = imdb_parser().parse_args(["--verbose", "0"])
        settings["(d) generative"] = json.dumps(
            {"epochs": gen_args.gen_epochs, "calibration": gen_args.gen_calibration}
        )
        runs.append(("(d) generative", "generative", {}))
        gen_proba: dict[int, tuple] = {}  # fold -> (classes, probabilities, fit s)
    runs += [(n, "ulmfit", c) for n, c in configs]

    def record(name, k, classes, proba, valid, seconds) -> None:
        rows.append(
            {
                "config": name,
                "fold": k,
                **scores(classes, proba, valid),
                "fit_s": seconds,
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    for name, kind, config in runs:
        for k in args.folds:
            fit, valid = train.iloc[folds[k][0]], train.iloc[folds[k][1]]
            start = time.perf_counter()
            if kind == "generative":
                model = generative(gen_args, True, args.seed).fit(fit.text, fit.label)
            elif kind == "tfidf":
                model = tfidf_baseline().fit(fit.text, fit.label)
            else:
                model = TextClassifier(
                    language_model=CACHE,
                    random_state=args.seed,
                    verbose=0,
                    **{**BASE, **config},
                ).fit(fit.text, fit.label)
            seconds = time.perf_counter() - start
            proba = model.predict_proba(valid.text)
            record(name, k, model.classes_, proba, valid, seconds)
            if kind == "generative":
                gen_proba[k] = (model.classes_, proba, seconds)
            elif kind == "ulmfit" and args.vote:
                classes, g_proba, g_seconds = gen_proba[k]
                assert list(classes) == list(model.classes_)
                both = f"{name} + (d)"
                settings[both] = "probabilities averaged"
                mean = (proba + g_proba) / 2
                record(both, k, classes, mean, valid, seconds + g_seconds)
    frame = pd.DataFrame(rows)
    summary = (
        frame.groupby("config", sort=False)
        .agg(
            accuracy=("accuracy", "mean"), auc=("auc", "mean"), fit_s=("fit_s", "mean")
        )
        .reset_index()
    )
    summary["settings"] = [settings[n] for n in summary["config"]]
    per_fold = frame.pivot(index="config", columns="fold", values="accuracy")
    summary["accuracy by fold"] = [
        " / ".join(f"{a:.3f}" for a in per_fold.loc[n]) for n in summary["config"]
    ]
    records = summary.to_dict("records")
    table = md_table(
        records,
        ["config", "settings", "accuracy by fold", "accuracy", "auc", "fit_s"],
    )
    print(table)
    payload = {
        "rows": rows,
        "summary": records,
        "base": BASE,
        "folds": args.folds,
        "seed": args.seed,
        "vote": args.vote,
    }
    probe = any(n != "base" for n, _ in configs) or args.vote
    save("text_ulmfit_dev", payload, table, partial=probe)


if __name__ == "__main__":
    main()
