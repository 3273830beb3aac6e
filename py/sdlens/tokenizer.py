"""CLIP's BPE tokenizer (the one Stable Diffusion 1.x uses), in plain Python.

The text encoder never sees letters, only 77 integer ids. This module turns a prompt into those
ids exactly like Hugging Face's ``CLIPTokenizerFast(prompt, padding="max_length", max_length=77,
truncation=True)`` (what diffusers' StableDiffusionPipeline calls), reading the same
``tokenizer.json``. One step per function below:

1. normalize: Unicode NFC, every run of whitespace becomes one space, lowercase;
2. words: split at the spaces (spaces never reach the model) and cut out the special tokens
   ``<|startoftext|>`` / ``<|endoftext|>`` if the prompt spells them;
3. pre-tokenize: CLIP's regex splits a word into letter runs, single digits, runs of other
   symbols, and English contractions ('s, 't, 're, ...);
4. byte-level: a piece's UTF-8 bytes become printable characters, so any text (emoji, CJK)
   is spelled with an alphabet of 256 symbols;
5. BPE: start from single symbols (the last one marked ``</w>``, "end of word") and keep
   merging the adjacent pair that was learned earliest, until no learned pair is left;
6. frame: BOS + tokens + EOS, cut to 77 positions (EOS kept), pad with the pad id.

Standard library only: the same file runs in CPython and in Pyodide.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import SdlensError

# The pre-tokenizer regex of CLIP's tokenizer.json; ``pre_tokenize`` below emulates it.
CLIP_SPLIT_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
# The contractions it tries first, in its order (none is a prefix of another).
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")

# ``\s`` in the Rust tokenizers library is the Unicode White_Space property, which is narrower
# than Python's ``str.isspace`` (that one also counts U+001C..U+001F, for example).
WHITE_SPACE = frozenset(
    chr(c)
    for c in (
        *range(0x09, 0x0E),  # tab, line feed, vertical tab, form feed, carriage return
        0x20,  # space
        0x85,  # next line
        0xA0,  # no-break space
        0x1680,  # ogham space mark
        *range(0x2000, 0x200B),  # en quad ... hair space
        0x2028,  # line separator
        0x2029,  # paragraph separator
        0x202F,  # narrow no-break space
        0x205F,  # medium mathematical space
        0x3000,  # ideographic space
    )
)
_WHITE_SPACE_RUNS = re.compile("[" + "".join(map(re.escape, sorted(WHITE_SPACE))) + "]+")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte -> character table: printable bytes stand for themselves, the others
    (space, control bytes, ...) are shifted to U+0100 and up, so every token is visible text."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


# ---------------------------------------------------------------------------------------------
# 1-2. normalize and split into words


def split_words(text: str) -> list[str]:
    """The prompt's words as typed: NFC-normalized, split at runs of whitespace.

    Composing first (NFC) means "e" + combining acute and the single character "é" give the
    same tokens. Spaces only separate words: no piece of text ever spans one.
    """
    text = unicodedata.normalize("NFC", _without_lone_surrogates(text))
    return [w for w in _WHITE_SPACE_RUNS.split(text) if w]


def _without_lone_surrogates(text: str) -> str:
    """Text from the browser may hold half of an emoji (a lone UTF-16 surrogate); make it U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def lowercase(word: str) -> str:
    """Lowercase like Rust's ``char::to_lowercase``, one character at a time.

    Python's ``str.lower`` also applies the one context rule of Unicode (a capital sigma at
    the end of a word becomes the final form "ς"); the tokenizer does not, so "Σ" always
    becomes "σ" here.
    """
    return word.replace("Σ", "σ").lower()


def split_special(word: str, special: dict[str, int]) -> list[str]:
    """Cut the special tokens (e.g. "<|endoftext|>") out of a normalized word, keeping them as
    separate parts: the prompt may spell them, and then they map straight to their id."""
    parts = []
    while word:
        hits = [(word.find(tok), -len(tok), tok) for tok in special if tok in word]
        if not hits:
            break
        at, _, tok = min(hits)  # leftmost, then longest
        if at:
            parts.append(word[:at])
        parts.append(tok)
        word = word[at + len(tok) :]
    if word:
        parts.append(word)
    return parts


# ---------------------------------------------------------------------------------------------
# 3. pre-tokenize


def char_class(c: str) -> str:
    """'L' letter, 'N' number, ' ' whitespace, or 'P' anything else (punctuation, emoji, marks)."""
    major = unicodedata.category(c)[0]
    if major == "L" or major == "N":
        return major
    return " " if c in WHITE_SPACE else "P"


def pre_tokenize(text: str) -> list[str]:
    """Split ``text`` like CLIP's regex ``'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+``.

    At each position the alternatives are tried in order, like a regex engine: a contraction,
    else a run of letters, else one digit (so "1024" is four pieces), else a run of other
    symbols. Whitespace matches nothing and is dropped.
    """
    pieces = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "'":
            contraction = next((c for c in CONTRACTIONS if text.startswith(c, i)), None)
            if contraction:
                pieces.append(contraction)
                i += len(contraction)
                continue
        kind = char_class(text[i])
        j = i + 1
        if kind == " ":
            i = j
            continue
        if kind != "N":  # letters and symbols come in runs; numbers one at a time
            while j < n and char_class(text[j]) == kind:
                j += 1
        pieces.append(text[i:j])
        i = j
    return pieces


# ---------------------------------------------------------------------------------------------
# 4. byte-level


def to_byte_level(piece: str) -> str:
    """The piece's UTF-8 bytes, one printable character per byte ("é" -> "Ã©")."""
    return "".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8"))


def from_byte_level(text: str) -> str:
    """Back from byte-level characters to readable text; bytes that are not (yet) a whole
    UTF-8 character, e.g. a third of an emoji, are shown as escapes like ``\\xf0``."""
    return bytes(CHAR_TO_BYTE[c] for c in text).decode("utf-8", "backslashreplace")


# ---------------------------------------------------------------------------------------------
# 5. BPE


def bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding: repeatedly merge the adjacent pair with the lowest rank (learned
    earliest in training), every occurrence left to right, until no pair has a rank."""
    while len(symbols) > 1:
        pairs = set(zip(symbols, symbols[1:]))
        best = min(pairs, key=lambda pair: ranks.get(pair, _NO_RANK))
        if best not in ranks:
            break
        first, second = best
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


_NO_RANK = float("inf")


# ---------------------------------------------------------------------------------------------
# 6. the tokenizer and its result


@dataclass(frozen=True)
class Encoding:
    """A prompt as the text encoder receives it, plus what a student wants to see about it."""

    #: ``max_length`` ids: BOS, the prompt's tokens, EOS, then padding.
    ids: list[int]
    #: A display string for every position, e.g. "<|startoftext|>", "photo</w>", "<|endoftext|>".
    tokens: list[str]
    #: Positions that are not padding, BOS and EOS included.
    length: int
    #: Words of the prompt (as typed, NFC) that lost at least one token to truncation, in order.
    dropped_words: list[str]
    max_length: int
    #: The prompt's whitespace-separated words (as typed, NFC).
    words: list[str]
    #: For every position, the index into ``words`` its token came from (None: BOS, EOS, padding).
    word_ids: list[int | None]

    @property
    def truncated(self) -> bool:
        return bool(self.dropped_words)

    def dropped_note(self, label: str = "prompt") -> str:
        """The truncation in one line, however long the prompt: how many words were cut and where
        the cut starts ("" when nothing was). A 500-word prompt gets one line, not 431 words."""
        n = len(self.dropped_words)
        if not n:
            return ""
        start = " ".join(self.dropped_words[:4]) + (" …" if n > 4 else "")
        words = "the last word is" if n == 1 else f"the last {n} words are"
        return f"The {label} is longer than {self.max_length} tokens: {words} dropped (from “{start}”)."

    @property
    def attention_mask(self) -> list[int]:
        return [1] * self.length + [0] * (self.max_length - self.length)


class ClipTokenizer:
    """CLIP's tokenizer, built from a Hugging Face ``tokenizer.json``."""

    def __init__(
        self,
        vocab: dict[str, int],
        merges: list[tuple[str, str]],
        *,
        bos_token: str = "<|startoftext|>",
        eos_token: str = "<|endoftext|>",
        pad_token: str = "<|endoftext|>",
        special_tokens: dict[str, int] | None = None,
        max_length: int = 77,
        end_of_word_suffix: str = "</w>",
    ):
        self.vocab = dict(vocab)
        # Special tokens are matched in the normalized text and are never split by BPE.
        self.special_tokens = dict(special_tokens or {})
        for tok in (bos_token, eos_token, pad_token):
            if tok not in self.special_tokens:
                if tok not in self.vocab:
                    raise SdlensError(f"tokenizer: special token {tok!r} is not in the vocabulary")
                self.special_tokens[tok] = self.vocab[tok]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.special_tokens.items()})
        self.ranks = {tuple(pair): rank for rank, pair in enumerate(merges)}
        self.bos_token, self.eos_token, self.pad_token = bos_token, eos_token, pad_token
        self.bos_id = self.special_tokens[bos_token]
        self.eos_id = self.special_tokens[eos_token]
        self.pad_id = self.special_tokens[pad_token]
        self.max_length = max_length
        self.vocab_size = len(self.id_to_token)
        self.end_of_word_suffix = end_of_word_suffix
        self._word_cache: dict[str, list[int]] = {}
        self._display_cache: dict[int, str] = {}

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> "ClipTokenizer":
        """From a ``tokenizer.json``, or a gzipped ``tokenizer.json.gz`` (how models ship it)."""
        data = Path(path).read_bytes()
        if str(path).endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as e:
                raise SdlensError(f"{Path(path).name} is not a readable gzip file: {e}") from None
        return cls.from_json(data.decode("utf-8"))

    @classmethod
    def from_json(cls, text: str) -> "ClipTokenizer":
        """Build from the text of a ``tokenizer.json``, checking it is the CLIP tokenizer this
        module knows how to imitate (a different pipeline would silently give other ids)."""
        try:
            data = json.loads(text)
            model = data["model"]
            if model.get("type", "BPE") != "BPE":
                raise SdlensError(f"tokenizer.json: expected a BPE model, got {model.get('type')!r}")
            _check_clip_pipeline(data)
            # Newer files store merges as ["a", "b"], older ones as "a b".
            merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
            special = {t["content"]: t["id"] for t in data.get("added_tokens") or ()}
            post = data.get("post_processor") or {}
            bos = post.get("cls", ["<|startoftext|>"])[0]
            eos = post.get("sep", ["<|endoftext|>"])[0]
            padding = data.get("padding") or {}
            truncation = data.get("truncation") or {}
            fixed = padding.get("strategy", {}) if isinstance(padding.get("strategy"), dict) else {}
            max_length = truncation.get("max_length") or fixed.get("Fixed") or 77
            return cls(
                model["vocab"],
                merges,
                bos_token=bos,
                eos_token=eos,
                pad_token=padding.get("pad_token", eos),
                special_tokens=special,
                max_length=max_length,
                end_of_word_suffix=model.get("end_of_word_suffix") or "",
            )
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise SdlensError(f"tokenizer.json is not a readable CLIP tokenizer: {e}") from None

    @classmethod
    def from_vocab_merges(cls, vocab_text: str, merges_text: str, config: dict | None = None) -> "ClipTokenizer":
        """From the files a diffusers or optimum folder keeps in ``tokenizer/``: ``vocab.json``,
        ``merges.txt`` and ``tokenizer_config.json`` (its pad token: SD 1.x pads with
        ``<|endoftext|>``, SD 2.x with ``!``). Read as transformers' CLIPTokenizer reads them."""
        config = config or {}

        def token(key: str, default: str) -> str:
            value = config.get(key, default)
            return value.get("content", default) if isinstance(value, dict) else (value or default)

        try:
            vocab = json.loads(vocab_text)
            lines = merges_text.strip().split("\n")
            if lines and lines[0].startswith("#version"):
                lines = lines[1:]
            # CLIPTokenizer reads at most 49,152 − 256 − 2 merges (what CLIP was trained with).
            merges = [tuple(line.split()) for line in lines[: 49152 - 256 - 2] if line.strip()]
            if any(len(m) != 2 for m in merges):
                raise ValueError("a line of merges.txt is not two symbols")
            if not isinstance(vocab, dict):
                raise ValueError("vocab.json is not an object of token → id")
        except ValueError as e:
            raise SdlensError(f"tokenizer files are not a readable CLIP tokenizer: {e}") from None
        bos, eos = token("bos_token", "<|startoftext|>"), token("eos_token", "<|endoftext|>")
        max_length = config.get("model_max_length", 77)
        return cls(vocab, merges, bos_token=bos, eos_token=eos, pad_token=token("pad_token", eos),
                   special_tokens={t: vocab[t] for t in (bos, eos) if t in vocab},
                   max_length=min(int(max_length), 77) if isinstance(max_length, (int, float)) else 77)

    # -- encoding -----------------------------------------------------------------------------

    def encode(self, prompt: str) -> Encoding:
        """The prompt as ``max_length`` ids, like CLIPTokenizerFast with padding and truncation."""
        words = split_words(prompt)
        content: list[tuple[int, int]] = []  # (token id, word index)
        for w, word in enumerate(words):
            content.extend((token_id, w) for token_id in self.tokenize_word(lowercase(word)))
        room = self.max_length - 2  # BOS and EOS always stay
        kept, cut = content[:room], content[room:]
        ids = [self.bos_id, *(t for t, _ in kept), self.eos_id]
        word_ids: list[int | None] = [None, *(w for _, w in kept), None]
        length = len(ids)
        ids += [self.pad_id] * (self.max_length - length)
        word_ids += [None] * (self.max_length - length)
        dropped = list(dict.fromkeys(w for _, w in cut))  # unique, in order
        return Encoding(
            ids=ids,
            tokens=[self.display_token(i) for i in ids],
            length=length,
            dropped_words=[words[w] for w in dropped],
            max_length=self.max_length,
            words=words,
            word_ids=word_ids,
        )

    __call__ = encode

    def tokenize_word(self, word: str) -> list[int]:
        """Token ids of one normalized, space-free word (cached: prompts repeat words)."""
        cached = self._word_cache.get(word)
        if cached is None:
            cached = []
            for part in split_special(word, self.special_tokens):
                if part in self.special_tokens:
                    cached.append(self.special_tokens[part])
                    continue
                for piece in pre_tokenize(part):
                    symbols = list(to_byte_level(piece))
                    symbols[-1] += self.end_of_word_suffix
                    cached.extend(self.vocab[s] for s in bpe(symbols, self.ranks))
            if len(self._word_cache) > 100_000:  # a long browser session: don't grow forever
                self._word_cache.clear()
            self._word_cache[word] = cached
        return cached

    def display_token(self, token_id: int) -> str:
        """A token as readable text: "photo</w>", "é</w>", or escapes for part of a character."""
        shown = self._display_cache.get(token_id)
        if shown is None:
            token = self.id_to_token[token_id]
            if token in self.special_tokens:
                shown = token
            else:
                suffix = self.end_of_word_suffix
                ends_word = bool(suffix) and token.endswith(suffix)
                body = token[: -len(suffix)] if ends_word else token
                shown = from_byte_level(body) + (suffix if ends_word else "")
            self._display_cache[token_id] = shown
        return shown


def _check_clip_pipeline(data: dict) -> None:
    """Refuse a tokenizer.json whose normalizer or pre-tokenizer is not CLIP's."""
    normalizer = data.get("normalizer") or {}
    steps = [n.get("type") for n in normalizer.get("normalizers", [normalizer])]
    if steps != ["NFC", "Replace", "Lowercase"]:
        raise SdlensError(f"tokenizer.json: expected CLIP's normalizer (NFC, Replace, Lowercase), got {steps}")
    pre = json.dumps(data.get("pre_tokenizer"))
    if json.dumps(CLIP_SPLIT_REGEX)[1:-1] not in pre:
        raise SdlensError("tokenizer.json: expected CLIP's pre-tokenizer regex")
