"""The EIA stand-in: a local HTTP server speaking EIA API v2 and the bulk site, from real samples.

What it does: `EiaReplayServer` serves `/v2/...` and `/bulk/...` the way EIA does (strings on
`/data` routes, numbers on `/seriesid/`, `api_key` echoed in `request.params`, the 5,000-row cap with
both `warnings` placements, 403/404/429/500 bodies in EIA's shapes), with fault injection in `FaultPlan`
(outages, 429 bursts, cut or hung bodies, reordered ties, HTTP-date Retry-After). Its data is the real
samples in `samples/` plus synthetic series in EIA's shapes (`data`). `python -m tasks.standin` serves
it on a port and prints the URLs to set as EIA_API_URL and EIA_BULK_URL.

What it never does: run in production. Only the demo and the tests import it (an import-linter
contract keeps it so), and it imports nothing of the pipeline above the ground floor.
"""

from tasks.standin.data import ReplayDataset, default_demo_dataset, load_samples
from tasks.standin.server import EiaReplayServer, FaultPlan, ReplayStats

__all__ = ["EiaReplayServer", "FaultPlan", "ReplayDataset", "ReplayStats", "default_demo_dataset", "load_samples"]
