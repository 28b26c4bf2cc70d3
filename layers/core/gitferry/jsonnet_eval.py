"""Evaluating one ``.jsonnet`` file of a directory source, in a child process.

:func:`gitferry.render.render_directory` runs ``python -m gitferry.jsonnet_eval <request.json>``
through the same runner as helm and kustomize (timeout, RLIMIT_AS, output written to a file whose
size is checked before it is read); the child evaluates with the ``jsonnet`` binding
(``_jsonnet``) and prints the JSON. Every ``import`` / ``importstr`` / ``importbin`` goes through
:func:`import_callback`, which searches the importing file's directory, then the library
directories (the last listed first, as go-jsonnet's ``FileImporter`` and ``jsonnet -J`` do), and
resolves each candidate with :func:`gitferry.paths.resolve_in_repo`: remote, absolute and
out-of-repository imports are refused, naming the import.

The request (JSON): ``file`` (absolute path of the file), ``root`` (the real repository root),
``jpaths`` (absolute library directories), ``extVars`` / ``extCodes`` / ``tlaVars`` /
``tlaCodes`` (name -> text).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: one imported file may be at most this big (the whole render is bounded by MAX_TOTAL_BYTES)
MAX_IMPORT_BYTES = 16 * 1024 * 1024


def import_callback(root: Path, jpaths: list[Path]) -> Callable[[str, str], tuple[str, bytes]]:
    """The binding's ``import_callback``: (directory of the importing file, import string) ->
    (path of the file found, its bytes). A refusal raises, and Jsonnet reports it at the
    import's file and line."""
    from gitferry.errors import RenderError
    from gitferry.paths import resolve_in_repo

    def find(base: str, rel: str) -> tuple[str, bytes]:
        for directory in [Path(base), *reversed(jpaths)]:
            try:
                real = resolve_in_repo(root, directory, rel, file=None, field="import")
            except RenderError as exc:
                raise RuntimeError(str(exc)) from None
            if real.is_file():
                if real.stat().st_size > MAX_IMPORT_BYTES:
                    raise RuntimeError(f"import {rel!r} is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
                return str(real), real.read_bytes()
        raise RuntimeError(f"import {rel!r}: no such file next to the importing file or in the Jsonnet libs")

    return find


def evaluate(request: dict[str, Any]) -> str:
    """The JSON text of the file named by ``request`` (see the module docstring)."""
    import _jsonnet

    root = Path(request["root"])
    file = Path(request["file"])
    return str(_jsonnet.evaluate_snippet(
        str(file), file.read_text(encoding="utf-8-sig"),
        ext_vars=request.get("extVars") or {}, ext_codes=request.get("extCodes") or {},
        tla_vars=request.get("tlaVars") or {}, tla_codes=request.get("tlaCodes") or {},
        import_callback=import_callback(root, [Path(p) for p in request.get("jpaths") or []]),
    ))


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[1]).read_text())
    try:
        out = evaluate(request)
    except MemoryError:
        sys.stderr.write("jsonnet ran out of memory\n")
        return 3
    except RuntimeError as exc:  # the binding's evaluation errors (STATIC / RUNTIME ERROR ...)
        sys.stderr.write(str(exc))
        return 1
    except UnicodeDecodeError:
        sys.stderr.write("not UTF-8 text\n")
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
