"""Several recorders sharing one catalogue (README, "Several recorders"):
this recorder's node name, how it takes its turn at catalogue-wide jobs, where it finds the others'
recordings.

``node`` names the recorder that holds a recording's file: every call row carries it, and a node
deletes, moves and recovers only its own files. It defaults to the host's name, so a single recorder
needs no setting; with several recorders each config names its own, once, and never changes it (the
rows it wrote keep the old name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, StrictFloat, model_validator

from recorderd.config.base import Strict
from storage.nodes import NODE_PATTERN, default_node

__all__ = ["ClusterConfig", "NodeName", "default_node"]

NodeName = Annotated[str, Field(pattern=NODE_PATTERN)]


class ClusterConfig(Strict):
    # How often a node that does not lead tries to take the catalogue-wide jobs (policy recomputation,
    # the metadata purge, ledger checkpoints, the ledger check, incidents onto MQTT), and how often
    # the leader checks its lock's connection is still alive. A stopped leader is replaced within it.
    leader_retry_s: StrictFloat = Field(15.0, gt=0, le=3600)
    # Other nodes' data directories as mounted on this one (shared storage, e.g. one NFS export with
    # a subdirectory per node), so that recorderctl and the console here can play their calls.
    # A node not named here: its calls are listed, and playing one says which node holds it.
    data_dirs: dict[NodeName, Path] = {}

    @model_validator(mode="after")
    def _absolute(self) -> ClusterConfig:
        for node, path in self.data_dirs.items():
            if not path.is_absolute():
                raise ValueError(f"data_dirs.{node}: {str(path)!r} is not an absolute path")
        return self
