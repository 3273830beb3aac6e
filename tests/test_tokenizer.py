"""sdlens.tokenizer (pure Python) against Hugging Face's CLIPTokenizerFast, built from the same files."""

from __future__ import annotations

import random
import time

import pytest

from export.clip_vocab import write_clip_tokenizer, write_tokenizer_json
from sdlens.errors import SdlensError
from sdlens.tokenizer import ClipTokenizer, Encoding, lowercase, pre_tokenize

BOS, EOS = 49406, 49407

LONG_PROMPT = " ".join(f"word{i}" for i in range(100))  # 2 tokens per word ("word", digit...)

CORPUS = [
    # plain prompts
    "a photo of a cat",
    "A Photo Of A CAT",
    "an astronaut riding a horse on mars, highly detailed, 8k, trending on artstation",
    "portrait of a woman, oil painting by John Singer Sargent",
    "cyberpunk city at night; neon lights -- rain!!!",
    # punctuation
    "hello, world!",
    "(masterpiece:1.2), ((best quality)), [ugly]",
    "a...b---c___d",
    "\"quoted\" 'single' `back`",
    "email@example.com #hashtag $100 50% a&b",
    # contractions and apostrophes
    "don't stop",
    "it's a dog's life",
    "THEY'RE HERE, WE'VE GOT IT, I'M OK, YOU'LL SEE, HE'D GO",
    "rock'n'roll o'clock 'sad 'tis",
    "!'s ''s ''' 'S'T",
    "l’été c’est l’amour",  # typographic apostrophe is not a contraction
    # digits
    "1024x768",
    "3.14159",
    "year 2024, 4k uhd, 1/2 ½ ² Ⅻ ٣",
    "v1.5 sd-2.1 f/1.8 ISO400",
    # unicode letters
    "café naïve résumé Ångström",
    "cafe\u0301 vs café",  # NFD vs NFC
    "Å Å Å",  # angstrom sign, A + ring, precomposed
    "αβγ ΑΒΓ Ωμέγα",
    "ΟΔΥΣΣΕΥΣ ΣΑΣ",  # capital sigma at the end of a word
    "İstanbul straße ǅemal",
    "日本の猫 東京タワー",
    "中文提示词，带标点。",
    "한국어 고양이",
    "кошка на крыше",
    "a\u0308\u0301 x\u0323\u0307 combining marks",
    "\u0301leading combining mark",
    "ﬁne ﬂower",  # ligatures (NFC keeps them)
    # emoji
    "a cat 🐱 and a dog 🐶",
    "👩‍👩‍👧‍👦 family",  # ZWJ sequence
    "🇫🇷🇯🇵 flags",
    "👍🏽 thumbs",
    "❤️ love ✨",
    "🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱",
    # whitespace
    "  leading and trailing  ",
    "tabs\tand\nnewlines\r\nand\u000bvt\u000cff",
    "no\u00a0break\u3000ideographic\u2003em\u2028line\u0085nel",
    "zero\u200bwidth\u200djoiner",
    "info\u001fsep\u001cfs",  # str.isspace() but not White_Space
    "mongolian\u180evs",
    "",
    "     ",
    "\t\n\u3000",
    # special tokens spelled in the prompt
    "a <|endoftext|> b",
    "x<|startoftext|>y<|ENDOFTEXT|>z",
    "<|endoftext|",
    # long prompts
    LONG_PROMPT,
    "a " * 80,
    "supercalifragilisticexpialidocious " * 20,
    "a" * 300,
    "🐱" * 40,
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    write_clip_tokenizer(root / "tokenizer")
    write_tokenizer_json(root / "tokenizer", root / "tokenizer.json")
    return root


@pytest.fixture(scope="module")
def hf(files):
    from transformers import CLIPTokenizerFast

    return CLIPTokenizerFast.from_pretrained(files / "tokenizer")


@pytest.fixture(scope="module")
def tok(files):
    return ClipTokenizer.from_file(files / "tokenizer.json")


def hf_ids(hf, prompt):
    # Exactly the call diffusers' StableDiffusionPipeline makes.
    return hf(prompt, padding="max_length", max_length=hf.model_max_length, truncation=True).input_ids


# -- export.clip_vocab --------------------------------------------------------------------------


def test_exported_folder(files, hf):
    names = sorted(p.name for p in (files / "tokenizer").iterdir())
    assert names == ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    assert (files / "tokenizer" / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\n")
    assert len(hf) == 49408
    assert hf.model_max_length == 77
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (BOS, EOS, EOS)
    assert hf("a photo of a cat").input_ids == [BOS, 320, 1125, 539, 320, 2368, EOS]


def test_tokenizer_json_pads_and_truncates_by_itself(files):
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(str(files / "tokenizer.json"))
    ids = backend.encode("a photo of a cat").ids
    assert ids == [BOS, 320, 1125, 539, 320, 2368, EOS] + [EOS] * 70
    assert len(backend.encode(LONG_PROMPT).ids) == 77


# -- parity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", CORPUS, ids=range(len(CORPUS)))
def test_parity_with_clip_tokenizer_fast(tok, hf, prompt):
    enc = tok.encode(prompt)
    assert enc.ids == hf_ids(hf, prompt)
    assert len(enc.tokens) == len(enc.word_ids) == enc.max_length == 77
    assert enc.length == sum(hf(prompt, truncation=True, max_length=77).attention_mask)


def test_parity_corpus_is_large_enough():
    assert len(CORPUS) >= 40


def test_parity_on_every_printable_ascii_pair(tok, hf):
    # Contractions, punctuation runs and digits next to each other, in every combination.
    chars = [chr(c) for c in range(32, 127)]
    prompts = ["".join(chars[i : i + 24]) for i in range(0, len(chars), 3)]
    prompts += [a + b + a for a in "'s1a. " for b in chars]
    for p in prompts:
        assert tok.encode(p).ids == hf_ids(hf, p), p


def test_parity_on_random_unicode_soup(tok, hf):
    rng = random.Random(1234)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\u00a0\u3000",
        ".,;:!?'\"-_()[]{}<>|/\\@#$%^&*~`",
        "éèàüößçñøåæœİ",
        "αβγδεζηθΣΩς",
        "日本語中文한국어",
        "🐱🐶👩‍👧🇫🇷👍🏽❤️",
        "\u0301\u0308\u200b\u200d",
        "'s'S't're've'm'll'd",
    ]
    for _ in range(500):
        p = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, 60)))
        assert tok.encode(p).ids == hf_ids(hf, p), repr(p)


# -- pieces -------------------------------------------------------------------------------------


def test_pre_tokenize_follows_regex_alternation():
    assert pre_tokenize("don't") == ["don", "'t"]
    assert pre_tokenize("they're") == ["they", "'re"]
    assert pre_tokenize("'sad") == ["'s", "ad"]
    assert pre_tokenize("!'s") == ["!'", "s"]
    assert pre_tokenize("1024x768") == ["1", "0", "2", "4", "x", "7", "6", "8"]
    assert pre_tokenize("a  b") == ["a", "b"]
    assert pre_tokenize("...!?") == ["...!?"]


def test_lowercase_has_no_final_sigma():
    assert lowercase("ΟΔΥΣΣΕΥΣ") == "οδυσσευσ"


# -- Encoding -----------------------------------------------------------------------------------


def test_known_ids_and_tokens(tok):
    enc = tok.encode("a photo of a cat")
    assert isinstance(enc, Encoding)
    assert enc.ids[:7] == [BOS, 320, 1125, 539, 320, 2368, EOS]
    assert enc.ids[7:] == [EOS] * 70
    assert enc.tokens[:7] == ["<|startoftext|>", "a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>", "<|endoftext|>"]
    assert enc.tokens[7:] == ["<|endoftext|>"] * 70
    assert enc.length == 7
    assert enc.dropped_words == []
    assert not enc.truncated
    assert enc.words == ["a", "photo", "of", "a", "cat"]
    assert enc.word_ids[:7] == [None, 0, 1, 2, 3, 4, None]
    assert enc.attention_mask == [1] * 7 + [0] * 70


def test_attributes(tok):
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (BOS, EOS, EOS)
    assert tok.max_length == 77
    assert tok.vocab_size == 49408


def test_readable_tokens(tok):
    enc = tok.encode("Café 🐱")
    shown = enc.tokens[1 : enc.length - 1]
    assert "".join(shown).replace("</w>", " ").strip() == "café 🐱"
    # A character split over several tokens shows its bytes as escapes.
    enc = tok.encode("👩‍👩‍👧‍👦")
    assert any("\\x" in t for t in enc.tokens[1 : enc.length - 1])


def test_empty_prompt(tok):
    for prompt in ("", "   ", "\n\t"):
        enc = tok.encode(prompt)
        assert enc.ids == [BOS] + [EOS] * 76
        assert enc.length == 2
        assert enc.words == []
        assert enc.dropped_words == []


def test_long_prompt_drops_the_right_words(tok, hf):
    enc = tok.encode(LONG_PROMPT)
    assert enc.ids == hf_ids(hf, LONG_PROMPT)
    assert enc.length == 77
    assert enc.ids[76] == EOS
    # Each "wordN" is "word</w>" (letters and digits are separate pieces) + one token per digit:
    # word0..word9 take 2 tokens each (20), then 3 each: 75 - 20 = 55 = 18 * 3 + 1, so word28
    # keeps only "word</w>" and loses its digits, and everything after it is gone.
    assert enc.tokens[-2] == "word</w>"
    assert enc.dropped_words == [f"word{i}" for i in range(28, 100)]
    assert enc.truncated


def test_dropped_words_keep_the_users_spelling(tok):
    prompt = "a " * 75 + "Big\u00a0RED  Dog"
    enc = tok.encode(prompt)
    assert enc.dropped_words == ["Big", "RED", "Dog"]
    enc = tok.encode("a " * 74 + "Big RED")
    assert enc.dropped_words == ["RED"]
    enc = tok.encode("a " * 75)
    assert enc.dropped_words == []
    assert enc.length == 77


def test_lone_surrogates_from_the_browser(tok):
    # A JS string may hold half an emoji; it counts as U+FFFD, and a full pair as the emoji.
    assert tok.encode("a \ud83d b").ids == tok.encode("a \ufffd b").ids
    assert tok.encode("\ud83d\udc31").ids == tok.encode("🐱").ids


def test_special_tokens_in_prompt(tok):
    enc = tok.encode("a <|endoftext|> b")
    assert enc.ids[:5] == [BOS, 320, EOS, 321, EOS]
    assert enc.tokens[2] == "<|endoftext|>"


# -- loading ------------------------------------------------------------------------------------


def test_from_json_and_from_file_agree(files, tok):
    other = ClipTokenizer.from_json((files / "tokenizer.json").read_text(encoding="utf-8"))
    assert other.vocab_size == tok.vocab_size
    assert other.max_length == tok.max_length
    for prompt in CORPUS:
        assert other.encode(prompt) == tok.encode(prompt)


def test_gzipped_file_reads_the_same(files, tok, tmp_path):
    from export.manifest import gzip_file

    gzip_file(files / "tokenizer.json", tmp_path / "a.json.gz")
    gzip_file(files / "tokenizer.json", tmp_path / "b.json.gz")
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()  # reproducible
    assert (tmp_path / "a.json.gz").stat().st_size < (files / "tokenizer.json").stat().st_size / 4
    gz = ClipTokenizer.from_file(tmp_path / "a.json.gz")
    for prompt in CORPUS:
        assert gz.encode(prompt) == tok.encode(prompt)
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SdlensError, match="bad.json.gz is not a readable gzip file"):
        ClipTokenizer.from_file(tmp_path / "bad.json.gz")


def test_rejects_other_tokenizers():
    with pytest.raises(SdlensError):
        ClipTokenizer.from_json("{}")
    with pytest.raises(SdlensError):
        ClipTokenizer.from_json("not json")


def test_fast_enough(files):
    # A fresh tokenizer (empty word cache) on a prompt that fills all 77 positions.
    fresh = ClipTokenizer.from_file(files / "tokenizer.json")
    prompt = ", ".join(CORPUS[2:6] + CORPUS[20:30])
    start = time.perf_counter()
    enc = fresh.encode(prompt)
    elapsed = time.perf_counter() - start
    assert enc.length == 77
    assert elapsed < 0.05, f"{elapsed * 1000:.1f} ms"
