"""Stand-in for pulumi.dynamic: the result classes with the documented fields."""
from typing import Any, Optional


class CheckFailure:
    def __init__(self, property: str, reason: str):
        self.property, self.reason = property, reason


class CheckResult:
    def __init__(self, inputs: Any, failures: list):
        self.inputs, self.failures = inputs, failures


class DiffResult:
    def __init__(self, changes: Optional[bool] = None, replaces: Optional[list] = None,
                 stables: Optional[list] = None, delete_before_replace: Optional[bool] = None):
        self.changes, self.replaces, self.stables = changes, replaces, stables
        self.delete_before_replace = delete_before_replace


class CreateResult:
    def __init__(self, id_: str, outs: Optional[dict] = None):
        self.id, self.outs = id_, outs


class ReadResult:
    def __init__(self, id_: Optional[str] = None, outs: Optional[dict] = None):
        self.id, self.outs = id_, outs


class UpdateResult:
    def __init__(self, outs: Optional[dict] = None):
        self.outs = outs


class ResourceProvider:
    pass


class Resource:
    def __init__(self, provider: ResourceProvider, name: str, props: dict, opts: Any = None):
        self.provider, self.name, self.props, self.opts = provider, name, props, opts
