"""Stable Diffusion ONNX repos on the Hugging Face Hub, read as sdlens models.

Pure Python (it runs in Pyodide too, so the page and `sdlens fetch` read a repo the same way):

* `layouts`: which files of a repo are which graph, configs and tokenizer (optimum's layout, or
  the WebNN demos' files in the repo root); a clear message listing what was found otherwise;
* `known`: what a layout does not carry (the WebNN repos have no configs), for the repos known by
  name, and their licences;
* `describe`: a repo's listing, configs and graphs → an sdlens manifest, and the summary shown
  before any download (size, licence, the backend it needs).

The download itself is `sdlens.cpython.fetch` on the command line and web/runtime in the page.
"""
