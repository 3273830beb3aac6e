"""Every bad setting gets a message in the learner's words: what the field takes and what was
typed, never Python's repr ('abc', nan, None), a 20-digit limit, or a class name. The page shows
these messages by the field (test_browser.py), and the command line prints them."""

from __future__ import annotations

import re

import pytest

from sdlens.errors import SdlensError
from sdlens.pipeline import Settings

DEFAULTS = {"steps": 25, "guidance": 7.5, "scheduler": "ddim"}
GOOD = {"prompt": "a red circle", "seed": "42", "steps": "5", "guidance": "7.5", "scheduler": "ddim"}


def message_for(**bad) -> str:
    with pytest.raises(SdlensError) as info:
        Settings.from_request({**GOOD, **bad}, DEFAULTS).checked()
    return str(info.value)


def assert_plain(message: str) -> None:
    for internal in ("nan", "''", '""', "18446744073709551615", "None", "Error", "got "):
        assert internal not in message.replace("“nan”", ""), (internal, message)
    assert not re.search(r"[A-Z][a-z]+[A-Z]\w*Scheduler|Handle|ValueError|TypeError", message), message


@pytest.mark.parametrize("field, value, expected", [
    ("guidance", "abc", "guidance must be a number, 0 or more (7.5 is usual), not “abc”"),
    ("guidance", "", "guidance must be a number, 0 or more (7.5 is usual), but it is empty"),
    ("guidance", "-5", "guidance must be a number, 0 or more (7.5 is usual), not “-5”"),
    ("guidance", "inf", "guidance must be a number, 0 or more (7.5 is usual), not “inf”"),
    ("guidance", "nan", "guidance must be a number, 0 or more (7.5 is usual), not “nan”"),
    ("steps", "abc", "steps must be a whole number from 1 to 1000, not “abc”"),
    ("steps", "", "steps must be a whole number from 1 to 1000, but it is empty"),
    ("steps", "0", "steps must be a whole number from 1 to 1000, not “0”"),
    ("steps", "2.5", "steps must be a whole number from 1 to 1000, not “2.5”"),
    ("steps", "5000", "steps must be a whole number from 1 to 1000, not “5000”"),
    ("seed", "abc", "seed must be a whole number, 0 or more, not “abc”"),
    ("seed", "", "seed must be a whole number, 0 or more, but it is empty"),
    ("seed", "-1", "seed must be a whole number, 0 or more, not “-1”"),
    ("seed", "1.5", "seed must be a whole number, 0 or more, not “1.5”"),
    ("karras", "maybe", "karras must be true or false, not “maybe”"),
])
def test_each_bad_value_says_what_the_field_takes(field, value, expected):
    message = message_for(**{field: value})
    assert message == expected
    assert_plain(message)


def test_a_seed_too_large_says_so_without_twenty_digits():
    message = message_for(seed=str(2**64))
    assert message.startswith("seed must be a whole number, 0 or more") and "too large" in message
    assert_plain(message)
    assert Settings.from_request({**GOOD, "seed": str(2**64 - 1)}, DEFAULTS).checked().seed == 2**64 - 1


def test_a_long_value_is_quoted_short():
    message = message_for(guidance="x" * 200)
    assert "x" * 30 + "…”" in message and len(message) < 120


def test_scheduler_messages_are_plain():
    from sdlens.schedulers import make_scheduler

    with pytest.raises(SdlensError) as info:
        make_scheduler("dpm++")
    assert str(info.value).startswith("unknown scheduler “dpm++”; choose one of: ")
    with pytest.raises(SdlensError) as info:
        make_scheduler("ddim", karras=True)
    assert str(info.value).startswith("karras sigmas are not available for DDIM")
    for err in (info,):
        assert_plain(str(err.value))


def test_dropped_words_are_one_line_with_a_count(tiny_model_dir):
    from sdlens.model import Model

    tokenizer = Model.from_dir(tiny_model_dir, verify=False).load_tokenizer()
    note = tokenizer.encode(" ".join(f"word{i}" for i in range(500))).dropped_note()
    assert note == "The prompt is longer than 77 tokens: the last 472 words are dropped (from “word28 word29 word30 word31 …”)."
    assert "\n" not in note
    assert tokenizer.encode("a red circle").dropped_note() == ""
    one = tokenizer.encode(" ".join(f"word{i}" for i in range(29))).dropped_note("negative prompt")
    assert one == "The negative prompt is longer than 77 tokens: the last word is dropped (from “word28”)."
