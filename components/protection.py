"""Data-bearing resources are protected in production, so no `pulumi up` or `destroy` can delete them.

Which types are data-bearing (their deletion or replacement loses data) is defined once, in the provider
contracts (`tools/offline/contracts/rules.yaml`, `data_bearing`). One stack transform sets `protect`
on every resource of those types when the stack's environment is production; staging and preview
environments stay destroyable. Removing the protection is a deliberate, reviewed change
(`pulumi state unprotect <urn>`), never a side effect of a program edit.
"""

from __future__ import annotations

import pulumi

from tools.offline.contracts import data_bearing_types

PRODUCTION = "production"


def protect_data_in_production(environment: str) -> frozenset[str]:
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
