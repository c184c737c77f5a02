"""Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policy`: builds the pack, nothing else.

Constructing `PolicyPack` starts the analyzer's gRPC server and blocks, so the policies live in
`launchready_policies` where tests and the offline runner import them without a server.
"""

import sys
from pathlib import Path

# The pack reads the program's data (components/data/) and setting types through the components package.
_PACK = Path(__file__).resolve().parent
sys.path[:0] = [str(_PACK), str(_PACK.parent)]

from launchready_policies import PACK_NAME, POLICIES  # noqa: E402
from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

PolicyPack(name=PACK_NAME, policies=list(POLICIES), enforcement_level=EnforcementLevel.MANDATORY)
