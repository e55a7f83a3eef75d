"""cffi builder of the inner extension `pyhsm._pkcs11`: one `extern "Python+C"` function per C_*, the native data
plane (csrc/dataplane.c) and the table the C loader forwards to.

Table entries: the hot functions go to csrc/dataplane_calls.c (native first, the engine otherwise); every other one
to a generated guard that tells the data plane about the call (native_guards.py) around the engine's answer.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from cffi import FFI

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    """By path: at build time the pyhsm package itself is not importable yet."""
    spec = importlib.util.spec_from_file_location(f"_pyhsm_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cdefs = _load("cdefs")
guards = _load("native_guards")

# The data plane's functions the engine calls (csrc/dataplane.h).
_ENGINE_API = """
int dp_supports(CK_ULONG kind, CK_MECHANISM_TYPE mechanism);
int dp_grant(CK_SESSION_HANDLE handle, CK_ULONG kind, CK_MECHANISM_TYPE mechanism, CK_OBJECT_HANDLE key,
             const unsigned char *material, size_t material_len, const char *stamp_path, const unsigned char *stamp);
void dp_reset(void);
unsigned long long dp_native_calls(void);
"""


def _guard(name: str, args: str) -> str:
    names = cdefs.arg_names(args)
    session = names[0] if args.startswith("CK_SESSION_HANDLE ") else "0"
    flags = guards.guard_flags(name, session != "0")
    return f"""static CK_RV guard_{name}({args}) {{
    CK_RV early = dp_guard_before(0x{flags:x}u, {session});
    if (early) return early;
    CK_RV rv = pyhsm_{name}({', '.join(names)});
    dp_guard_after(0x{flags:x}u, {session}, rv);
    return rv;
}}"""


_hot = set(guards.HOT)
_guards = "\n".join(_guard(name, args) for name, args in cdefs.FUNCTIONS if name not in _hot)
_hot_decls = "\n".join(f"CK_RV dp_{name}({args});" for name, args in cdefs.FUNCTIONS if name in _hot)
_table = ",\n    ".join(f"dp_{name}" if name in _hot else f"guard_{name}" for name in cdefs.FUNCTION_NAMES)

ffibuilder = FFI()
ffibuilder.cdef(cdefs.header() + "\n".join(
    [f'extern "Python+C" CK_RV pyhsm_{name}({args});' for name, args in cdefs.FUNCTIONS]
    + ["CK_FUNCTION_LIST_3_0 *pyhsm_inner_table(void);", _ENGINE_API]))
ffibuilder.set_source("pyhsm._pkcs11", f"""
#include "dataplane.h"
{_hot_decls}
{_guards}
static CK_FUNCTION_LIST_3_0 pyhsm_table = {{
    {{3, 0}},
    {_table}
}};
CK_FUNCTION_LIST_3_0 *pyhsm_inner_table(void) {{ return &pyhsm_table; }}
""", sources=["csrc/dataplane.c", "csrc/dataplane_crypto.c", "csrc/dataplane_calls.c"], include_dirs=["csrc"],
    libraries=["crypto"], extra_compile_args=["-Wall", "-Wno-unused-function", "-O2"], py_limited_api=False)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
