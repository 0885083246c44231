"""Test stand-in for the parts of the Pulumi Python SDK that pulumi_provider
imports (the SDK cannot be installed here).  Names and fields follow the
documented `pulumi` / `pulumi.dynamic` API; resources only record what they
were given."""
from typing import Any, Generic, Optional, TypeVar, Union

T = TypeVar("T")


class Output(Generic[T]):
    def __init__(self, value: Any, secret: bool = False):
        self.value, self.is_secret = value, secret

    @staticmethod
    def secret(value: Any) -> "Output":
        return Output(value.value if isinstance(value, Output) else value, True)


Input = Union[T, Output[T]]


class ResourceOptions:
    def __init__(self, additional_secret_outputs: Optional[list] = None, depends_on: Optional[list] = None, **kw: Any):
        self.additional_secret_outputs = additional_secret_outputs or []
        self.depends_on = depends_on or []
        self.extra = kw

    @staticmethod
    def merge(a: Optional["ResourceOptions"], b: Optional["ResourceOptions"]) -> "ResourceOptions":
        a = a or ResourceOptions()
        b = b or ResourceOptions()
        return ResourceOptions(additional_secret_outputs=a.additional_secret_outputs + b.additional_secret_outputs,
                               depends_on=a.depends_on + b.depends_on, **{**a.extra, **b.extra})
