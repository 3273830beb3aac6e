"""The real CLIP BPE vocabulary (49,408 tokens), written as Hugging Face tokenizer files.

Stable Diffusion 1.x encodes prompts with OpenAI's CLIP ViT-L/14 tokenizer. Its merges ship
inside ``open_clip`` as ``bpe_simple_vocab_16e6.txt.gz``; we rebuild the vocabulary from that
file exactly as OpenAI's ``SimpleTokenizer`` does, so no download from the Hub is needed:

* merges = lines ``[1 : 49152 - 256 - 2 + 1]`` of the file (48,894 merges; line 0 is a header);
* vocab  = the 256 byte symbols, the same 256 with ``</w>`` appended, one token per merge
  (the two halves joined), then ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

``write_clip_tokenizer`` writes a diffusers-style ``tokenizer/`` folder (what
``CLIPTokenizer.save_pretrained`` writes); ``write_tokenizer_json`` turns such a folder into the
single ``tokenizer.json`` the browser model folder ships, which ``sdlens.tokenizer`` reads.

CPython only: uses ``transformers`` / ``tokenizers``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import tempfile
from pathlib import Path

MAX_LENGTH = 77  # CLIP's text context length: BOS + 75 tokens + EOS
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# As in openai/clip-vit-large-patch14: pad and unk are both the end-of-text token.
PAD = EOS
UNK = EOS
N_MERGES = 49152 - 256 - 2  # SimpleTokenizer keeps this many merge lines


def bpe_vocab_file() -> Path:
    """The merges file bundled with open_clip (found without importing it: it needs torchvision)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip_torch is not installed (pip install --no-deps open_clip_torch)")
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable character table, so BPE never sees whitespace or control bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def clip_merges_and_vocab(source: Path | None = None) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Merges (in rank order) and token -> id, built exactly like CLIP's SimpleTokenizer."""
    source = source or bpe_vocab_file()
    lines = gzip.open(source).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab.extend("".join(m) for m in merges)
    vocab.extend([BOS, EOS])
    token_to_id = {tok: i for i, tok in enumerate(vocab)}
    if len(token_to_id) != 49408:
        raise RuntimeError(f"expected 49408 distinct CLIP tokens, got {len(token_to_id)}")
    return merges, token_to_id


def write_clip_tokenizer(out_dir: Path) -> None:
    """Write vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json into ``out_dir``."""
    from transformers import CLIPTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merges, vocab = clip_merges_and_vocab()
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.json"
        merges_file = Path(tmp) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        # CLIPTokenizer skips the first line of merges.txt, so the version header is required.
        merges_file.write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
        # Going through CLIPTokenizer.save_pretrained gives exactly the files diffusers expects.
        tok = CLIPTokenizer(
            str(vocab_file),
            str(merges_file),
            bos_token=BOS,
            eos_token=EOS,
            pad_token=PAD,
            unk_token=UNK,
            model_max_length=MAX_LENGTH,
        )
        tok.save_pretrained(str(out_dir))
    # save_pretrained may also write added_tokens.json etc.; keep only the four files that
    # a diffusers `tokenizer/` folder has.
    for extra in ("added_tokens.json", "tokenizer.json"):
        (out_dir / extra).unlink(missing_ok=True)


def write_tokenizer_json(tokenizer_dir: Path, out_file: Path) -> None:
    """Save the fast tokenizer for ``tokenizer_dir`` as one ``tokenizer.json`` (HF tokenizers format).

    Truncation and padding to 77 are stored in the json too, so a tokenizer loaded from this
    file alone behaves like ``tokenizer(prompt, padding="max_length", max_length=77, truncation=True)``,
    which is how diffusers' StableDiffusionPipeline calls it.
    """
    from transformers import CLIPTokenizerFast

    fast = CLIPTokenizerFast.from_pretrained(str(tokenizer_dir))
    backend = fast.backend_tokenizer
    pad_id = fast.convert_tokens_to_ids(fast.pad_token)
    backend.enable_truncation(max_length=MAX_LENGTH)
    backend.enable_padding(length=MAX_LENGTH, pad_id=pad_id, pad_token=fast.pad_token)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    backend.save(str(out_file))
