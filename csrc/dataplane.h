/* The native data plane (dataplane.c): what its entry points (dataplane_calls.c) and the generated guards of the
 * inner extension (pyhsm/pkcs11/build_abi.py) call. */
#pragma once
#include "pyhsm_gen.h"

/* Operation kinds; pyhsm/pkcs11/native_guards.py (KINDS) lists the same numbers for the Python side. */
enum { DP_ENCRYPT, DP_DECRYPT, DP_DIGEST, DP_SIGN, DP_VERIFY, DP_KINDS };

/* dp_start's answers */
enum { DP_FORWARD, DP_STARTED, DP_ACTIVE };

/* Guard flags, per function the engine answers (generated from pyhsm/pkcs11/native_guards.py). */
#define DP_MUTATES 0x1u      /* may change what the engine decided: voids every grant, before and after */
#define DP_ALL 0x2u          /* changes login state or every session: native operations go back to the engine */
#define DP_CLOSES 0x4u       /* closes its session */
#define DP_OPS 0x8u          /* touches its session's operations: native ones go back to the engine first */
#define DP_UPDATE_SHIFT 8    /* bits 8..12: kinds this Update/Final continues */
#define DP_STARTS_SHIFT 16   /* bits 16..20: kinds this call may start in the engine */

/* The engine's implementations (cffi extern "Python+C" functions of pyhsm._pkcs11). */
#define PYHSM_DECLARE(name, params, args) CK_RV pyhsm_##name params;
PYHSM_V2_FUNCTIONS(PYHSM_DECLARE)
PYHSM_V3_FUNCTIONS(PYHSM_DECLARE)
#undef PYHSM_DECLARE

int dp_start(unsigned kind, CK_SESSION_HANDLE handle, const CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key);
int dp_single(unsigned kind, CK_SESSION_HANDLE handle, const unsigned char *data, CK_ULONG len, unsigned char *out,
              CK_ULONG *out_len, CK_RV *rv);
int dp_verify(CK_SESSION_HANDLE handle, const unsigned char *data, CK_ULONG len, const unsigned char *sig,
              CK_ULONG sig_len, CK_RV *rv);
int dp_random(CK_SESSION_HANDLE handle, unsigned char *out, CK_ULONG len, CK_RV *rv);
int dp_session_info(CK_SESSION_HANDLE handle, CK_SESSION_INFO *info);
void dp_begin_call(void);
void dp_end_call(void);
void dp_forwarded_init(unsigned kind, CK_SESSION_HANDLE handle, CK_RV rv);
void dp_forwarded_single(unsigned kind, CK_SESSION_HANDLE handle, CK_RV rv, int had_output_buffer);
void dp_session_seen(CK_SESSION_HANDLE handle, const CK_SESSION_INFO *info);
CK_RV dp_guard_before(unsigned flags, CK_SESSION_HANDLE handle);
void dp_guard_after(unsigned flags, CK_SESSION_HANDLE handle, CK_RV rv);

/* Called by the engine (declared to cffi in build_abi.py). dp_grant: 1 taken, 0 not now, -1 never this key. */
int dp_supports(CK_ULONG kind, CK_MECHANISM_TYPE mechanism);
int dp_grant(CK_SESSION_HANDLE handle, CK_ULONG kind, CK_MECHANISM_TYPE mechanism, CK_OBJECT_HANDLE key,
             const unsigned char *material, size_t material_len, const char *stamp_path, const unsigned char *stamp);
void dp_reset(void);
unsigned long long dp_native_calls(void);
