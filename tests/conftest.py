import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# `export` is a top-level folder of CPython tools, not an installed package.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ALL_VARIANTS = ["fp32", "fp16", "int8", "q4"]

#: The models the repo ships. OBJECTS is the one a first visit opens (its manifest says "default");
#: SHAPES is the composition lab, which the tests of colour+shape lessons and numbers use.
SHAPES = ROOT / "models" / "shapes"
OBJECTS = ROOT / "models" / "objects"


def embedded_default() -> Path:
    """The folder `python serve.py` opens when no model is named (sdlens.model.resolve_model_dir)."""
    from sdlens.model import resolve_model_dir

    return Path(resolve_model_dir(None, str(ROOT / "models")))


@pytest.fixture(scope="session")
def shapes_only(tmp_path_factory) -> Path:
    """A models/ folder with the shapes model alone, for tests whose prompts and numbers are the
    shapes world's, whichever model is the embedded default."""
    import shutil

    folder = tmp_path_factory.mktemp("shapes-only")
    shutil.copytree(SHAPES, folder / "shapes")
    return folder


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    """A small random-weight SD pipeline in diffusers format, built by `export tiny`."""
    from export.tiny import write_tiny_pipeline

    out = tmp_path_factory.mktemp("tiny") / "tiny-sd"
    write_tiny_pipeline(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_pipeline_dir, tmp_path_factory) -> Path:
    """The tiny pipeline converted by `export convert`, every variant."""
    from export.convert import convert

    out = tmp_path_factory.mktemp("models") / "tiny-random"
    convert(str(tiny_pipeline_dir), out, ALL_VARIANTS, quiet=True)
    return out


#: the preview's averaging that 512² and larger models get (export.preview.preview_pool), forced at 64²
TAESD_POOL = 2


@pytest.fixture(scope="session")
def taesd_models_dir(tiny_pipeline_dir, tmp_path_factory) -> Path:
    """A models/ folder holding "tiny-taesd": the tiny pipeline (fp32, int8) with a random-weight TAESD
    as its preview and fast decoder, previews averaged over TAESD_POOL² cells as at full size."""
    from export.convert import convert

    from .test_export import write_taesd

    folder = tmp_path_factory.mktemp("preview-models")
    taesd = write_taesd(tmp_path_factory.mktemp("taesd") / "taesd-4x", upsamplings=2)
    convert(str(tiny_pipeline_dir), folder / "tiny-taesd", ["fp32", "int8"], quiet=True, name="tiny-taesd",
            default_model=True, preview_decoder=str(taesd), preview_pool=TAESD_POOL)
    return folder


@pytest.fixture(autouse=True)
def shared_page_restored(request):
    """A browser module shares one page (`page`, module-scoped) among its tests: after each test,
    failed or not, the page's restore() closes what the test left open, so that one failure does
    not fail the tests after it."""
    yield
    if "page" in request.fixturenames:
        restore = getattr(request.getfixturevalue("page"), "restore", None)
        if restore:
            restore()
