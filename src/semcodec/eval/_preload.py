"""Imported once by the forkserver that starts eval workers: every worker then forks with the profile and
metric registries (and their heavy imports) already loaded instead of importing them again."""

from ..metrics import metric_classes
from ..profiles import profile_classes
from . import unit  # noqa: F401

profile_classes()
metric_classes()
