"""Labelled text in the formats public NER corpora use, read into one shape: {text, spans: [{type, start, end}]}
with `end` exclusive and offsets in code points.

Our own JSON Lines names our entity types. The public corpora name theirs (CLUENER `name`, Weibo `PER.NAM`,
WNUT `person`, presidio-research `PERSON`, ...); they are mapped to coarse kinds (PERSON, ADDRESS, PHONE, ...)
and the engine's types are folded to the same kinds before comparing, so a Chinese mobile found as CN_MOBILE
counts for a corpus's PHONE. Corpus classes with no PII kind (companies, games, dates) are not scored.
"""

import json
from pathlib import Path

from appliance.errors import ApplianceError

FORMATS = ("jsonl", "cluener", "weibo", "conll", "presidio")

# The engine's entity types, folded to the kinds the public corpora label.
KIND_OF = {"CN_PERSON": "PERSON", "EN_PERSON": "PERSON", "CN_ADDRESS": "ADDRESS", "EN_ADDRESS": "ADDRESS",
           "CN_MOBILE": "PHONE", "CN_LANDLINE": "PHONE", "PHONE_NUMBER": "PHONE", "BANK_CARD": "CARD",
           "EMAIL": "EMAIL", "IBAN": "IBAN", "IP_ADDRESS": "IP"}
_CORPUS_KINDS = {
    "cluener": {"name": "PERSON", "address": "ADDRESS"},
    "weibo": {"PER.NAM": "PERSON"},
    "conll": {"person": "PERSON"},
    "presidio": {"PERSON": "PERSON", "ADDRESS": "ADDRESS", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD",
                 "EMAIL_ADDRESS": "EMAIL", "IBAN_CODE": "IBAN", "IP_ADDRESS": "IP"},
}


def _bad(path: Path, where: str, expected: str) -> ApplianceError:
    return ApplianceError(f"{path.name} {where}: expected {expected}")


def detect_format(path: Path) -> str:
    """From the file's first characters: a JSON array is presidio-research's, a line with "label" CLUENER's,
    a line with "spans" ours; tab-separated lines are CoNLL, by character (Weibo) or by token."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        head = handle.read(4096)
    stripped = head.lstrip()
    if stripped.startswith("["):
        return "presidio"
    if stripped.startswith("{"):
        return "cluener" if '"label"' in stripped.split("\n", 1)[0] else "jsonl"
    first = next((line for line in head.splitlines() if "\t" in line), "")
    token = first.split("\t", 1)[0]
    if len(token) == 2 and token[1].isdigit():
        return "weibo"
    if first:
        return "conll"
    raise ApplianceError(f"{path.name}: not a labelled file this command reads ({', '.join(FORMATS)})")


def _json_lines(path: Path, expected: str, read) -> list[dict]:
    """One JSON object per line, each turned into a row by `read`; a line that does not fit is named."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(read(json.loads(line)))
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise _bad(path, f"line {line_no}", expected) from None
    return rows


def _our_row(row: dict) -> dict:
    text, spans = row["text"], row.get("spans", [])
    for span in spans:
        if not (isinstance(span["type"], str) and 0 <= span["start"] < span["end"] <= len(text)):
            raise ValueError
    return {"text": text, "spans": spans}


def _cluener_row(row: dict) -> dict:
    kinds = _CORPUS_KINDS["cluener"]
    text, spans = row["text"], []
    for label, entities in (row.get("label") or {}).items():
        for places in entities.values():
            for start, end in places:  # CLUENER's end is inclusive
                if not 0 <= start <= end < len(text):
                    raise ValueError
                if label in kinds:
                    spans.append({"type": kinds[label], "start": start, "end": end + 1})
    return {"text": text, "spans": spans}


def _bio_rows(path: Path, by_character: bool, kinds: dict[str, str]) -> list[dict]:
    """CoNLL with BIO tags, a blank line between texts. By character (Weibo: `<char><position>\\t<tag>`, the
    characters joined as they are) or by token (WNUT: tokens joined with single spaces)."""
    rows, pieces, tags = [], [], []

    def flush():
        if not pieces:
            return
        text, spans, offset, open_span = "", [], 0, None
        for piece, tag in zip(pieces, tags):
            if text and not by_character:
                text += " "
                offset += 1
            start = offset
            text += piece
            offset += len(piece)
            prefix, _, label = tag.partition("-")
            kind = kinds.get(label)
            if prefix == "I" and open_span is not None and open_span["label"] == label:
                open_span["end"] = offset
                continue
            open_span = None
            if prefix in ("B", "I") and kind:
                open_span = {"type": kind, "start": start, "end": offset, "label": label}
                spans.append(open_span)
        rows.append({"text": text, "spans": [{k: s[k] for k in ("type", "start", "end")} for s in spans]})
        pieces.clear()
        tags.clear()

    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line.strip():
                flush()
                continue
            token, tab, tag = line.rpartition("\t")
            if not tab or not tag or (tag != "O" and tag[:2] not in ("B-", "I-")):
                raise _bad(path, f"line {line_no}", "a token, a tab and a BIO tag")
            if by_character:
                if len(token) < 2 or not token[-1].isdigit():
                    raise _bad(path, f"line {line_no}", "a character followed by its position in its word")
                token = token[:-1]
            pieces.append(token)
            tags.append(tag)
    flush()
    return rows


def _presidio(path: Path) -> list[dict]:
    kinds = _CORPUS_KINDS["presidio"]
    try:
        with open(path, encoding="utf-8") as handle:
            records = json.load(handle)
    except ValueError:
        raise _bad(path, "", "a JSON array of {full_text, spans}") from None
    rows = []
    for number, record in enumerate(records if isinstance(records, list) else [None], 1):
        try:
            text = record["full_text"]
            spans = []
            for span in record["spans"]:
                start, end = span["start_position"], span["end_position"]
                if not 0 <= start < end <= len(text):
                    raise ValueError
                if span["entity_type"] in kinds:
                    spans.append({"type": kinds[span["entity_type"]], "start": start, "end": end})
        except (ValueError, KeyError, TypeError):
            raise _bad(path, f"record {number}", "{full_text, spans: [{entity_type, start_position, end_position}]}") from None
        rows.append({"text": text, "spans": spans})
    return rows


def load(path: Path, fmt: str = "auto") -> tuple[list[dict], bool]:
    """The rows, and whether their types are corpus kinds (so predictions are folded through KIND_OF)."""
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    try:
        if fmt == "jsonl":
            return _json_lines(path, "{text, spans: [{type, start, end}]} with offsets inside the text", _our_row), False
        if fmt == "cluener":
            return _json_lines(path, '{"text", "label": {class: {entity: [[start, end]]}}}', _cluener_row), True
        if fmt == "weibo":
            return _bio_rows(path, True, _CORPUS_KINDS["weibo"]), True
        if fmt == "conll":
            return _bio_rows(path, False, _CORPUS_KINDS["conll"]), True
        if fmt == "presidio":
            return _presidio(path), True
    except UnicodeDecodeError:
        raise ApplianceError(f"{path.name}: not UTF-8 text") from None
    raise ApplianceError(f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")


def scored_kinds(path: Path, fmt: str = "auto") -> set[str]:
    fmt = detect_format(Path(path)) if fmt == "auto" else fmt
    return set(_CORPUS_KINDS.get(fmt, {}).values())
