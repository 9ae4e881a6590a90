"""``routeyard replay --live``: the live AIQ of a table of explored answers, as the gateway computes it.

The table is what ``routeyard export --explored`` writes; each router's numbers (every backend's
estimated quality and $ with intervals, the policy's point, AIQ, the Zero router's AIQ, regret) come
from ``routeyard.evaluation.live_aiq``, the code the gateway's ``/v1/stats`` uses, so they agree. They
are printed and written to ``live.json`` in ``--out``.
"""

from __future__ import annotations

import json
from pathlib import Path

from routeyard.evaluation.live_aiq import live_summary, summary_as_dict, tallies_of_rows
from routeyard.predictor.long_format import SUFFIXES
from routeyard.predictor.table_cells import require_columns
from routeyard.predictor.table_files import read_frame

COLUMNS = ("sample_id", "dataset", "model", "quality", "cost", "chosen", "propensity", "candidates")


def run_live(data: Path, out: Path) -> int:
    """Write ``out/live.json`` and print a line per router; raises ``ValueError`` (an
    ``OutcomeTableError``) for a file that is not a table of explored answers."""
    frame = read_frame(data, SUFFIXES)
    require_columns(frame, COLUMNS, str(data))
    try:
        tallies = tallies_of_rows({str(k): v for k, v in row.items()} for row in frame.to_dict("records"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{data}: not a table of explored answers ({type(exc).__name__}: {exc})") from None
    routers = {router: summary_as_dict(live_summary(tally)) for router, tally in sorted(tallies.items())}
    out.mkdir(parents=True, exist_ok=True)
    (out / "live.json").write_text(json.dumps({"source": str(data), "routers": routers}, indent=2) + "\n")
    for router, numbers in routers.items():
        policy = numbers["policy"] or {}
        requests = policy.get("quality", {}).get("n", 0)
        print(
            f"{router}: {requests} explored requests; AIQ {_number(numbers['aiq'])} "
            f"(always one backend: {_number(numbers['zero_aiq'])}), regret {_number(numbers['regret'])}"
        )
    print(f"wrote {out / 'live.json'}")
    return 0


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
