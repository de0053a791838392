"""The `appliance pii` contract: a line out per line in, flushed, offsets into Python strings."""

import json
import os
import queue
import subprocess
import threading

from tests.conftest import APPLIANCE, assert_one_line_error, run_cli


class Streaming:
    """A running command we talk to a line at a time; each answer must arrive before the next line is sent."""

    def __init__(self, *args, env_extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        env.update(env_extra or {})
        self.process = subprocess.Popen(APPLIANCE + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def ask(self, line: str, timeout: float = 120) -> str:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.lines.get(timeout=timeout).rstrip("\n")

    def close(self) -> int:
        self.process.stdin.close()
        return self.process.wait(timeout=60)


def test_analyze_streams_json_lines_with_str_offsets():
    session = Streaming("pii", "analyze")
    text = "😀客户张伟来电，手机１３８１２３４５６７８"
    first = json.loads(session.ask(text))
    entities = {e["type"]: e for e in first["entities"]}
    assert text[entities["CN_PERSON"]["start"]:entities["CN_PERSON"]["end"]] == "张伟"
    assert text[entities["CN_MOBILE"]["start"]:entities["CN_MOBILE"]["end"]] == "１３８１２３４５６７８"
    assert set(entities["CN_MOBILE"]) == {"type", "start", "end", "score"}
    assert json.loads(session.ask("nothing personal here")) == {"entities": []}
    assert json.loads(session.ask("")) == {"entities": []}
    english = json.loads(session.ask("Customer Wei Zhang, email wei.zhang@example.com"))
    assert [e["type"] for e in english["entities"]] == ["EN_PERSON", "EMAIL"]
    assert session.close() == 0


def test_mask_streams_and_token_needs_a_home(tmp_path, key_file):
    session = Streaming("pii", "mask", "--operator", "display")
    assert session.ask("客户张伟来电，手机13812345678") == "客户张*来电，手机138****5678"
    assert session.ask("no pii") == "no pii"
    assert session.close() == 0
    assert_one_line_error(run_cli("pii", "mask", "--operator", "token", stdin="x\n"), "no home given")
    home = tmp_path / "home"
    run_cli("init", "--home", home, "--key-file", key_file, check=True)
    session = Streaming("pii", "mask", "--operator", "token", "--home", str(home), "--key-file", str(key_file))
    first = session.ask("手机13812345678")
    assert first.startswith("手机<CN_MOBILE:") and session.ask("手机 138-1234-5678") == first.replace("手机", "手机 ")
    assert session.close() == 0


def test_eval_prints_per_entity_scores(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text(json.dumps({"text": "手机13812345678", "spans": [{"type": "CN_MOBILE", "start": 2, "end": 13}]},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    out = run_cli("pii", "eval", path, check=True).stdout.splitlines()
    assert out[0].split() == ["entity", "support", "precision", "recall", "F2"]
    assert out[1].split() == ["CN_MOBILE", "1", "1.000", "1.000", "1.000"]
    path.write_text('{"text": "abc", "spans": [{"type": "X", "start": 2, "end": 9}]}\n', encoding="utf-8")
    assert_one_line_error(run_cli("pii", "eval", path), "tiny.jsonl line 1")
