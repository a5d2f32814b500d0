"""The 11 GICS sectors (S&P/MSCI Global Industry Classification Standard, 2023)."""

GICS_SECTORS = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)


def sector_from_labels(labels) -> str | None:
    """The GICS sector among a list of industry labels (pytickersymbols' ``industries``)."""
    for label in labels or ():
        if label in GICS_SECTORS:
            return label
    return None
