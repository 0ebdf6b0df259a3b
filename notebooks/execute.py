"""Execute every notebook in this folder top to bottom and store it with its outputs (``./dev notebooks``).

Runs the kernel on this checkout (PYTHONPATH) with the inline backend, so figures are stored as
images a reader sees on GitHub. ``python notebooks/execute.py [name ...]`` runs only those notebooks
(``08_downstream`` or ``08_downstream.ipynb``); an unknown name is refused before anything runs.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def scrub(nb):
    """Drop this checkout's absolute path from the outputs (warnings name their source file)."""
    root = str(HERE.parent) + os.sep
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = out["text"].replace(root, "")
    return nb


def main(names):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    os.environ.pop("MPLBACKEND", None)
    known = sorted(HERE.glob("*.ipynb"))
    paths = [HERE / (n if n.endswith(".ipynb") else n + ".ipynb") for n in names] if names else known
    unknown = [p.name for p in paths if not p.is_file()]
    if unknown:
        sys.exit(f"no notebook {', '.join(unknown)} in {HERE}; the notebooks: {', '.join(p.stem for p in known)}")
    for path in paths:
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(scrub(nb), path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
