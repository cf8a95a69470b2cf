"""The ESR deanery codes this export runs for, kept in this one place.

ESR codes are legacy deanery codes, not TIS local offices: MER and NWN split HEE North West, SEV and PEN
split HEE South West, and KSS posts carry the LDN prefix in TIS (see shared/domain/esr-interface.md §5).
"""

from __future__ import annotations

DEANERIES: tuple[str, ...] = (
    "EOE",
    "EMD",
    "KSS",
    "LDN",
    "MER",
    "NWN",
    "NTH",
    "OXF",
    "PEN",
    "SEV",
    "WES",
    "WMD",
    "YHD",
)


class UnknownDeaneryError(ValueError):
    """A deanery code that is not on the allow-list: it never reaches a query or a file path."""


def require_deanery(code: str) -> str:
    if code not in DEANERIES:
        raise UnknownDeaneryError(f"Unknown deanery code {code!r}: expected one of {', '.join(DEANERIES)}")
    return code
