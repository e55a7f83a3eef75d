"""Build: the inner cffi extension (pyhsm._pkcs11) and the C loader installed as pyhsm/libpyhsm.so.

The loader is a plain shared library, not a Python extension: it must not link libpython (hosts that are not
Python load it; Python hosts already have their interpreter), so its link step is ours, not setuptools' default.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
LOADER = "pyhsm.libpyhsm"


def _by_path(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def generate_headers(directory: Path) -> None:
    """pyhsm_gen.h (types, function lists) and ck_constants.h for the C sources of both extensions."""
    cdefs = _by_path("_pyhsm_cdefs", ROOT / "pyhsm" / "pkcs11" / "cdefs.py")
    constants = _by_path("_pyhsm_constants", ROOT / "pyhsm" / "constants.py")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pyhsm_gen.h").write_text(cdefs.generated_header())
    (directory / "ck_constants.h").write_text(cdefs.constants_header(constants))


class BuildExt(build_ext):
    def finalize_options(self) -> None:
        super().finalize_options()
        # The loader bakes in facts about the building interpreter (libpython path, built-in modules). Two
        # interpreters of one minor version (pyenv's and Debian's 3.11) share setuptools' in-tree build directory, so
        # objects must never be reused from an earlier build: always recompile (a few seconds).
        self.force = True

    def get_ext_filename(self, fullname: str) -> str:
        # distutils asks with the last name component, setuptools with the dotted name.
        if fullname == LOADER:
            return str(Path("pyhsm") / "libpyhsm.so")
        if fullname == LOADER.rsplit(".", 1)[1]:
            return "libpyhsm.so"
        return super().get_ext_filename(fullname)

    def get_libraries(self, ext: Extension) -> list[str]:
        if ext.name == LOADER:
            return list(ext.libraries)  # never libpython
        return super().get_libraries(ext)

    def build_extension(self, ext: Extension) -> None:
        generated = Path(self.build_temp) / "gen"
        generate_headers(generated)
        ext.include_dirs.append(str(generated))
        super().build_extension(ext)


libdir = sysconfig.get_config_var("LIBDIR") or ""
soname = sysconfig.get_config_var("INSTSONAME") or f"libpython{sys.version_info[0]}.{sys.version_info[1]}.so.1.0"
loader = Extension(
    LOADER,
    sources=["csrc/loader.c"],
    include_dirs=[sysconfig.get_paths()["include"]],
    define_macros=[
        ("PYHSM_LIBPYTHON", f'"{Path(libdir) / soname}"'),
        ("PYHSM_LIBPYTHON_SONAME", f'"{soname}"'),
        ("PYHSM_EXECUTABLE", f'"{sys.executable}"'),
        ("PYHSM_BUILTINS", '"' + " ".join(n for n in sys.builtin_module_names if n not in ("sys", "builtins")) + '"'),
    ],
    extra_compile_args=["-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers", "-O2"],
    extra_link_args=["-Wl,--version-script=csrc/exports.map", "-Wl,-Bsymbolic", "-Wl,-z,nodelete"],
    libraries=["dl", "pthread"],
    py_limited_api=False,
)

setup(
    ext_modules=[loader],
    cffi_modules=["pyhsm/pkcs11/build_abi.py:ffibuilder"],
    cmdclass={"build_ext": BuildExt},
)
