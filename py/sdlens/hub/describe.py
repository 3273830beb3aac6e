"""A Hub repo → an sdlens manifest, and what to tell a user before anything downloads.

The numbers come from the repo's own files: the graphs' inputs and outputs (names, dtypes, shapes,
as onnx/onnxruntime report them), then the configs (sample size, VAE scaling factor, scheduler).
Only what neither holds comes from `known`, and the manifest's `hub.from_table` names each of
those. Nothing is guessed: a number found nowhere is an error that names the repo.
"""

from __future__ import annotations

from ..errors import SdlensError
from ..model import MANIFEST_FORMAT
from .known import known
from .layouts import Layout

#: The browser's limits on one file: an ArrayBuffer holds at most 2 GiB, and wasm32 memory 4 GiB
#: in all (onnxruntime-web copies each graph into it before it reaches the GPU).
MAX_BROWSER_FILE = 2 * 1024 ** 3
MAX_BROWSER_MODEL = 4 * 1024 ** 3
#: Downloads larger than this wait for the user to confirm them.
CONFIRM_BYTES = 100 * 1000 ** 2

#: The scheduler menu's names for diffusers' scheduler classes.
SCHEDULER_NAMES = {"PNDMScheduler": "pndm", "DDIMScheduler": "ddim", "EulerDiscreteScheduler": "euler",
                   "EulerAncestralDiscreteScheduler": "euler_a", "DPMSolverMultistepScheduler": "dpm++2m",
                   "UniPCMultistepScheduler": "unipc", "LMSDiscreteScheduler": "lms", "HeunDiscreteScheduler": "heun",
                   "DDPMScheduler": "ddpm", "LCMScheduler": "lcm"}


def precision_of_text_encoder(text_config: dict, graph_bytes: int) -> str:
    """fp16 or fp32, from the text encoder's size on disk against its parameter count (CLIP's text
    transformer, counted from its config): what the page can know before it downloads a graph."""
    h, i = text_config["hidden_size"], text_config["intermediate_size"]
    layers, vocab = text_config["num_hidden_layers"], text_config["vocab_size"]
    positions = text_config.get("max_position_embeddings", 77)
    per_layer = 4 * (h * h + h) + h * i + i + i * h + h + 4 * h  # attention, MLP, two layer norms
    params = vocab * h + positions * h + layers * per_layer + 2 * h
    return "fp16" if graph_bytes / params < 3 else "fp32"


def backends_for(precision: str, io: dict) -> list[str]:
    """Where a graph can run: fp16 weights or fp16 inputs need WebGPU with shader-f16."""
    dtypes = {t["dtype"] for t in io["inputs"] + io["outputs"]}
    if precision == "fp16" or "float16" in dtypes:
        return ["webgpu-f16"]
    return ["webgpu", "wasm"]


def _int(shape: list, index: int):
    value = shape[index] if len(shape) > index else None
    return value if isinstance(value, int) and value > 0 else None


def file_entry(by_path: dict, path: str) -> dict:
    """A manifest's entry for a repo file: its path, size and the checksum the Hub lists."""
    f = by_path[path]
    return {"path": path, "bytes": f["bytes"], "sha256": f.get("sha256"), **({"git_oid": f["git_oid"]} if f.get("git_oid") else {})}


def licence_of(repo: str, card: dict | None) -> tuple[str | None, str | None]:
    """The licence and where it was read: sdlens' table for the known repos, else the repo's model
    card (the Hub's `cardData.license`), else nowhere."""
    if known(repo).get("licence"):
        return known(repo)["licence"], "sdlens' table of known repos"
    licence = (card or {}).get("license")
    if isinstance(licence, list):
        licence = ", ".join(map(str, licence))
    return (str(licence), "the repo's model card") if licence else (None, None)


def describe(repo: str, commit: str, files: list[dict], layout: Layout, configs: dict, graphs: dict,
             tokenizer_files: dict | None = None, name: str | None = None, card: dict | None = None) -> dict:
    """The manifest of a repo at `commit`. `configs`: CONFIGS name → parsed JSON (those the repo
    has); `graphs`: component → {inputs, outputs, precision}, read from the graph files;
    `tokenizer_files`: "vocab"/"merges"/"config" → file entry, where the tokenizer is not the
    repo's own (the known table names its source)."""
    table = known(repo)
    licence, _ = licence_of(repo, card)
    numbers = table.get("numbers", {})
    from_table = []
    by_path = {f["path"]: f for f in files}

    def entry(path: str) -> dict:
        return file_entry(by_path, path)

    def number(key: str, *found):
        for value in found:
            if value is not None:
                return value
        if key in numbers:
            from_table.append(key)
            return numbers[key]
        raise SdlensError(f"{repo}: cannot tell its {key.replace('_', ' ')} from its files "
                          f"(no config says it, and its graphs leave it open)")

    unet_io, decoder_io, text_io = graphs["unet"], graphs["vae_decoder"], graphs["text_encoder"]
    sample = next((t["shape"] for t in unet_io["inputs"] if t["name"] == "sample"), [])
    hidden = next((t["shape"] for t in unet_io["inputs"] if t["name"] == "encoder_hidden_states"), [])
    latent_in = next((t["shape"] for t in decoder_io["inputs"] if t["name"] == "latent_sample"), [])
    image_out = next((t["shape"] for t in decoder_io["outputs"] if t["name"] == "sample"), [])
    unet_cfg, vae_cfg = configs.get("unet", {}), configs.get("vae", {})
    text_cfg, scheduler_cfg = configs.get("text_encoder", {}), configs.get("scheduler")
    tok_cfg = configs.get("tokenizer", {})

    def cfg_sample_size():
        size = unet_cfg.get("sample_size")
        return size[0] if isinstance(size, list) else size

    def graph_scale():
        a, b = _int(latent_in, 2), _int(image_out, 2)
        return b // a if a and b else None

    blocks = vae_cfg.get("block_out_channels")
    scheduler_config = number("scheduler_config", {k: v for k, v in scheduler_cfg.items()
                                                   if not k.startswith("_") or k == "_class_name"}
                              if scheduler_cfg else None)
    sample_size = number("sample_size", _int(sample, 2), cfg_sample_size())
    scale = number("vae_scale_factor", 2 ** (len(blocks) - 1) if blocks else None, graph_scale())
    max_length = number("tokenizer_max_length", tok_cfg.get("model_max_length") if tok_cfg else None)
    components = {}
    for component, paths in layout.graphs.items():
        # A graph not opened yet (the page opens the VAE encoder on a first run from a picture)
        # lists no inputs and outputs: the pipeline reads its one output by name when it runs.
        io = graphs.get(component) or {"inputs": [], "outputs": [], "precision": graphs["unet"]["precision"]}
        precision = io["precision"]
        components[component] = {"variants": {precision: {
            "files": [entry(p) for p in paths], "inputs": io["inputs"], "outputs": io["outputs"],
            "backends": backends_for(precision, io)}}}
    tokenizer = tokenizer_files or {k: entry(p) for k, p in layout.tokenizer.items()}
    defaults = dict(table.get("defaults") or {
        "steps": 25, "guidance": 7.5,
        "scheduler": SCHEDULER_NAMES.get(scheduler_config.get("_class_name"), "ddim")})
    if "defaults" in table:
        from_table.append("defaults")
    size = sample_size * scale
    defaults.update({"width": size, "height": size, "negative": ""})
    return {
        "format": MANIFEST_FORMAT,
        "name": name or repo.split("/")[-1],
        "source": f"hub:{repo}@{commit}",
        "pipeline": "StableDiffusionPipeline",
        "hub": {"repo": repo, "commit": commit, "layout": layout.kind, "licence": licence,
                "title": table.get("title"), "from_table": from_table,
                **({"tokenizer_from": table["tokenizer"]["repo"]} if tokenizer_files else {})},
        "tokenizer": {"files": tokenizer, "max_length": min(int(max_length), 77)},
        "components": components,
        "latent_channels": number("latent_channels", _int(sample, 1), unet_cfg.get("in_channels")),
        "sample_size": sample_size,
        "vae_scale_factor": scale,
        "vae_scaling_factor": float(number("vae_scaling_factor", vae_cfg.get("scaling_factor"))),
        "text_hidden_size": number("text_hidden_size", _int(hidden, 2), text_cfg.get("hidden_size")),
        "prediction_type": scheduler_config.get("prediction_type", "epsilon"),
        "scheduler_config": scheduler_config,
        "defaults": defaults,
        "description": (f"{table.get('title') or repo}, opened from the Hugging Face Hub ({repo} at "
                        f"{commit[:12]}), files as published. Licence: {licence or 'see the repo'}."),
        "starter_prompts": ["a photo of a cat sitting on a windowsill", "a lighthouse on a cliff at sunset, oil painting",
                            "a bowl of ramen, studio photo"],
    }


def skeleton(repo: str, commit: str, files: list[dict], layout: Layout, configs: dict, precision: str | None) -> dict:
    """The manifest as far as it is known before any graph is read: each component's files and
    where they can run, and the picture size where the configs give it. Enough for the page to
    choose a backend and download; `describe` gives the whole manifest once the graphs' inputs and
    outputs are known."""
    by_path = {f["path"]: f for f in files}
    precision = precision or "fp32"
    components = {component: {"variants": {precision: {
        "files": [file_entry(by_path, p) for p in paths],
        "backends": backends_for(precision, {"inputs": [], "outputs": []})}}}
        for component, paths in layout.graphs.items()}
    size = configs.get("unet", {}).get("sample_size")
    blocks = configs.get("vae", {}).get("block_out_channels")
    scale = 2 ** (len(blocks) - 1) if blocks else 8
    defaults = {"width": size * scale, "height": size * scale} if isinstance(size, int) else {}
    return {"format": MANIFEST_FORMAT, "name": known(repo).get("title") or repo, "source": f"hub:{repo}@{commit}",
            "components": components, "vae_scale_factor": scale, "defaults": defaults,
            "tokenizer": {"files": {k: file_entry(by_path, p) for k, p in layout.tokenizer.items()}}}


def summary(repo: str, files: list[dict], layout: Layout, configs: dict, card: dict | None = None) -> dict:
    """What the page shows before a download: the total size, the licence (`card`: the Hub's
    cardData), the precision (and so
    the backend it needs), and what the browser cannot hold. The precision comes from the table
    for known repos, else from the text encoder's bytes per parameter."""
    table = known(repo)
    licence, licence_from = licence_of(repo, card)
    by_path = {f["path"]: f for f in files}
    needed = [p for paths in layout.graphs.values() for p in paths] + list(layout.tokenizer.values())
    total = sum(by_path[p]["bytes"] for p in needed)
    precision, precision_from = table.get("precision"), "the table of known repos"
    if precision is None and "text_encoder" in configs:
        text_bytes = sum(by_path[p]["bytes"] for p in layout.graphs["text_encoder"])
        precision, precision_from = precision_of_text_encoder(configs["text_encoder"], text_bytes), \
            "the text encoder's size against its parameter count"
    too_big = [p for p in needed if by_path[p]["bytes"] > MAX_BROWSER_FILE]
    return {
        "repo": repo, "title": table.get("title") or repo, "licence": licence, "licence_from": licence_from,
        "bytes": total, "confirm_bytes": CONFIRM_BYTES, "precision": precision, "precision_from": precision_from,
        "needs": "WebGPU with shader-f16" if precision == "fp16" else "WebGPU or WASM",
        "too_big": [{"path": p, "bytes": by_path[p]["bytes"]} for p in too_big],
        "over_memory": total > MAX_BROWSER_MODEL,
    }
