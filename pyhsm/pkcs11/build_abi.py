"""cffi builder of the inner extension `pyhsm._pkcs11`: one `extern "Python+C"` function per C_* and the table
of them that the C loader forwards to."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from cffi import FFI

# Loaded by path: at build time the pyhsm package itself is not importable yet.
_spec = importlib.util.spec_from_file_location("_pyhsm_cdefs", Path(__file__).with_name("cdefs.py"))
assert _spec is not None and _spec.loader is not None
cdefs = importlib.util.module_from_spec(_spec)
sys.modules["_pyhsm_cdefs"] = cdefs
_spec.loader.exec_module(cdefs)

_externs = "\n".join(f"CK_RV pyhsm_{name}({args});" for name, args in cdefs.FUNCTIONS)
_table = ",\n    ".join(f"pyhsm_{name}" for name in cdefs.FUNCTION_NAMES)

ffibuilder = FFI()
ffibuilder.cdef(cdefs.header() + "\n".join(
    [f'extern "Python+C" CK_RV pyhsm_{name}({args});' for name, args in cdefs.FUNCTIONS]
    + ["CK_FUNCTION_LIST_3_0 *pyhsm_inner_table(void);"]))
ffibuilder.set_source("pyhsm._pkcs11", f"""
{cdefs.header()}
{_externs}
static CK_FUNCTION_LIST_3_0 pyhsm_table = {{
    {{3, 0}},
    {_table}
}};
CK_FUNCTION_LIST_3_0 *pyhsm_inner_table(void) {{ return &pyhsm_table; }}
""", py_limited_api=False)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
