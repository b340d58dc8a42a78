"""Model references: a user's own ``nn.Module`` named by ``path/to/file.py:Name`` or ``package.module:Name``.

``Name`` is an ``nn.Module`` subclass or a function returning one (a factory); a dotted ``Name``
(``Outer.Inner``) walks attributes. This is the one place that parses, imports and instantiates them —
for ``ablab summary``, ``ablab train``, ``ablab eval``, study files (local and Ray workers) and
``TrainConfig(model=...)``. Each failure is one :class:`ModelRefError` naming the reference and what
was expected: file not found, no such name (did you mean ...), not an ``nn.Module`` or factory.
Building the model (typed arguments, the call, the output check) is :mod:`ablab.models.construct`.

What a reference may name (code runs only where the user names it, and only their code):

* an ``nn.Module`` subclass, from anywhere (building one runs its constructor, nothing else);
* a function that returns a module (a factory) only when it is *defined in* the named file or package
  and that code is the user's own — not the Python installation's (``subprocess:run``, ``os:system``,
  ``builtins:eval`` and ``shutil:rmtree`` are refused before anything is called);
* never code inside a ``forbid`` folder (a checkpoint's own folder): every package level of a module
  reference is located without executing it, and a level inside the folder is refused before import.

Configs hold the reference as a string so they serialize. A class or factory object is turned back
into a string by :func:`reference_of`: ``package.module:Name`` for code inside a package,
``/abs/path/file.py:Name`` for a plain file, and ``__main__:Name`` for a script or notebook — such an
object is kept in this process only (:data:`_IN_PROCESS`), so a local ``fit`` works and any other
process says clearly that it cannot import it.

Importing this module does not import torch (configs use :func:`is_reference` and
:func:`reference_of` on the torch-free path).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import site
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from ablab.errors import UserError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
REF_RE = re.compile(rf"^(?P<target>[^\s:()]+\.py|{_IDENT}(?:\.{_IDENT})*):(?P<name>{_IDENT}(?:\.{_IDENT})*)$")
MAIN = "__main__"
_IN_PROCESS: dict[str, Any] = {}  # "__main__:Name" -> the object, for references that cannot be imported
_FILE_MODULES: dict[str, str] = {}  # synthetic module name -> absolute path of the file it was loaded from


class ModelRefError(UserError, ValueError):
    """A model reference that cannot be imported, found, built, or trained on the dataset."""


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: ``target`` is a file path (``is_file``) or a dotted module name."""

    text: str
    target: str
    name: str

    @property
    def is_file(self) -> bool:
        return self.target.endswith(".py")

    @property
    def path(self) -> Path | None:
        """The absolute source file of a file reference (None for a module reference)."""
        return Path(self.target).expanduser().resolve() if self.is_file else None


def shown(text: str) -> str:
    """A reference as people read it: a file under the working folder by its relative path."""
    if not is_reference(text):
        return text
    ref = parse_reference(text)
    if ref.is_file and Path(ref.target).is_absolute():
        with contextlib.suppress(ValueError):
            return f"{Path(ref.target).relative_to(Path.cwd())}:{ref.name}"
    return ref.text


def in_process(text: str) -> bool:
    """True for a ``__main__:Name`` reference whose object this process defined (nothing to import)."""
    return text in _IN_PROCESS


def is_reference(text: Any) -> TypeGuard[str]:
    """True for ``file.py:Name`` and ``package.module:Name`` (``mlp:256,10`` is a preset, not a reference)."""
    return isinstance(text, str) and REF_RE.match(text.strip()) is not None


def parse_reference(text: str) -> ModelRef:
    m = REF_RE.match(text.strip())
    if not m:
        raise ModelRefError(f"{text}: not a model reference (expected path/to/file.py:Name or package.module:Name)")
    return ModelRef(text.strip(), m.group("target"), m.group("name"))


def absolute_reference(text: str, base: str | Path | None = None) -> str:
    """A file reference with its path made absolute (relative to ``base``, default the working folder), so
    it means the same file in every process; module references and non-references are returned as is."""
    if not is_reference(text):
        return text
    ref = parse_reference(text)
    if not ref.is_file:
        return ref.text
    p = Path(ref.target).expanduser()
    if not p.is_absolute():
        p = Path(base or Path.cwd()) / p
    return f"{p.resolve()}:{ref.name}"


def reference_of(obj: Any) -> str:
    """The reference string of a class or factory object (see the module docstring)."""
    if isinstance(obj, str):
        return obj
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        kind = type(obj).__name__
        what = (f"an instance of {kind}; pass the class itself ({kind}, not {kind}()) so every run builds fresh "
                "weights from its init seed, and its constructor arguments as model_args"
                if _is_module_instance(obj) else f"a {kind}")
        raise ModelRefError(f"model: expected a preset, spec, model reference (file.py:Name) or an nn.Module "
                            f"class or factory, got {what}")
    qual = obj.__qualname__
    if "<locals>" in qual:
        raise ModelRefError(f"model: {qual} is defined inside a function, so no other process can import it; "
                            "define it at the top level of a .py file")
    mod_name = obj.__module__
    if mod_name == MAIN:
        ref = f"{MAIN}:{qual}"
        _IN_PROCESS[ref] = obj
        return ref
    if mod_name in _FILE_MODULES:
        return f"{_FILE_MODULES[mod_name]}:{qual}"
    module = sys.modules.get(mod_name)
    file = getattr(module, "__file__", None)
    if module is not None and not getattr(module, "__package__", None) and file:
        return f"{Path(file).resolve()}:{qual}"  # a top-level module of the user's: name its file
    return f"{mod_name}:{qual}"


def _is_module_instance(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


# ----------------------------------------------------------------------------------------- importing


@contextlib.contextmanager
def _sys_path(first: list[str], forbid: Path | None) -> Iterator[None]:
    """``first`` prepended to sys.path, and every entry inside ``forbid`` removed, while importing."""
    saved = list(sys.path)
    keep = [p for p in sys.path if forbid is None or not _inside(Path(p or "."), forbid)]
    first = [p for p in first if p not in keep and (forbid is None or not _inside(Path(p), forbid))]
    sys.path[:] = first + keep
    try:
        yield
    finally:
        sys.path[:] = saved


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def source_file(text: str) -> Path | None:
    """The file a reference's code comes from (None when it cannot be located without importing)."""
    ref = parse_reference(text)
    if ref.is_file:
        return ref.path
    if ref.target == MAIN:
        return None
    with _sys_path([str(Path.cwd())], None):
        levels = _find_levels(ref.target)
    if len(levels) != len(ref.target.split(".")) or levels[-1][0] is None:
        return None
    return Path(levels[-1][0]).resolve()


def check_reference(text: str) -> None:
    """Refuse a reference whose code cannot be found, without importing it (torch-free): a missing file,
    a module that is not on the path, code defined only in ``__main__``."""
    ref = parse_reference(text)
    if ref.target == MAIN:
        if text not in _IN_PROCESS:
            _import_module(ref, None)  # raises the clear "defined in a script or notebook" error
        return
    if ref.is_file:
        path = ref.path
        if path is None or not path.is_file():
            raise ModelRefError(f"{shown(text)}: no such file {shown(text).rpartition(':')[0]}")
        return
    if source_file(text) is None:
        top = ref.target.split(".")[0]
        raise ModelRefError(f"{shown(text)}: no module named '{top}' (on the path or in the working folder)")


def source_sha256(text: str) -> str | None:
    """SHA-256 of the reference's source file (None when it has none, e.g. ``__main__``)."""
    path = source_file(text)
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import_file(ref: ModelRef, forbid: Path | None) -> Any:
    path = ref.path
    assert path is not None
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise ModelRefError(f"{shown(ref.text)}: {what} {shown(ref.text).rpartition(':')[0]}")
    if forbid is not None and _inside(path, forbid):
        raise ModelRefError(f"{shown(ref.text)}: refusing to import code from inside the checkpoint folder "
                            f"{forbid}; "
                            "pass the model's source with --model FILE.py:NAME")
    data = path.read_bytes()
    digest = hashlib.sha256(str(path).encode() + b"\0" + data).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    mod_name = f"ablab_user_{stem}_{digest}"
    if mod_name in sys.modules:  # the same file with the same content: import once per process
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ModelRefError(f"{shown(ref.text)}: cannot import {path} as Python source")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    _FILE_MODULES[mod_name] = str(path)
    try:
        with _sys_path([str(path.parent)], forbid):  # so the file can import its neighbours
            spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[mod_name]
        raise ModelRefError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:  # the user's module failed at import: say where, in one line
        del sys.modules[mod_name]
        raise ModelRefError(f"{shown(ref.text)}: importing {path} failed: {type(e).__name__}: {e}") from None
    return module


def _import_module(ref: ModelRef, forbid: Path | None) -> Any:
    if ref.target == MAIN:
        raise ModelRefError(f"{shown(ref.text)}: the model is defined in a script or notebook (__main__), which "
                            "this process cannot import; move it into a .py file and pass 'file.py:"
                            f"{ref.name}' (or run in the same process)")
    try:
        with _sys_path([str(Path.cwd())], forbid):  # `pkg.mod:Net` from the project folder, as `python -m` does
            if forbid is not None:
                for origin in locate_levels(ref.target):
                    if _inside(origin, forbid):
                        raise ModelRefError(f"{shown(ref.text)}: refusing to import {origin} from inside the "
                                            f"checkpoint folder {forbid}; pass the model's source with "
                                            "--model FILE.py:NAME")
            return importlib.import_module(ref.target)
    except ModelRefError:
        raise
    except ModuleNotFoundError as e:
        if e.name and (ref.target == e.name or ref.target.startswith(e.name + ".")):
            hint = " (a file? write it as path/to/file.py:NAME)" if "." not in ref.target else ""
            raise ModelRefError(f"{shown(ref.text)}: no module named '{e.name}'{hint}") from None
        raise ModelRefError(f"{shown(ref.text)}: importing {ref.target} failed: {type(e).__name__}: {e}") from None
    except SyntaxError as e:
        raise ModelRefError(f"{e.filename}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        raise ModelRefError(f"{shown(ref.text)}: importing {ref.target} failed: {type(e).__name__}: {e}") from None


def locate_levels(dotted: str) -> list[Path]:
    """Where each level of ``a.b.c`` lives (``a/__init__.py``, ``a/b/__init__.py``, ``a/b/c.py``, and the
    package folders), found on the path without executing any of it (``importlib.util.find_spec("a.b")``
    would run ``a/__init__.py``). Levels already imported are read from ``sys.modules``."""
    out: list[Path] = []
    for file, locations in _find_levels(dotted):
        if file:
            out.append(Path(file))
        out.extend(Path(p) for p in locations)
    return out


def _find_levels(dotted: str) -> list[tuple[str | None, list[str]]]:
    """(file, package folders) of each level of ``dotted`` found, outermost first, executing nothing."""
    out: list[tuple[str | None, list[str]]] = []
    search: list[str] | None = None
    parts = dotted.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        module = sys.modules.get(name)
        if module is not None:
            file = getattr(module, "__file__", None)
            locations = list(getattr(module, "__path__", []) or [])
        else:
            spec = importlib.machinery.PathFinder.find_spec(name, search)
            if spec is None:
                break
            file = spec.origin if spec.origin not in (None, "built-in", "frozen", "namespace") else None
            locations = list(spec.submodule_search_locations or [])
        out.append((file, locations))
        if not locations:
            break
        search = locations
    return out


def _installation_dirs() -> list[Path]:
    """The Python installation's library folders: the standard library and site-packages."""
    paths = sysconfig.get_paths()
    dirs = [paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    with contextlib.suppress(AttributeError):  # site.getsitepackages is missing in some virtualenvs
        dirs += site.getsitepackages()
    dirs.append(site.getusersitepackages())
    return [Path(d).resolve() for d in dirs if d]


def is_users_code(obj: Any) -> bool:
    """True for a Python function whose source file is outside the Python installation (the user's own
    file or project); False for builtins and the standard library's or installed packages' functions."""
    if not inspect.isfunction(obj):
        return False
    module = sys.modules.get(obj.__module__)
    file = getattr(module, "__file__", None)
    if obj.__module__ == MAIN or obj.__module__ in _FILE_MODULES:
        return True
    if not file:
        return False
    return not any(_inside(Path(file), d) for d in _installation_dirs())


def load_reference(text: str, *, forbid: str | Path | None = None) -> Any:
    """The class or factory a reference names (imported, not called). ``forbid``: a folder no code may
    be imported from (a checkpoint's own folder)."""
    if text in _IN_PROCESS:
        return _IN_PROCESS[text]
    ref = parse_reference(text)
    folder = Path(forbid) if forbid is not None else None
    module = _import_file(ref, folder) if ref.is_file else _import_module(ref, folder)
    obj: Any = module
    for i, part in enumerate(ref.name.split(".")):
        if not hasattr(obj, part):
            where = shown(ref.text).rpartition(":")[0] if i == 0 else ".".join(ref.name.split(".")[:i])
            raise ModelRefError(f"{shown(ref.text)}: no name '{part}' in {where}{_did_you_mean(part, obj)}")
        obj = getattr(obj, part)
    _check_kind(ref, obj, module)
    return obj


def _did_you_mean(name: str, holder: Any) -> str:
    candidates = [n for n, v in vars(holder).items() if not n.startswith("_") and callable(v)]
    close = difflib.get_close_matches(name, candidates, n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    models = [n for n in candidates if _is_module_class(vars(holder)[n])]
    return f" (nn.Module classes there: {', '.join(sorted(models))})" if models else ""


def _is_module_class(obj: Any) -> bool:
    from torch import nn

    return inspect.isclass(obj) and issubclass(obj, nn.Module)


def _check_kind(ref: ModelRef, obj: Any, module: Any) -> None:
    """An nn.Module subclass, or a factory function of the user's own defined in the named file or module;
    refused before anything is called."""
    text = ref.text
    if _is_module_class(obj):
        return
    if callable(obj) and not inspect.isclass(obj) and not _is_module_instance(obj):
        where = shown(text).rpartition(":")[0]
        if not inspect.isfunction(obj):
            raise ModelRefError(f"{shown(text)}: is a {type(obj).__name__}, not an nn.Module class or a Python "
                                f"function of yours that returns one; ablab calls no other callable")
        home = getattr(module, "__name__", None)
        if obj.__module__ != home and not (home and obj.__module__.startswith(home + ".")):
            raise ModelRefError(f"{shown(text)}: {obj.__qualname__} is defined in {obj.__module__}, not in "
                                f"{where}; a factory function must be defined in the file or module you name")
        if not is_users_code(obj):
            raise ModelRefError(f"{shown(text)}: {obj.__qualname__} is a function of the Python installation "
                                f"({obj.__module__}), not of your own code; ablab calls only nn.Module classes "
                                "and factory functions written in your own files")
        return
    if inspect.isclass(obj):
        raise ModelRefError(f"{shown(text)}: {obj.__name__} is a class but not a torch.nn.Module subclass")
    if _is_module_instance(obj):
        raise ModelRefError(f"{shown(text)}: is an nn.Module instance ({type(obj).__name__}); name its class or a "
                            "function that builds it, so each run builds fresh weights from its init seed")
    if not callable(obj):
        raise ModelRefError(f"{shown(text)}: is a {type(obj).__name__}, not an nn.Module class or a function "
                            "returning one")
