"""Calibration of the backtest's prediction intervals on real tickers: does the conformal 80% band cover 80%?

Runs ``jaxlstm backtest`` (vanilla preset, log-return target, 12 folds of 40 test days, 3 seeds, 100 epochs) on the
Yahoo CSVs of ``../shared/data/`` for horizons 1, 5 and 20 days, reusing a finished run directory (its forecasts are
calibrated again, see ``jaxlstm.runs.load_backtest``). Then pools the bands over the tickers: coverage per method,
level and horizon (every step, the first and the last), and per ticker the interval score and CRPS of each method
against the random walk's. Writes ``benchmarks/results/<machine>/calibration.json`` and ``.png`` and prints the
tables of docs/forecast.md.

    .venv/bin/python benchmarks/calibration.py [--tickers GOOG,AAPL] [--horizons 1,5,20] [--runs runs/calibration]
        [--mc-dropout 50]    # Monte Carlo dropout draws in new runs (written as calibration.json too: rename it)
"""

import argparse
import math
from pathlib import Path

import pandas as pd
from common import ROOT, environment, write_results
from matplotlib.figure import Figure

from jaxlstm.commands import main
from jaxlstm.forecasting.calibration import calibrate
from jaxlstm.runs import load_backtest

SHARED = ROOT.parent / "shared" / "data"
SETTINGS = ["--arch", "vanilla", "--target-transform", "log-return", "--folds", "12", "--test-days", "40"]
SETTINGS += ["--seeds", "3", "--quiet"]
METHODS = ("conformal", "conformal (one model)", "ensemble", "MC dropout", "random walk")
WINDOWS = {"every earlier error": None, "the last 100 errors": 100}
LEVELS = (0.8, 0.95)


def backtest(ticker: str, horizon: int, runs: Path, extra: list[str]) -> Path:
    out = runs / f"{ticker}-h{horizon}"
    if not (out / "config.json").exists():
        argv = ["backtest", "--csv", str(SHARED / f"{ticker}.csv"), *SETTINGS, *extra, "--horizon", str(horizon)]
        assert main([*argv, "--out", str(out), "--overwrite"]) == 0
    return out


def covered(rows: pd.DataFrame) -> tuple[int, int]:
    inside = (rows["lower"] <= rows["actual"]) & (rows["actual"] <= rows["upper"])
    return int(inside.sum()), len(rows)


def summarize(runs: dict[tuple[str, int], Path], window: int | None) -> dict:
    """Coverage counts pooled over the tickers, and each ticker's scores against the random walk's, from the runs'
    forecasts calibrated again with this jaxlstm (load_backtest: no training), the conformal bands on the last
    ``window`` errors of each step (None: all)."""
    coverage, scores = {}, {}
    for (ticker, horizon), out in runs.items():
        calibration = calibrate(load_backtest(out), LEVELS, window)
        intervals = calibration.table()
        for (method, level), rows in intervals.groupby(["method", "level"]):
            for which, part in (
                ("all", rows),
                ("first", rows[rows["step"] == 1]),
                ("last", rows[rows["step"] == horizon]),
            ):
                key = f"{method}|{level}|{horizon}|{which}"
                hits, total = covered(part)
                coverage.setdefault(key, [0, 0])
                coverage[key][0] += hits
                coverage[key][1] += total
        pooled = calibration.summary()["pooled"]
        walk = pooled["random walk"]
        for method in METHODS:
            if method not in pooled:
                continue
            scores[f"{ticker}|{horizon}|{method}"] = {
                "crps_vs_random_walk": pooled[method]["crps"] / walk["crps"],
                **{
                    f"interval_score_{level}_vs_random_walk": values["interval_score"]
                    / walk["levels"][level]["interval_score"]
                    for level, values in pooled[method]["levels"].items()
                },
                "forecasts": pooled[method]["forecasts"],
            }
    return {
        "coverage": {
            key: {"covered": hits, "forecasts": total, "rate": hits / total} for key, (hits, total) in coverage.items()
        },
        "scores": scores,
    }


def tables(summary: dict, horizons: list[int], tickers: list[str]) -> str:
    lines = ["| method | level | " + " | ".join(f"h = {h}: all steps / day 1 / day {h}" for h in horizons) + " |"]
    lines.append("|---|---:|" + "---|" * len(horizons))
    for method in METHODS:
        for level in (0.8, 0.95):
            cells = []
            for h in horizons:
                rates = [summary["coverage"].get(f"{method}|{level}|{h}|{which}") for which in ("all", "first", "last")]
                if rates[0] is None:
                    cells.append("n/a")
                    continue
                cells.append(
                    " / ".join(f"{100 * rate['rate']:.1f}%" for rate in rates) + f" (n = {rates[0]['forecasts']})"
                )
            lines.append(f"| {method} | {100 * level:g}% | " + " | ".join(cells) + " |")
    shown = [m for m in METHODS if m != "random walk" and any(k.endswith(f"|{m}") for k in summary["scores"])]
    lines += ["", "| ticker | horizon | " + " | ".join(f"{m}: IS 80% / IS 95% / CRPS" for m in shown) + " |"]
    lines.append("|---|---:|" + "---|" * len(shown))
    for ticker in tickers:
        for h in horizons:
            cells = []
            for method in shown:
                score = summary["scores"].get(f"{ticker}|{h}|{method}")
                if score is None:
                    cells.append("n/a")
                    continue
                ratios = [score[f"interval_score_{level}_vs_random_walk"] for level in ("80%", "95%")]
                cells.append(f"{ratios[0]:.2f} / {ratios[1]:.2f} / {score['crps_vs_random_walk']:.3f}")
            lines.append(f"| {ticker} | {h} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(by_window: dict[str, dict], horizons: list[int], path: Path) -> None:
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, level in zip(axes, (0.8, 0.95), strict=True):
        for (name, summary), style in zip(by_window.items(), ("-", "--"), strict=True):
            for i, method in enumerate(METHODS):
                rates = [summary["coverage"].get(f"{method}|{level}|{h}|all") for h in horizons]
                if None in rates or (style == "--" and "conformal" not in method):
                    continue
                label = f"{method} ({name})" if "conformal" in method else method
                x = range(len(horizons))
                ax.plot(x, [r["rate"] for r in rates], marker="o", linestyle=style, color=f"C{i}", label=label)
        ax.axhline(level, color="black", linestyle=":", label="nominal")
        ax.axhspan(level - 0.03, min(level + 0.03, 1), color="grey", alpha=0.15, label="within 3 points")
        ax.set(
            xticks=range(len(horizons)), xticklabels=[f"{h} days" for h in horizons], title=f"{100 * level:g}% bands"
        )
        ax.set_xlabel("horizon (coverage pooled over its steps and the tickers)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("empirical coverage")
    axes[0].legend(fontsize=8)
    fig.suptitle("Walk-forward coverage of the prediction bands, GOOG AAPL MSFT AMZN TSLA pooled")
    fig.savefig(path, dpi=110)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", default="GOOG,AAPL,MSFT,AMZN,TSLA")
    parser.add_argument("--horizons", default="1,5,20")
    parser.add_argument("--runs", type=Path, default=Path("runs/calibration"))
    parser.add_argument("--mc-dropout", type=int, help="Monte Carlo dropout draws per model (new runs only)")
    args = parser.parse_args()
    tickers, horizons = args.tickers.split(","), [int(h) for h in args.horizons.split(",")]
    extra = [] if args.mc_dropout is None else ["--mc-dropout", str(args.mc_dropout)]
    runs = {(t, h): backtest(t, h, args.runs, extra) for t in tickers for h in horizons}
    by_window = {name: summarize(runs, window) for name, window in WINDOWS.items()}
    summary = {
        "environment": environment(),
        "settings": [*SETTINGS, *extra],
        "tickers": tickers,
        "calibration": by_window,
    }
    folder = write_results("calibration", summary)
    plot(by_window, horizons, folder / "calibration.png")
    for name, result in by_window.items():
        print(f"\n### conformal bands calibrated on {name}\n")
        print(tables(result, horizons, tickers))
        assert all(math.isfinite(s["crps_vs_random_walk"]) for s in result["scores"].values())


if __name__ == "__main__":
    run()
