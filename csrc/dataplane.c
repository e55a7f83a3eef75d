/*
 * The native data plane: single-part operations that the Python engine has already authorised, run in C.
 *
 * Why it exists: one round trip into the Python engine costs more than the cryptography of a typical call (AES-GCM
 * over 4 KiB is ~1.3 us in libcrypto; C_EncryptInit + C_Encrypt through Python took ~25 us), so an HSM whose every
 * call enters Python cannot be faster than SoftHSM (docs/baselines.md). The engine stays the only authority:
 *
 *  - When the engine's C_*Init succeeds for (session, kind, mechanism, key), it *grants* that combination here with
 *    the key material (dp_grant). A later Init with the same combination starts a native operation without Python
 *    as long as nothing that could change the engine's decision happened since:
 *      . the epoch: every call forwarded to Python that can change state (login, logout, sessions, objects,
 *        tokens, users, ...) bumps it before and after it runs (dp_guard_before/after), which voids every grant;
 *      . the store stamp: the token's SQLite WAL-index header, which changes whenever any process commits to the
 *        token (the same check the engine makes before it uses an object, pyhsm/store/sqlite.py).
 *  - Keys that need CKA_ALWAYS_AUTHENTICATE or a quorum approval per use are never granted (the engine decides).
 *  - Only the ordinary path runs here: a single-part call with arguments the mechanism accepts. Anything else
 *    (NULL length pointer, input the mechanism refuses, a libcrypto failure, an Update after a native Init, ...)
 *    *materialises* the native operation (replays its Init in Python) and forwards the call, so error codes and the
 *    operation rules of section 5.2 come from the engine. The length convention (a length query keeps the computed
 *    output, CKR_BUFFER_TOO_SMALL keeps the operation) is kept here exactly as the engine keeps it.
 *  - The engine must never have an operation of a kind active while a native one of that kind starts: py_active
 *    records, per session and kind, that Python may have one (set when a forwarded Init succeeds, cleared when a
 *    forwarded single-part call ended it).
 *
 * The loader (csrc/loader.c) still knows no crypto: this file is part of the inner extension pyhsm._pkcs11, whose
 * function table points here for the hot functions and at generated guards (build_abi.py) for the others.
 * PYHSM_NATIVE=0 turns it off (every call then goes to Python).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ck_constants.h"
#include "dataplane.h"

#define DP_MAX_INPUT (1UL << 28) /* the ABI layer's MAX_BUFFER_LEN: above it the engine answers *_LEN_RANGE */
#define BUCKETS 1024          /* sessions with a native state; a handle whose bucket is taken just uses Python */
#define GRANTS 8              /* per session */
#define STAMP 48              /* bytes of the WAL-index header compared */
#define TOKENS 32

enum algo { ECDSA_RAW, RSA_PKCS_HASH, RSA_PKCS_RAW, RSA_PSS_HASH, RSA_PSS_RAW, HMAC, AES_GCM, AES_CBC_PAD, DIGEST };

struct native_mech {
    CK_MECHANISM_TYPE ckm;
    unsigned kinds; /* bit per DP_* kind */
    enum algo algo;
    const char *md; /* the hash, for the algorithms that have one */
};

#define SV ((1u << DP_SIGN) | (1u << DP_VERIFY))
static const struct native_mech MECHANISMS[] = {
    {CKM_ECDSA, SV, ECDSA_RAW, NULL},
    {CKM_RSA_PKCS, SV, RSA_PKCS_RAW, NULL},
    {CKM_SHA256_RSA_PKCS, SV, RSA_PKCS_HASH, "SHA256"},
    {CKM_SHA384_RSA_PKCS, SV, RSA_PKCS_HASH, "SHA384"},
    {CKM_SHA512_RSA_PKCS, SV, RSA_PKCS_HASH, "SHA512"},
    {CKM_RSA_PKCS_PSS, SV, RSA_PSS_RAW, NULL},
    {CKM_SHA256_RSA_PKCS_PSS, SV, RSA_PSS_HASH, "SHA256"},
    {CKM_SHA384_RSA_PKCS_PSS, SV, RSA_PSS_HASH, "SHA384"},
    {CKM_SHA512_RSA_PKCS_PSS, SV, RSA_PSS_HASH, "SHA512"},
    {CKM_SHA256_HMAC, SV, HMAC, "SHA256"},
    {CKM_SHA384_HMAC, SV, HMAC, "SHA384"},
    {CKM_SHA512_HMAC, SV, HMAC, "SHA512"},
    {CKM_AES_GCM, 1u << DP_ENCRYPT, AES_GCM, NULL},
    {CKM_AES_CBC_PAD, 1u << DP_ENCRYPT, AES_CBC_PAD, NULL},
    {CKM_SHA256, 1u << DP_DIGEST, DIGEST, "SHA256"},
    {CKM_SHA384, 1u << DP_DIGEST, DIGEST, "SHA384"},
    {CKM_SHA512, 1u << DP_DIGEST, DIGEST, "SHA512"},
};
#define MECHANISM_COUNT (sizeof MECHANISMS / sizeof MECHANISMS[0])

/* What the engine authorised, with everything libcrypto needs already set up. */
struct grant {
    int used; /* a live grant */
    int in_use; /* an active native operation runs on it: never replaced under it */
    unsigned kind;
    CK_MECHANISM_TYPE ckm;
    CK_OBJECT_HANDLE key;
    const struct native_mech *mech;
    uint64_t epoch;
    int token; /* index in tokens[] of the store whose stamp is checked; -1: none (digests) */
    unsigned char stamp[STAMP];
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *pctx; /* sign or verify context, initialised once */
    CK_RSA_PKCS_PSS_PARAMS pss_set; /* the PSS parameters pctx is configured with */
    int pss_configured;
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

struct session {
    pthread_mutex_t lock;
    CK_SESSION_HANDLE handle; /* 0: free */
    uint64_t valid_epoch;     /* the engine answered for this session at this epoch */
    CK_SESSION_INFO info;
    uint64_t info_epoch;
    unsigned py_active; /* bit per kind: the engine may have an operation of that kind */
    int next_grant;
    struct grant grants[GRANTS];
    struct native_op ops[DP_KINDS];
};

static struct session *buckets[BUCKETS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t epoch = 1;
static __thread uint64_t call_epoch; /* epoch when this thread's forwarded Init started; 0 when not in one */
static int enabled = -1;
static uint64_t native_calls;

static struct {
    char path[PATH_MAX];
    int fd;
} tokens[TOKENS];
static int token_count;

static uint64_t current_epoch(void) { return __atomic_load_n(&epoch, __ATOMIC_ACQUIRE); }
static void bump_epoch(void) { __atomic_add_fetch(&epoch, 1, __ATOMIC_ACQ_REL); }

static int is_enabled(void) {
    int on = __atomic_load_n(&enabled, __ATOMIC_RELAXED);
    if (on < 0) {
        const char *env = getenv("PYHSM_NATIVE");
        on = !(env && strcmp(env, "0") == 0);
        __atomic_store_n(&enabled, on, __ATOMIC_RELAXED);
    }
    return on;
}

/* ---- sessions --------------------------------------------------------------------------------------------- */

/* The session's entry, locked; NULL when it has none (and `create` is 0, or its bucket belongs to another). */
static struct session *session_locked(CK_SESSION_HANDLE handle, int create) {
    if (handle == 0) return NULL;
    struct session **bucket = &buckets[handle % BUCKETS];
    struct session *s = __atomic_load_n(bucket, __ATOMIC_ACQUIRE);
    if (!s) {
        if (!create) return NULL;
        pthread_mutex_lock(&table_lock);
        s = *bucket;
        if (!s && (s = calloc(1, sizeof *s)) != NULL) {
            pthread_mutex_init(&s->lock, NULL);
            __atomic_store_n(bucket, s, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&table_lock);
        if (!s) return NULL;
    }
    pthread_mutex_lock(&s->lock);
    if (s->handle == handle) return s;
    if (create && s->handle == 0) {
        s->handle = handle;
        return s;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void free_grant(struct grant *g) {
    EVP_PKEY_CTX_free(g->pctx);
    EVP_PKEY_free(g->pkey);
    EVP_MD_CTX_free(g->mdctx);
    EVP_MD_free(g->md);
    EVP_MAC_CTX_free(g->mac);
    EVP_CIPHER_CTX_free(g->cipher);
    memset(g, 0, sizeof *g);
}

static void end_op(struct native_op *op) {
    if (op->grant) op->grant->in_use--;
    if (op->pending) OPENSSL_clear_free(op->pending, op->pending_len);
    free(op->aad);
    memset(op, 0, sizeof *op);
}

/* Forget everything about a session (locked), e.g. when it closes. */
static void clear_session(struct session *s) {
    for (int k = 0; k < DP_KINDS; k++) end_op(&s->ops[k]);
    for (int i = 0; i < GRANTS; i++) free_grant(&s->grants[i]);
    s->handle = 0;
    s->valid_epoch = s->info_epoch = 0;
    s->py_active = 0;
    s->next_grant = 0;
}

/* ---- the store stamp -------------------------------------------------------------------------------------- */

static int token_index(const char *path) {
    int found = -1;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < token_count; i++)
        if (strcmp(tokens[i].path, path) == 0) found = i;
    if (found < 0 && token_count < TOKENS && strlen(path) < PATH_MAX) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            found = token_count;
            snprintf(tokens[found].path, PATH_MAX, "%s", path);
            __atomic_store_n(&tokens[found].fd, fd, __ATOMIC_RELEASE);
            token_count++;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

/* Has any process committed to the token since the engine checked the grant? Read with pread, never mmap (a
 * truncated -shm file would make a mapped read SIGBUS the host). A deleted -shm file (its last user closed it)
 * never matches again: the engine reopens it and grants anew. */
static int stamp_matches(const struct grant *g) {
    if (g->token < 0) return 1;
    int fd = __atomic_load_n(&tokens[g->token].fd, __ATOMIC_ACQUIRE);
    struct stat st;
    unsigned char now[STAMP];
    if (fstat(fd, &st) != 0 || st.st_nlink == 0) return 0;
    if (pread(fd, now, STAMP, 0) != STAMP) return 0;
    return memcmp(now, g->stamp, STAMP) == 0;
}

/* ---- grants ----------------------------------------------------------------------------------------------- */

static const struct native_mech *native_mechanism(unsigned kind, CK_MECHANISM_TYPE ckm) {
    for (size_t i = 0; i < MECHANISM_COUNT; i++)
        if (MECHANISMS[i].ckm == ckm && (MECHANISMS[i].kinds & (1u << kind))) return &MECHANISMS[i];
    return NULL;
}

int dp_supports(CK_ULONG kind, CK_MECHANISM_TYPE ckm) {
    return is_enabled() && kind < DP_KINDS && native_mechanism((unsigned)kind, ckm) != NULL;
}

static const EVP_CIPHER *aes_cipher(enum algo algo, size_t key_len) {
    if (algo == AES_GCM)
        return key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm() : key_len == 32 ? EVP_aes_256_gcm() : NULL;
    return key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc() : key_len == 32 ? EVP_aes_256_cbc() : NULL;
}

/* libcrypto objects for one grant, from the key material the engine hands over: DER PKCS#8 for private keys,
 * DER SubjectPublicKeyInfo for public keys, the raw value for secret keys. */
static int prepare(struct grant *g, const unsigned char *material, size_t len) {
    const struct native_mech *m = g->mech;
    const unsigned char *p = material;
    if (m->md && !(g->md = EVP_MD_fetch(NULL, m->md, NULL))) return 0;
    switch (m->algo) {
    case ECDSA_RAW:
    case RSA_PKCS_HASH:
    case RSA_PKCS_RAW:
    case RSA_PSS_HASH:
    case RSA_PSS_RAW: {
        int want = m->algo == ECDSA_RAW ? EVP_PKEY_EC : EVP_PKEY_RSA;
        g->pkey = g->kind == DP_SIGN ? d2i_AutoPrivateKey(NULL, &p, (long)len) : d2i_PUBKEY(NULL, &p, (long)len);
        if (!g->pkey || EVP_PKEY_get_base_id(g->pkey) != want) return 0;
        if (!(g->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, g->pkey, NULL))) return 0;
        if ((g->kind == DP_SIGN ? EVP_PKEY_sign_init(g->pctx) : EVP_PKEY_verify_init(g->pctx)) <= 0) return 0;
        /* The libcrypto in pyca/cryptography's wheel (the engine's) is newer than Debian's 3.0 and much faster for
         * RSA private keys above 2048 bits and for the curves other than P-256 (measured side by side: RSA-3072
         * sign 1,078/s there, 506/s here; P-384 sign 3,195/s there, 900/s here): those stay with the engine. */
        if (m->algo == ECDSA_RAW) {
            char curve[32];
            size_t curve_len = 0;
            if (!EVP_PKEY_get_utf8_string_param(g->pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve, &curve_len) ||
                strcmp(curve, "prime256v1") != 0)
                return 0;
            g->out_len = 2 * (size_t)((EVP_PKEY_get_bits(g->pkey) + 7) / 8);
            return 1;
        }
        if (g->kind == DP_SIGN && EVP_PKEY_get_bits(g->pkey) > 2048) return 0;
        g->out_len = (size_t)EVP_PKEY_get_size(g->pkey);
        if (m->algo == RSA_PKCS_HASH || m->algo == RSA_PKCS_RAW) {
            if (EVP_PKEY_CTX_set_rsa_padding(g->pctx, RSA_PKCS1_PADDING) <= 0) return 0;
            if (m->algo == RSA_PKCS_HASH && EVP_PKEY_CTX_set_signature_md(g->pctx, g->md) <= 0) return 0;
        }
        if (m->algo == RSA_PKCS_HASH || m->algo == RSA_PSS_HASH) return (g->mdctx = EVP_MD_CTX_new()) != NULL;
        return 1;
    }
    case HMAC: {
        EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!hmac) return 0;
        g->mac = EVP_MAC_CTX_new(hmac);
        EVP_MAC_free(hmac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)m->md, 0),
                               OSSL_PARAM_construct_end()};
        if (!g->mac || !EVP_MAC_init(g->mac, material, len, params)) return 0;
        g->out_len = (size_t)EVP_MD_get_size(g->md);
        return 1;
    }
    case AES_GCM:
    case AES_CBC_PAD: {
        const EVP_CIPHER *cipher = aes_cipher(m->algo, len);
        g->cipher = EVP_CIPHER_CTX_new();
        return cipher && g->cipher && EVP_EncryptInit_ex(g->cipher, cipher, NULL, material, NULL) == 1;
    }
    case DIGEST:
        g->out_len = (size_t)EVP_MD_get_size(g->md);
        return (g->mdctx = EVP_MD_CTX_new()) != NULL;
    }
    return 0;
}

int dp_grant(CK_SESSION_HANDLE handle, CK_ULONG kind, CK_MECHANISM_TYPE ckm, CK_OBJECT_HANDLE key,
             const unsigned char *material, size_t material_len, const char *stamp_path,
             const unsigned char *stamp) {
    uint64_t at = call_epoch;
    if (!is_enabled() || at == 0 || at != current_epoch() || kind >= DP_KINDS) return 0;
    struct grant fresh = {.used = 1, .kind = (unsigned)kind, .ckm = ckm, .key = key, .epoch = at, .token = -1};
    if (!(fresh.mech = native_mechanism((unsigned)kind, ckm))) return 0;
    if (stamp_path) {
        if ((fresh.token = token_index(stamp_path)) < 0) return 0;
        memcpy(fresh.stamp, stamp, STAMP);
    }
    if (!prepare(&fresh, material, material_len)) {
        ERR_clear_error(); /* the error queue is shared with the host */
        free_grant(&fresh);
        return -1; /* never for this key: the engine stops offering it */
    }
    struct session *s = session_locked(handle, 1);
    struct grant *slot = NULL;
    if (s && at == current_epoch()) {
        for (int i = 0; i < GRANTS && !slot; i++) /* the same combination: replace it */
            if (s->grants[i].used && !s->grants[i].in_use && s->grants[i].kind == kind && s->grants[i].ckm == ckm &&
                s->grants[i].key == key)
                slot = &s->grants[i];
        for (int tries = 0; tries < GRANTS && !slot; tries++) { /* else round robin over those not in use */
            struct grant *g = &s->grants[s->next_grant];
            s->next_grant = (s->next_grant + 1) % GRANTS;
            if (!g->in_use) slot = g;
        }
    }
    if (slot) {
        free_grant(slot);
        *slot = fresh;
        s->valid_epoch = at;
    } else {
        free_grant(&fresh);
    }
    if (s) pthread_mutex_unlock(&s->lock);
    return slot != NULL;
}

/* ---- starting a native operation -------------------------------------------------------------------------- */

/* Copy the mechanism parameters the native code accepts; 0 for anything else (the engine then decides). */
static int read_params(const struct grant *g, const CK_MECHANISM *mech, struct native_op *op) {
    switch (g->mech->algo) {
    case AES_GCM: {
        CK_GCM_PARAMS p;
        if (!mech->pParameter || mech->ulParameterLen != sizeof p) return 0;
        memcpy(&p, mech->pParameter, sizeof p);
        if (!p.pIv || p.ulIvLen != 12) return 0;
        if (p.ulTagBits != 128 && p.ulTagBits != 120 && p.ulTagBits != 112 && p.ulTagBits != 104 &&
            p.ulTagBits != 96 && p.ulTagBits != 64 && p.ulTagBits != 32)
            return 0;
        if (p.ulAADLen && (!p.pAAD || p.ulAADLen > DP_MAX_INPUT)) return 0;
        memcpy(op->iv, p.pIv, 12);
        op->iv_len = 12, op->iv_bits = p.ulIvBits, op->tag_bits = p.ulTagBits;
        if (p.ulAADLen) {
            if (!(op->aad = malloc(p.ulAADLen))) return 0;
            memcpy(op->aad, p.pAAD, p.ulAADLen);
        }
        op->aad_len = p.ulAADLen;
        op->has_param = 1;
        return 1;
    }
    case AES_CBC_PAD:
        if (!mech->pParameter || mech->ulParameterLen != 16) return 0;
        memcpy(op->iv, mech->pParameter, 16);
        op->iv_len = 16;
        op->has_param = 1;
        return 1;
    case RSA_PSS_HASH:
    case RSA_PSS_RAW:
        if (!mech->pParameter || mech->ulParameterLen != sizeof op->pss) return 0;
        memcpy(&op->pss, mech->pParameter, sizeof op->pss);
        op->has_param = 1;
        return 1;
    default:
        return mech->pParameter == NULL && mech->ulParameterLen == 0;
    }
}

int dp_start(unsigned kind, CK_SESSION_HANDLE handle, const CK_MECHANISM *pMechanism, CK_OBJECT_HANDLE key) {
    if (!pMechanism || !is_enabled()) return DP_FORWARD;
    CK_MECHANISM mech;
    memcpy(&mech, pMechanism, sizeof mech); /* hosts may pass misaligned pointers */
    struct session *s = session_locked(handle, 0);
    if (!s) return DP_FORWARD;
    int result = DP_FORWARD;
    uint64_t now = current_epoch();
    struct native_op *op = &s->ops[kind];
    if (op->active) {
        result = DP_ACTIVE;
    } else if (!(s->py_active & (1u << kind))) {
        for (int i = 0; i < GRANTS; i++) {
            struct grant *g = &s->grants[i];
            if (!g->used || g->epoch != now || g->kind != kind || g->ckm != mech.mechanism || g->key != key) continue;
            if (stamp_matches(g) && read_params(g, &mech, op)) {
                op->active = 1, op->grant = g, op->key = key, op->ckm = mech.mechanism;
                g->in_use++;
                result = DP_STARTED;
            } else {
                end_op(op);
            }
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (result == DP_STARTED) __atomic_add_fetch(&native_calls, 1, __ATOMIC_RELAXED);
    return result;
}

/* ---- the single-part calls -------------------------------------------------------------------------------- */

/* Raw ECDSA (r || s, each the order's length) from libcrypto's DER signature. */
static int ecdsa_raw(const unsigned char *der, size_t der_len, unsigned char *out, size_t half) {
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!sig) return 0;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, out, (int)half) == (int)half && BN_bn2binpad(s, out + half, (int)half) == (int)half;
    ECDSA_SIG_free(sig);
    return ok;
}

static unsigned char *ecdsa_der(const unsigned char *raw, size_t half, size_t *der_len) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)half, NULL), *s = BN_bin2bn(raw + half, (int)half, NULL);
    unsigned char *der = NULL;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s)) {
        r = s = NULL; /* owned by sig now */
        int n = i2d_ECDSA_SIG(sig, &der);
        *der_len = n > 0 ? (size_t)n : 0;
        if (n <= 0) der = NULL;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return der;
}

/* Hash the input for the hash-then-sign mechanisms. */
static int hash(struct grant *g, const unsigned char *data, size_t len, unsigned char *out, size_t *out_len) {
    unsigned int n = 0;
    if (EVP_DigestInit_ex(g->mdctx, g->md, NULL) != 1 || EVP_DigestUpdate(g->mdctx, data, len) != 1 ||
        EVP_DigestFinal_ex(g->mdctx, out, &n) != 1)
        return 0;
    *out_len = n;
    return 1;
}

static const char *md_name(CK_MECHANISM_TYPE hash_ckm) {
    switch (hash_ckm) {
    case CKM_SHA256: return "SHA256";
    case CKM_SHA384: return "SHA384";
    case CKM_SHA512: return "SHA512";
    default: return NULL;
    }
}

static CK_MECHANISM_TYPE mgf_hash(CK_ULONG mgf) {
    switch (mgf) {
    case CKG_MGF1_SHA256: return CKM_SHA256;
    case CKG_MGF1_SHA384: return CKM_SHA384;
    case CKG_MGF1_SHA512: return CKM_SHA512;
    default: return 0;
    }
}

/* PSS parameters on the grant's context; only what the engine accepts for this mechanism (else 0: forward). */
static int configure_pss(struct grant *g, const CK_RSA_PKCS_PSS_PARAMS *p, size_t *hash_len) {
    const char *name = md_name(p->hashAlg), *mgf = md_name(mgf_hash(p->mgf));
    if (!name || !mgf) return 0;
    if (g->mech->md && strcmp(g->mech->md, name) != 0) return 0; /* SHAx_RSA_PKCS_PSS: hashAlg must be SHAx */
    EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
    if (!md) return 0;
    *hash_len = (size_t)EVP_MD_get_size(md);
    EVP_MD_free(md);
    size_t max_salt = g->out_len - *hash_len - 2; /* emLen - hLen - 2, emLen = k for keys of 8n bits */
    if (p->sLen > max_salt || g->out_len < *hash_len + 2) return 0;
    if (g->pss_configured && memcmp(&g->pss_set, p, sizeof *p) == 0) return 1;
    EVP_MD *sig_md = EVP_MD_fetch(NULL, name, NULL), *mgf_md = EVP_MD_fetch(NULL, mgf, NULL);
    int ok = sig_md && mgf_md && EVP_PKEY_CTX_set_rsa_padding(g->pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_signature_md(g->pctx, sig_md) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(g->pctx, mgf_md) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(g->pctx, (int)p->sLen) > 0;
    EVP_MD_free(sig_md);
    EVP_MD_free(mgf_md);
    g->pss_configured = ok;
    if (ok) g->pss_set = *p;
    return ok;
}

/* The output of a native sign / encrypt / digest, or 0 when the engine must answer this input. */
static int compute(struct native_op *op, const unsigned char *data, size_t len, unsigned char **out, size_t *out_len) {
    struct grant *g = op->grant;
    unsigned char digest[EVP_MAX_MD_SIZE];
    size_t n;
    int ok = 0;
    switch (g->mech->algo) {
    case ECDSA_RAW: {
        size_t half = g->out_len / 2, der_len = (size_t)EVP_PKEY_get_size(g->pkey);
        unsigned char *der = malloc(der_len);
        if (len == 0 || !der || !(*out = malloc(g->out_len))) {
            free(der);
            return 0;
        }
        ok = EVP_PKEY_sign(g->pctx, der, &der_len, data, len < half ? len : half) == 1 &&
             ecdsa_raw(der, der_len, *out, half);
        free(der);
        *out_len = g->out_len;
        break;
    }
    case RSA_PKCS_HASH:
    case RSA_PKCS_RAW:
    case RSA_PSS_HASH:
    case RSA_PSS_RAW: {
        const unsigned char *tbs = data;
        size_t tbs_len = len, hash_len = 0;
        if (g->mech->algo == RSA_PKCS_RAW && len > g->out_len - 11) return 0;
        if (g->mech->algo == RSA_PSS_HASH || g->mech->algo == RSA_PSS_RAW) {
            if (!configure_pss(g, &op->pss, &hash_len)) return 0;
            if (g->mech->algo == RSA_PSS_RAW && len != hash_len) return 0;
        }
        if (g->mech->algo == RSA_PKCS_HASH || g->mech->algo == RSA_PSS_HASH) {
            if (!hash(g, data, len, digest, &tbs_len)) return 0;
            tbs = digest;
        }
        if (!(*out = malloc(g->out_len))) return 0;
        *out_len = g->out_len;
        ok = EVP_PKEY_sign(g->pctx, *out, out_len, tbs, tbs_len) == 1;
        break;
    }
    case HMAC:
        if (!(*out = malloc(g->out_len))) return 0;
        ok = EVP_MAC_init(g->mac, NULL, 0, NULL) && EVP_MAC_update(g->mac, data, len) &&
             EVP_MAC_final(g->mac, *out, out_len, g->out_len);
        break;
    case AES_GCM:
    case AES_CBC_PAD: {
        int part = 0, last = 0;
        size_t tag = op->tag_bits / 8;
        if (!(*out = malloc(len + 16 + 16))) return 0;
        ok = EVP_EncryptInit_ex(g->cipher, NULL, NULL, NULL, op->iv) == 1 &&
             (!op->aad_len || EVP_EncryptUpdate(g->cipher, NULL, &part, op->aad, (int)op->aad_len) == 1) &&
             EVP_EncryptUpdate(g->cipher, *out, &part, data, (int)len) == 1 &&
             EVP_EncryptFinal_ex(g->cipher, *out + part, &last) == 1;
        n = (size_t)part + (size_t)last;
        if (ok && g->mech->algo == AES_GCM)
            ok = EVP_CIPHER_CTX_ctrl(g->cipher, EVP_CTRL_GCM_GET_TAG, (int)tag, *out + n) == 1, n += tag;
        *out_len = n;
        break;
    }
    case DIGEST: {
        if (!(*out = malloc(g->out_len))) return 0;
        ok = hash(g, data, len, *out, out_len);
        break;
    }
    }
    if (!ok) {
        ERR_clear_error();
        free(*out);
        *out = NULL;
    }
    return ok;
}

/* C_Verify: VALID, INVALID, or DEFER when the engine must answer (wrong lengths, odd input). */
enum verdict { DEFER, VALID, INVALID };
static enum verdict check(struct native_op *op, const unsigned char *data, size_t len, const unsigned char *sig,
                   size_t sig_len) {
    struct grant *g = op->grant;
    unsigned char digest[EVP_MAX_MD_SIZE];
    size_t hash_len = 0, tbs_len = len;
    const unsigned char *tbs = data;
    int verdict = -1;
    if (sig_len != g->out_len) return DEFER;
    switch (g->mech->algo) {
    case ECDSA_RAW: {
        size_t der_len = 0, half = g->out_len / 2;
        if (len == 0) return DEFER;
        unsigned char *der = ecdsa_der(sig, half, &der_len);
        if (!der) return DEFER;
        verdict = EVP_PKEY_verify(g->pctx, der, der_len, data, len < half ? len : half);
        OPENSSL_free(der);
        break;
    }
    case RSA_PKCS_HASH:
    case RSA_PKCS_RAW:
    case RSA_PSS_HASH:
    case RSA_PSS_RAW:
        if (g->mech->algo == RSA_PKCS_RAW && len > g->out_len - 11) return DEFER;
        if (g->mech->algo == RSA_PSS_HASH || g->mech->algo == RSA_PSS_RAW) {
            if (!configure_pss(g, &op->pss, &hash_len)) return DEFER;
            if (g->mech->algo == RSA_PSS_RAW && len != hash_len) return DEFER;
        }
        if (g->mech->algo == RSA_PKCS_HASH || g->mech->algo == RSA_PSS_HASH) {
            if (!hash(g, data, len, digest, &tbs_len)) return DEFER;
            tbs = digest;
        }
        verdict = EVP_PKEY_verify(g->pctx, sig, sig_len, tbs, tbs_len);
        break;
    case HMAC: {
        unsigned char *mac = NULL;
        size_t mac_len = 0;
        if (!compute(op, data, len, &mac, &mac_len)) return DEFER;
        verdict = CRYPTO_memcmp(mac, sig, sig_len) == 0;
        OPENSSL_clear_free(mac, mac_len);
        break;
    }
    default:
        return DEFER;
    }
    ERR_clear_error();
    /* libcrypto: 1 valid; 0 a well-formed signature that does not verify; < 0 an error, which the engine decides */
    return verdict == 1 ? VALID : verdict == 0 ? INVALID : DEFER;
}

/* Detach the native operation of `kind` from the session (locked; unlocked on return) and start it again in
 * the engine, which then owns it. */
static void materialise(struct session *s, unsigned kind, CK_SESSION_HANDLE handle) {
    struct native_op op = s->ops[kind];
    if (op.grant) op.grant->in_use--;
    memset(&s->ops[kind], 0, sizeof s->ops[kind]);
    s->py_active |= 1u << kind;
    pthread_mutex_unlock(&s->lock);
    CK_GCM_PARAMS gcm = {op.iv, op.iv_len, op.iv_bits, op.aad, op.aad_len, op.tag_bits};
    CK_MECHANISM mech = {op.ckm, NULL, 0};
    if (op.has_param) {
        if (op.ckm == CKM_AES_GCM) mech.pParameter = &gcm, mech.ulParameterLen = sizeof gcm;
        else if (op.ckm == CKM_AES_CBC_PAD) mech.pParameter = op.iv, mech.ulParameterLen = 16;
        else mech.pParameter = &op.pss, mech.ulParameterLen = sizeof op.pss;
    }
    switch (kind) {
    case DP_ENCRYPT: pyhsm_C_EncryptInit(handle, &mech, op.key); break;
    case DP_DIGEST: pyhsm_C_DigestInit(handle, &mech); break;
    case DP_SIGN: pyhsm_C_SignInit(handle, &mech, op.key); break;
    case DP_VERIFY: pyhsm_C_VerifyInit(handle, &mech, op.key); break;
    }
    if (op.pending) OPENSSL_clear_free(op.pending, op.pending_len);
    free(op.aad);
}

int dp_single(unsigned kind, CK_SESSION_HANDLE handle, const unsigned char *data, CK_ULONG len, unsigned char *out,
              CK_ULONG *out_len, CK_RV *rv) {
    struct session *s = session_locked(handle, 0);
    if (!s) return 0;
    struct native_op *op = &s->ops[kind];
    if (!op->active) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    if (out_len && (data || !len) && len <= DP_MAX_INPUT) {
        if (!op->has_pending) {
            unsigned char *result = NULL;
            size_t result_len = 0;
            if (compute(op, data, len, &result, &result_len)) {
                op->pending = result, op->pending_len = result_len, op->has_pending = 1;
            }
        }
        if (op->has_pending) {
            CK_ULONG capacity, needed = op->pending_len;
            memcpy(&capacity, out_len, sizeof capacity);
            memcpy(out_len, &needed, sizeof needed);
            if (!out) {
                *rv = CKR_OK; /* a length query keeps the operation and its output */
            } else if (capacity < needed) {
                *rv = CKR_BUFFER_TOO_SMALL;
            } else {
                memcpy(out, op->pending, needed);
                *rv = CKR_OK;
                end_op(op);
            }
            pthread_mutex_unlock(&s->lock);
            __atomic_add_fetch(&native_calls, 1, __ATOMIC_RELAXED);
            return 1;
        }
    }
    materialise(s, kind, handle);
    return 0;
}

int dp_verify(CK_SESSION_HANDLE handle, const unsigned char *data, CK_ULONG len, const unsigned char *sig,
              CK_ULONG sig_len, CK_RV *rv) {
    struct session *s = session_locked(handle, 0);
    if (!s) return 0;
    struct native_op *op = &s->ops[DP_VERIFY];
    if (!op->active) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    enum verdict verdict = DEFER;
    if ((data || !len) && sig && len <= DP_MAX_INPUT) verdict = check(op, data, len, sig, sig_len);
    if (verdict != DEFER) {
        *rv = verdict == VALID ? CKR_OK : CKR_SIGNATURE_INVALID;
        end_op(op); /* C_Verify always ends the operation */
        pthread_mutex_unlock(&s->lock);
        __atomic_add_fetch(&native_calls, 1, __ATOMIC_RELAXED);
        return 1;
    }
    materialise(s, DP_VERIFY, handle);
    return 0;
}

/* ---- bookkeeping around calls the engine answers ---------------------------------------------------------- */

void dp_forwarded_init(unsigned kind, CK_SESSION_HANDLE handle, CK_RV rv) {
    call_epoch = 0;
    if (rv != CKR_OK) return;
    struct session *s = session_locked(handle, 1);
    if (s) {
        s->py_active |= 1u << kind;
        pthread_mutex_unlock(&s->lock);
    }
}

void dp_begin_call(void) { call_epoch = current_epoch(); }
void dp_end_call(void) { call_epoch = 0; }

/* After a forwarded single-part call: did it end the engine's operation (section 5.2)? */
void dp_forwarded_single(unsigned kind, CK_SESSION_HANDLE handle, CK_RV rv, int had_output_buffer) {
    int ended = kind == DP_VERIFY || (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) || (rv == CKR_OK && had_output_buffer);
    if (!ended) return;
    struct session *s = session_locked(handle, 0);
    if (s) {
        s->py_active &= ~(1u << kind);
        pthread_mutex_unlock(&s->lock);
    }
}

int dp_session_info(CK_SESSION_HANDLE handle, CK_SESSION_INFO *info) {
    if (!is_enabled()) return 0;
    struct session *s = session_locked(handle, 0);
    if (!s) return 0;
    int hit = s->info_epoch == current_epoch();
    if (hit) memcpy(info, &s->info, sizeof s->info);
    pthread_mutex_unlock(&s->lock);
    return hit;
}

/* The engine answered C_GetSessionInfo (with `info`) or C_GenerateRandom for a session: it is open. */
void dp_session_seen(CK_SESSION_HANDLE handle, const CK_SESSION_INFO *info) {
    uint64_t at = call_epoch;
    call_epoch = 0;
    if (!is_enabled() || at == 0) return;
    struct session *s = session_locked(handle, 1);
    if (!s) return;
    if (at == current_epoch()) {
        s->valid_epoch = at;
        if (info) memcpy(&s->info, info, sizeof s->info), s->info_epoch = at;
    }
    pthread_mutex_unlock(&s->lock);
}

int dp_random(CK_SESSION_HANDLE handle, unsigned char *out, CK_ULONG len, CK_RV *rv) {
    if (!is_enabled() || (!out && len) || len > DP_MAX_INPUT || len > INT_MAX) return 0;
    struct session *s = session_locked(handle, 0);
    if (!s) return 0;
    int open = s->valid_epoch == current_epoch();
    pthread_mutex_unlock(&s->lock);
    if (!open) return 0;
    *rv = !len || RAND_bytes(out, (int)len) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
    ERR_clear_error();
    return 1;
}

/* Before a guarded call (one the engine answers that is not a hot call of its own). */
CK_RV dp_guard_before(unsigned flags, CK_SESSION_HANDLE handle) {
    if (flags & DP_MUTATES) bump_epoch();
    if (flags & DP_ALL) { /* login state or every session changes: hand every native operation to the engine */
        for (int b = 0; b < BUCKETS; b++) {
            struct session *s = __atomic_load_n(&buckets[b], __ATOMIC_ACQUIRE);
            if (!s) continue;
            pthread_mutex_lock(&s->lock);
            CK_SESSION_HANDLE h = s->handle;
            for (unsigned k = 0; k < DP_KINDS; k++) {
                if (!s->ops[k].active) continue;
                materialise(s, k, h); /* unlocks */
                pthread_mutex_lock(&s->lock);
            }
            if (s->handle == h) clear_session(s);
            pthread_mutex_unlock(&s->lock);
        }
        return 0;
    }
    struct session *s = (flags & (DP_CLOSES | DP_OPS)) ? session_locked(handle, 0) : NULL;
    if (!s) return 0;
    if (flags & DP_CLOSES) {
        clear_session(s);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    unsigned update_kinds = (flags >> DP_UPDATE_SHIFT) & ((1u << DP_KINDS) - 1);
    for (unsigned k = 0; k < DP_KINDS; k++) {
        if (!s->ops[k].active) continue;
        if ((update_kinds & (1u << k)) && s->ops[k].has_pending) {
            /* an Update or Final after a single-part length query: CKR_OPERATION_ACTIVE, and the operation ends */
            end_op(&s->ops[k]);
            pthread_mutex_unlock(&s->lock);
            return CKR_OPERATION_ACTIVE;
        }
        materialise(s, k, handle); /* unlocks */
        pthread_mutex_lock(&s->lock);
        if (s->handle != handle) break;
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void dp_guard_after(unsigned flags, CK_SESSION_HANDLE handle, CK_RV rv) {
    if (flags & DP_MUTATES) bump_epoch();
    unsigned starts = (flags >> DP_STARTS_SHIFT) & ((1u << DP_KINDS) - 1);
    if (starts && rv == CKR_OK) { /* an Init (or SetOperationState) the engine handles itself */
        struct session *s = session_locked(handle, 1);
        if (s) {
            s->py_active |= starts;
            pthread_mutex_unlock(&s->lock);
        }
    }
}

/* A forked child starts afresh (the parent's threads may have held locks at fork time: make new ones). */
void dp_reset(void) {
    bump_epoch();
    for (int b = 0; b < BUCKETS; b++) {
        struct session *s = buckets[b];
        if (!s) continue;
        pthread_mutex_init(&s->lock, NULL);
        for (int k = 0; k < DP_KINDS; k++) s->ops[k].grant = NULL, end_op(&s->ops[k]);
        clear_session(s);
    }
    pthread_mutex_init(&table_lock, NULL);
}

unsigned long long dp_native_calls(void) { return __atomic_load_n(&native_calls, __ATOMIC_RELAXED); }
