"""Named, vectorised derivations a mapping may apply to a column (`derive:`), from an allowlist.

Each takes the column's parsed values (a Series; missing values are NA) and returns the derived Series.
They generalise: a birth date becomes a birth year, a national number a gender, never the reverse.
"""

import pandas as pd


def year(values: pd.Series) -> pd.Series:
    """Year of an ISO date or datetime."""
    return pd.to_numeric(values.str.slice(0, 4), errors="coerce").astype("Int64")


def _berka_parts(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    digits = values.where(values.str.fullmatch(r"\d{6}", na=False))
    yy = pd.to_numeric(digits.str.slice(0, 2), errors="coerce")
    mm = pd.to_numeric(digits.str.slice(2, 4), errors="coerce")
    return digits, yy, mm


def berka_birth_year(values: pd.Series) -> pd.Series:
    """Berka birth_number YYMMDD (women: month + 50), all in the 1900s."""
    _, yy, _ = _berka_parts(values)
    return (1900 + yy).astype("Int64")


def berka_gender(values: pd.Series) -> pd.Series:
    _, _, mm = _berka_parts(values)
    gender = pd.Series(pd.NA, index=values.index, dtype="object")
    gender[mm > 50] = "F"
    gender[(mm >= 1) & (mm <= 12)] = "M"
    return gender


def cn_id_birth_year(values: pd.Series) -> pd.Series:
    """Birth year from an 18-digit mainland resident ID (digits 7-10)."""
    ok = values.str.fullmatch(r"\d{17}[\dXx]", na=False)
    return pd.to_numeric(values.where(ok).str.slice(6, 10), errors="coerce").astype("Int64")


def cn_id_gender(values: pd.Series) -> pd.Series:
    """Gender from an 18-digit mainland resident ID (digit 17: odd male, even female)."""
    ok = values.str.fullmatch(r"\d{17}[\dXx]", na=False)
    digit = pd.to_numeric(values.where(ok).str.slice(16, 17), errors="coerce")
    gender = pd.Series(pd.NA, index=values.index, dtype="object")
    gender[digit % 2 == 1] = "M"
    gender[digit % 2 == 0] = "F"
    return gender


def cn_region_code(values: pd.Series) -> pd.Series:
    """Province-level administrative code (first two digits of a resident ID, padded to six)."""
    ok = values.str.fullmatch(r"\d{17}[\dXx]", na=False)
    return values.where(ok).str.slice(0, 2) + "0000"


# name -> (function, canonical type it produces)
TRANSFORMS = {
    "year": (year, "integer"),
    "berka_birth_year": (berka_birth_year, "integer"),
    "berka_gender": (berka_gender, "text"),
    "cn_id_birth_year": (cn_id_birth_year, "integer"),
    "cn_id_gender": (cn_id_gender, "text"),
    "cn_region_code": (cn_region_code, "text"),
}
