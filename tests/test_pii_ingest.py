"""Ingestion masks free text with the same engine `pii analyze` runs: notes built from public corpus text
(CLUENER news, Weibo posts, WNUT-17 user posts, presidio-research sentences, cut small into tests/data) leave
none of their names readable in the store, its WAL or the quarantine."""

import csv

import pytest

from appliance.home import Home
from appliance.keys import Credentials
from appliance.pii import corpora
from tests.conftest import DATA_DIR, run_cli

CORPORA = DATA_DIR / "pii_corpora"
MAPPING = """source: notes
description: call notes, one column of free text
id_namespace: notes
files:
  - match: notes.csv
    columns:
      note_id: {to: interactions.interaction_id, class: identifier}
      customer_no: {to: interactions.customer_id, class: identifier, required: true}
      at: {to: interactions.occurred_at, class: C1, type: datetime, format: "%Y-%m-%d %H:%M:%S"}
      note: {to: interactions.text, class: free_text}
"""


def _corpus_notes(pii) -> tuple[list[str], list[set[str]], int]:
    """Corpus texts, each with the names in it that the engine finds (asserted to be most of them), and
    bank-style notes around corpus names."""
    texts, found_names, gold, found = [], [], 0, 0
    for path in sorted(CORPORA.iterdir()):
        rows, _ = corpora.load(path)
        for row in rows:
            spans = [s for s in row["spans"] if s["type"] == "PERSON"]
            if not spans:
                continue
            entities = pii.analyze(row["text"])
            hit = [s for s in spans if any(e.start <= s["start"] and s["end"] <= e.end for e in entities)]
            gold += len(spans)
            found += len(hit)
            texts.append(row["text"].replace("\n", " "))
            found_names.append({row["text"][s["start"]:s["end"]] for s in hit})
    assert found / gold >= 0.7, f"the engine covers only {found}/{gold} corpus names"
    names = set().union(*found_names)
    chinese = sorted(n for n in names if "\u4e00" <= n[0] <= "\u9fff" and len(n) >= 2)[:40]
    latin = sorted(n for n in names if n[0].isascii() and n[0].isalpha() and " " in n)[:40]
    notes = [(f"客户{name}来电投诉信用卡年费问题，要求回电。", name) for name in chinese]
    notes += [(f"Customer {name} called about a card fee and asked for a call back.", name) for name in latin]
    kept = [(note, name) for note, name in notes
            if any(note[e.start:e.end] == name for e in pii.analyze(note))]
    assert len(kept) >= 0.9 * len(notes), f"only {len(kept)}/{len(notes)} names found in bank-style notes"
    texts += [note for note, _ in kept]
    found_names += [{name} for _, name in kept]
    return texts, found_names, len(kept)


@pytest.mark.parametrize("workers", [1, 2])
def test_no_corpus_name_is_readable_after_ingestion(tmp_path, key_file, pii, workers):
    texts, found_names, notes = _corpus_notes(pii)
    bank_style = set().union(*found_names[-notes:])
    home = tmp_path / "home"
    env = {"APPLIANCE_KEY_FILE": str(key_file)}
    run_cli("init", "--home", home, env_extra=env, check=True)
    (home / "sources" / "notes.yaml").write_text(MAPPING, encoding="utf-8")
    (home / "config.yaml").write_text(f"ingest.workers: {workers}\ningest.chunk_rows: 200\n", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "notes.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["note_id", "customer_no", "at", "note"])
        for number, text in enumerate(texts):
            writer.writerow([f"N{number}", f"C{number % 97}", "2026-05-01 10:00:00", text])
        # A row with a broken time goes to the quarantine, its note (and the name in it) with it.
        writer.writerow(["N-bad", "C1", "not-a-time", texts[-1]])
    result = run_cli("ingest", "--home", home, "--source", "notes", data, env_extra=env, check=True)
    assert f"{len(texts)} loaded" in result.stdout and "1 quarantined" in result.stdout
    with Home.open(home, Credentials(key_file=key_file)) as opened:
        stored = sorted(row[0] for row in opened.store.query("SELECT text FROM interactions"))
        expected = opened.masker().mask_many(texts)  # the engine `pii mask` runs, with this home's key
        dump = []
        for table in opened.store.tables():
            for row in opened.store.query(f"SELECT * FROM {table}"):
                dump.extend(str(v) for v in row if v is not None and not isinstance(v, bytes))
        raw = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and ".db" in p.name)
    assert stored == sorted(expected)  # ingestion masked exactly as the engine does
    left = [name for masked, names in zip(expected, found_names) for name in names if name in masked]
    assert left == [], f"{len(left)} names the engine found are readable in their own stored note"
    everything = "\n".join(dump) + result.stdout + result.stderr
    readable = sorted(n for n in bank_style if n in everything or n.encode("utf-8") in raw)
    assert readable == [], f"{len(readable)} of {len(bank_style)} corpus names in bank notes readable after ingestion"
    assert sum("<CN_PERSON:" in t or "<EN_PERSON:" in t for t in stored) >= len(texts) * 0.8  # masked with tokens
