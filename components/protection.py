"""Production protects its data-bearing resources, so no `pulumi up` or `destroy` can delete them.

One stack transform sets `protect` on every resource of a data-bearing type (components/data_bearing.py)
when the stack's environment is production; staging and preview stay destroyable.
"""

from __future__ import annotations

import pulumi

from components.config_types import Environment
from components.data_bearing import data_bearing_types

PRODUCTION: Environment = "production"


def protect_data_in_production(environment: Environment) -> frozenset[str]:
    """Register the protecting stack transform when `environment` is production.

    Call once, right after the stack config is read and before any resource is declared (a transform
    applies to resources registered after it). Returns the protected types (empty outside production).
    """
    if environment != PRODUCTION:
        return frozenset()
    protected = data_bearing_types()

    def protect(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ not in protected:
            return None
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True))
        return pulumi.ResourceTransformResult(props=args.props, opts=opts)

    pulumi.runtime.register_resource_transform(protect)
    return protected
