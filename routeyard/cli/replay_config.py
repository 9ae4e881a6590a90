"""``routeyard replay --config``: the routers of a gateway config, replayed as deployed.

The config is loaded as ``routeyard serve`` loads it (every problem listed at once), without requiring
its key variables to be set. The table is narrowed to the config's backends (its models must be named as
the backends are: ``routeyard collect`` writes them so), every router is replayed by its kind
(``routeyard.gateway.deployed_replay``) with the config's embedder, and the report names the file, its
SHA-256, each router's operating point, the routers not replayed and why, and the backends the table
lacks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routeyard.evaluation.deployed_routers import DeployedConfig, operating_points
from routeyard.evaluation.replay import ReplayReport
from routeyard.gateway.deployed_replay import Deployment, deployed_routers
from routeyard.gateway.settings import load_settings
from routeyard.predictor.embedder_choice import make_embedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import split_by_dataset


@dataclass(frozen=True)
class ReplayedConfig:
    """A config's ``deployment`` on a table, and the file it came from (``path``, ``sha256``)."""

    path: Path
    sha256: str
    deployment: Deployment

    def report(self, report: ReplayReport) -> DeployedConfig:
        """What the replay ``report`` says of the config: its routers' operating points among them."""
        d = self.deployment
        points = operating_points(d.table, d.routers, report.settings)
        return DeployedConfig(
            str(self.path), self.sha256, tuple(points), d.skipped, d.missing_backends, d.unused_models
        )


def replayed_config(
    path: Path, table: OutcomeTable, *, seed: int, datasets: tuple[str, ...] | None, cached: bool
) -> ReplayedConfig:
    """The routers of the config at ``path`` replayed on ``table`` (judges scoring the test rows of
    ``datasets``, default all, split with ``seed``). Raises ``ConfigError`` for a config that cannot
    start a gateway, ``ValueError`` for one whose artifacts do not fit it or the table."""
    settings = load_settings(path, secrets=False)
    embedder = make_embedder(settings.embedder, settings.cache_dir.expanduser(), cached=cached)
    splits = split_by_dataset(table, seed=seed)
    rows = np.sort(np.concatenate([s.test for name, s in splits.items() if name in (datasets or splits)]))
    backends = [b.name for b in settings.backends]
    deployment = deployed_routers(settings.routers, backends, table, embedder, rows)
    return ReplayedConfig(path, hashlib.sha256(path.read_bytes()).hexdigest(), deployment)
