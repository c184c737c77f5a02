"""Stack configurations of apps other than the template's: the founders the tests run as.

Each founder is the template's three stack files with every example value (components/data/
example_values.json) replaced by identities of another app: generated from a seed (multi-label TLDs,
underscored SPF includes of other mail providers, a Firebase web API key), or written by hand in
tests/founder/. The comments and layout of the template stay, as a founder editing the files keeps them.
"""

from __future__ import annotations

import base64
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STACKS = ("staging", "prod", "pr")
HAND_WRITTEN = REPO / "tests" / "founder"
SEEDS = (7, 21, 1701)

# Top-level domains founders register under, several with more than one label (Public Suffix List).
_TLDS = ("io", "app", "co.uk", "com.au", "dev", "de", "co.nz", "org.uk")
# The SPF include each mail provider documents for the domain's own mailboxes.
MAIL_PROVIDERS: dict[str, tuple[str, ...]] = {
    # https://support.google.com/a/answer/10685031
    "google-workspace": ("_spf.google.com",),
    # https://learn.microsoft.com/en-us/microsoft-365/security/office-365-security/email-authentication-spf-configure
    "microsoft-365": ("spf.protection.outlook.com",),
    # https://developers.cloudflare.com/email-routing/setup/email-routing-dns-records/
    "cloudflare-email-routing": ("_spf.mx.cloudflare.net",),
    # https://proton.me/support/anti-spoofing-custom-domain
    "proton": ("_spf.protonmail.ch",),
    # https://www.fastmail.help/hc/en-us/articles/360060591153-Manual-DNS-configuration
    "fastmail": ("spf.messagingengine.com",),
}
_SYLLABLES = ("brio", "lum", "kai", "vera", "nook", "tala", "zen", "orbi", "pax", "rue", "milo", "sola")


@dataclass(frozen=True)
class Founder:
    """One app's stack files: `texts` maps a stack name to the text of its Pulumi.<stack>.yaml."""

    name: str
    texts: dict[str, str]

    def write(self, directory: Path) -> Path:
        """Write the stack files into `directory` (created); returns it."""
        directory.mkdir(parents=True, exist_ok=True)
        for stack, text in self.texts.items():
            (directory / f"Pulumi.{stack}.yaml").write_text(text, encoding="utf-8")
        return directory


def _random_text(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def generated(seed: int) -> Founder:
    """The template's stack files configured for an app whose identities come from `seed`."""
    rng = random.Random(seed)
    name = "".join(rng.sample(_SYLLABLES, 2))
    number = rng.randint(1000, 9999)
    domain = f"{name}.{rng.choice(_TLDS)}"
    provider = rng.choice(sorted(MAIL_PROVIDERS))
    title = name.capitalize()
    web_api_key = "AIza" + _random_text(rng, string.ascii_letters + string.digits + "_-", 35)
    dkim = "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ" + base64.b64encode(rng.randbytes(96)).decode()
    replacements = [
        ("launch-ready-pr-template", f"{name}-pr-{number}"),
        ("launch-ready-staging", f"{name}-staging-{number}"),
        ("launch-ready-prod", f"{name}-prod-{number}"),
        ("https://example", f"https://{name}"),
        ("example.com", domain),
        ("Launch Ready", title),
        ("01A2B3-C4D5E6-F7A8B9", "-".join(_random_text(rng, "0123456789ABCDEF", 6) for _ in range(3))),
        ("0123456789abcdef0123456789abcdef", _random_text(rng, "0123456789abcdef", 32)),
        ("p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDReplaceWithTheKeyResendShowsIDAQAB", dkim),
    ]
    includes = ", ".join(MAIL_PROVIDERS[provider])
    texts = {}
    for stack in STACKS:
        text = (REPO / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
        for old, new in replacements:
            text = text.replace(old, new)
        # An unquoted folder id, as YAML lets a founder write it.
        text = text.replace('launchready:folderId: "123456789012"', f"launchready:folderId: {number}00000001")
        text = re.sub(
            r"launchready:stripePriceId: price_\w+",
            lambda _: "launchready:stripePriceId: price_1" + _random_text(rng, string.ascii_letters, 23),
            text,
        )
        text = text.replace("launchready:spfIncludes: []", f"launchready:spfIncludes: [{includes}]")
        text += f"  launchready:firebaseWebApiKey: {web_api_key}\n"
        texts[stack] = text
    return Founder(f"{name}-seed{seed}", texts)


def hand_written() -> Founder:
    """The configuration in tests/founder/, written by hand as a founder fills in the template."""
    texts = {
        stack: (HAND_WRITTEN / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8") for stack in STACKS
    }
    return Founder("myapp-hand-written", texts)


def founders() -> list[Founder]:
    """Every founder configuration the tests run as: the generated ones, then the hand-written one."""
    return [*(generated(seed) for seed in SEEDS), hand_written()]
