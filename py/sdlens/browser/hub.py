"""The page's side of opening a model from the Hugging Face Hub.

The worker (web/runtime/hub.js) fetches the Hub's listing, the configs and the files; these
functions read what it fetched with the same code `sdlens fetch` uses (sdlens.hub), so the page and
the command line agree on every repo. Each takes and returns JSON text, as the worker passes it.
"""

from __future__ import annotations

import dataclasses
import json

from ..hub import describe
from ..hub.known import known
from ..hub.layouts import listing, read_layout, tokenizer_entries


def layout(repo: str, tree_json: str) -> str:
    """The tree API's answer → {files, layout, tokenizer_from}: which file is which graph, which
    configs to read, and the repo the tokenizer comes from where the layout has none."""
    files = listing(json.loads(tree_json))
    found = read_layout(repo, files)
    return json.dumps({"files": files, "layout": dataclasses.asdict(found), "tokenizer_from": known(repo).get("tokenizer")})


def plan(repo: str, commit: str, tree_json: str, configs_json: str, card_json: str) -> str:
    """{summary, skeleton}: what the page says before a download, and the manifest it downloads by.
    `card_json`: the model info's cardData (the licence of a repo sdlens does not know)."""
    files = listing(json.loads(tree_json))
    found, configs = read_layout(repo, files), json.loads(configs_json)
    told = describe.summary(repo, files, found, configs, json.loads(card_json))
    return json.dumps({"summary": told, "skeleton": describe.skeleton(repo, commit, files, found, configs, told["precision"])})


def tokenizer(repo: str, tree_json: str, folder: str) -> str:
    """The tokenizer files kept in another repo (the known table's `tokenizer`)."""
    return json.dumps(tokenizer_entries(repo, listing(json.loads(tree_json)), folder))


def manifest(repo: str, commit: str, tree_json: str, configs_json: str, graphs_json: str,
             tokenizer_json: str, endpoint: str, card_json: str) -> str:
    """The whole manifest, once each graph's inputs and outputs are known (onnxruntime's
    inputMetadata and outputMetadata of its session): `graphs_json` is component → {inputs,
    outputs, precision}; `tokenizer_json` the files from another repo, or null."""
    files = listing(json.loads(tree_json))
    tokenizer_files = json.loads(tokenizer_json)
    made = describe.describe(repo, commit, files, read_layout(repo, files), json.loads(configs_json),
                             json.loads(graphs_json), tokenizer_files, card=json.loads(card_json))
    made["hub"]["endpoint"] = endpoint
    return json.dumps(made)
