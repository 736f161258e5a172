"""A self-contained HTML report of a run: the table, and a plot of observed error over
tolerance for every case and quantity (log scale; the line at 1 is the bound)."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from .files import atomic_write_text
from .runner import CaseResult


def _ratio_plot(results: Sequence[CaseResult]) -> str:
    """The plot as a base64 PNG: one point per (case, quantity, dtype), its worst pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worst: dict[tuple[str, str, str], tuple[float, bool]] = {}
    for res in results:
        for r in res.rows:
            key = (r.case, r.quantity, r.dtype)
            ratio = r.comparison.ratio
            if key not in worst or ratio > worst[key][0]:
                worst[key] = (ratio, res.case.expect == "differ")
    labels = sorted(worst)
    floor = 1e-6  # bit-identical results (ratio 0) are drawn at the bottom of the axis
    ys = [max(worst[k][0], floor) if math.isfinite(worst[k][0]) else 1e6 for k in labels]
    colors = ["tab:purple" if worst[k][1] else ("tab:green" if worst[k][0] <= 1 else "tab:red") for k in labels]
    fig, ax = plt.subplots(figsize=(max(8, 0.12 * len(labels)), 5), dpi=100)
    ax.scatter(range(len(labels)), ys, c=colors, s=12)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log")
    ax.set_ylabel("observed error / tolerance")
    ax.set_xlabel("case · quantity · dtype (green: within the bound; red: outside; purple: negative control)")
    ax.set_xticks([])
    ax.set_title("Observed error over tolerance (worst pair per quantity)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _cell(x: float) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf"
        return f"{x:.3g}"
    return html.escape(str(x))


def write_html(results: Sequence[CaseResult], path: str | Path, versions: dict, settings: dict) -> None:
    rows = []
    for res in results:
        if res.error:
            rows.append(f'<tr class="fail"><td>{html.escape(res.case.name)}</td><td>{res.ctx.dtype}</td>'
                        f'<td colspan="9"><pre>{html.escape(res.error)}</pre></td></tr>')
        for r in res.rows:
            c = r.comparison
            cls = "pass" if r.passed else "fail"
            verdict = ("detected" if r.passed else "NOT DETECTED") if r.expect == "differ" else ("pass" if r.passed else "FAIL")
            rows.append("<tr class='{}'>{}</tr>".format(cls, "".join(f"<td>{_cell(v)}</td>" for v in (
                r.case, r.dtype, r.device, r.quantity, r.pair, c.max_abs_err, c.max_rel_err, c.max_ulp, c.tolerance,
                c.headroom, verdict))))
    failed = sum(not r.passed for r in results)
    meta = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in {**versions, **settings}.items())
    doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>equivalence report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
td:nth-child(-n+5) {{ text-align: left; }}
tr.fail {{ background: #fdd; }}
</style></head><body>
<h1>equivalence report</h1>
<p>{len(results) - failed} passed, {failed} failed; written {datetime.now(timezone.utc).isoformat(timespec="seconds")}</p>
<ul>{meta}</ul>
<img alt="observed error over tolerance" src="data:image/png;base64,{_ratio_plot(results)}">
<table><thead><tr><th>case</th><th>dtype</th><th>device</th><th>quantity</th><th>pair</th><th>max abs err</th>
<th>max rel err</th><th>max ulp</th><th>tolerance</th><th>headroom</th><th>result</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, doc)  # a report stopped midway leaves the previous one as it was
