"""The reproduction harness: experiment manifests (`experiments/*.yaml`), `reproduce`, `table`, `sweep`."""

from vmp_lightning.harness.manifest import Manifest, Run, load_manifest

__all__ = ["Manifest", "Run", "load_manifest"]
