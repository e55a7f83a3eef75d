/* The cryptography of the native data plane (dataplane_crypto.c), shared with its bookkeeping (dataplane.c):
 * what a grant holds and what a native operation keeps between calls. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dataplane.h"

#define DP_MAX_INPUT (1UL << 28) /* the ABI layer's MAX_BUFFER_LEN: above it the engine answers *_LEN_RANGE */
#define STAMP 48                 /* bytes of the WAL-index header compared */

enum algo { ECDSA_RAW, ECDSA_HASH, RSA_PKCS_HASH, RSA_PKCS_RAW, RSA_PSS_HASH, RSA_PSS_RAW, HMAC, AES_GCM, AES_CBC_PAD, DIGEST };

struct native_mech {
    CK_MECHANISM_TYPE ckm;
    unsigned kinds; /* bit per DP_* kind */
    enum algo algo;
    const char *md; /* the hash, for the algorithms that have one */
};

struct token_shm;

/* What the engine authorised, with everything libcrypto needs already set up. */
struct grant {
    int used; /* a live grant */
    int in_use; /* an active native operation runs on it: never replaced under it */
    unsigned kind;
    CK_MECHANISM_TYPE ckm;
    CK_OBJECT_HANDLE key;
    const struct native_mech *mech;
    uint64_t epoch;
    struct token_shm *shm; /* the -shm file of the store whose stamp is checked; NULL: none (digests) */
    unsigned char stamp[STAMP];
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *pctx; /* sign or verify context, initialised once */
    CK_RSA_PKCS_PSS_PARAMS pss_set; /* the PSS parameters pctx is configured with */
    int pss_configured;
    size_t pss_hash_len;
    EVP_MD *md;
    EVP_MD_CTX *mdctx;
    EVP_MAC_CTX *mac;
    EVP_CIPHER_CTX *cipher;
    size_t out_len; /* signature / MAC / digest length */
};

/* A native operation: its Init's arguments (to replay it in Python) and the output kept for the next call. */
struct native_op {
    int active;
    struct grant *grant;
    CK_OBJECT_HANDLE key;
    CK_MECHANISM_TYPE ckm;
    unsigned char iv[16];
    CK_ULONG iv_len, iv_bits, tag_bits;
    unsigned char *aad;
    CK_ULONG aad_len;
    CK_RSA_PKCS_PSS_PARAMS pss;
    int has_param;
    unsigned char *pending;
    CK_ULONG pending_len;
    int has_pending;
};


enum verdict { DEFER, VALID, INVALID };

const struct native_mech *native_mechanism(unsigned kind, CK_MECHANISM_TYPE ckm);
int prepare(struct grant *g, const unsigned char *material, size_t len);
void free_grant(struct grant *g);
int read_params(const struct grant *g, const CK_MECHANISM *mech, struct native_op *op);
int compute(struct native_op *op, const unsigned char *data, size_t len, unsigned char **out, size_t *out_len);
enum verdict check(struct native_op *op, const unsigned char *data, size_t len, const unsigned char *sig,
                   size_t sig_len);
