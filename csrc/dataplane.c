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

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "ck_constants.h"
#include "dataplane_crypto.h"

#define BUCKETS 1024 /* chains of the sessions with a native state, by handle */
#define GRANTS 8     /* per session */
#define TOKENS 4096  /* token stores whose stamp is checked */

struct session {
    pthread_mutex_t lock;
    struct session *next;     /* the next entry of its bucket's chain */
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

/* The -shm files whose stamps grants check, one per token store this process used; never freed, so a grant can
 * point at its entry without a lock. A process that has used TOKENS stores gets no new grants for further ones. */
struct token_shm {
    char path[PATH_MAX];
    int fd;
};
static struct token_shm *tokens[TOKENS];
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

/* The session's entry, locked; NULL when it has none (and `create` is 0). Entries hang in short chains off
 * BUCKETS heads, are never freed (a closed session's entry is cleared and reused), and change owner only under
 * table_lock and their own lock, so a chain can be walked without a lock. */
static struct session *session_locked(CK_SESSION_HANDLE handle, int create) {
    if (handle == 0) return NULL;
    struct session **bucket = &buckets[handle % BUCKETS], *s;
    for (s = __atomic_load_n(bucket, __ATOMIC_ACQUIRE); s; s = s->next) {
        if (__atomic_load_n(&s->handle, __ATOMIC_ACQUIRE) != handle) continue;
        pthread_mutex_lock(&s->lock);
        if (s->handle == handle) return s;
        pthread_mutex_unlock(&s->lock);
    }
    if (!create) return NULL;
    pthread_mutex_lock(&table_lock);
    for (s = *bucket; s; s = s->next) { /* another thread may have added it; else take a free entry */
        pthread_mutex_lock(&s->lock);
        if (s->handle == handle || s->handle == 0) break;
        pthread_mutex_unlock(&s->lock);
    }
    if (!s && (s = calloc(1, sizeof *s)) != NULL) {
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_lock(&s->lock);
        s->next = *bucket;
        __atomic_store_n(bucket, s, __ATOMIC_RELEASE);
    }
    if (s) __atomic_store_n(&s->handle, handle, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&table_lock);
    return s;
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
    __atomic_store_n(&s->handle, 0, __ATOMIC_RELEASE);
    s->valid_epoch = s->info_epoch = 0;
    s->py_active = 0;
    s->next_grant = 0;
}

/* ---- the store stamp -------------------------------------------------------------------------------------- */

static struct token_shm *token_shm(const char *path) {
    struct token_shm *found = NULL;
    struct stat st;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < token_count && !found; i++)
        if (strcmp(tokens[i]->path, path) == 0) found = tokens[i];
    if (found && fstat(found->fd, &st) == 0 && st.st_nlink == 0) {
        /* deleted when its last user closed the database, and made anew: follow the new file. The old descriptor
         * stays open (another thread may be reading it); this happens once per such restart. */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) __atomic_store_n(&found->fd, fd, __ATOMIC_RELEASE);
    }
    if (!found && token_count < TOKENS && strlen(path) < PATH_MAX && (found = calloc(1, sizeof *found)) != NULL) {
        snprintf(found->path, PATH_MAX, "%s", path);
        if ((found->fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
            tokens[token_count++] = found;
        } else {
            free(found);
            found = NULL;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

/* Has any process committed to the token since the engine checked the grant? Read with pread, never mmap (a
 * truncated -shm file would make a mapped read SIGBUS the host). A deleted -shm file (its last user closed it)
 * never matches again: the engine reopens it and grants anew. */
static int stamp_matches(const struct grant *g) {
    if (!g->shm) return 1;
    int fd = __atomic_load_n(&g->shm->fd, __ATOMIC_ACQUIRE);
    struct stat st;
    unsigned char now[STAMP];
    if (fstat(fd, &st) != 0 || st.st_nlink == 0) return 0;
    if (pread(fd, now, STAMP, 0) != STAMP) return 0;
    return memcmp(now, g->stamp, STAMP) == 0;
}

/* ---- grants ----------------------------------------------------------------------------------------------- */

int dp_supports(CK_ULONG kind, CK_MECHANISM_TYPE ckm) {
    return is_enabled() && kind < DP_KINDS && native_mechanism((unsigned)kind, ckm) != NULL;
}

int dp_grant(CK_SESSION_HANDLE handle, CK_ULONG kind, CK_MECHANISM_TYPE ckm, CK_OBJECT_HANDLE key,
             const unsigned char *material, size_t material_len, const char *stamp_path,
             const unsigned char *stamp) {
    uint64_t at = call_epoch;
    if (!is_enabled() || at == 0 || at != current_epoch() || kind >= DP_KINDS) return 0;
    struct grant fresh = {.used = 1, .kind = (unsigned)kind, .ckm = ckm, .key = key, .epoch = at};
    if (!(fresh.mech = native_mechanism((unsigned)kind, ckm))) return 0;
    if (stamp_path) {
        if (!(fresh.shm = token_shm(stamp_path))) return 0;
        memcpy(fresh.stamp, stamp, STAMP);
    }
    ERR_set_mark(); /* the error queue is the host's too: leave it as it was (d2i_* push errors even on success) */
    int prepared = prepare(&fresh, material, material_len);
    ERR_pop_to_mark();
    if (!prepared) {
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

/* The session (locked) when it has a native operation of `kind`, else NULL. */
static struct session *with_native_op(CK_SESSION_HANDLE handle, unsigned kind) {
    struct session *s = session_locked(handle, 0);
    if (s && !s->ops[kind].active) {
        pthread_mutex_unlock(&s->lock);
        s = NULL;
    }
    return s;
}

int dp_single(unsigned kind, CK_SESSION_HANDLE handle, const unsigned char *data, CK_ULONG len, unsigned char *out,
              CK_ULONG *out_len, CK_RV *rv) {
    struct session *s = with_native_op(handle, kind);
    if (!s) return 0;
    struct native_op *op = &s->ops[kind];
    if (out_len && (data || !len) && len <= DP_MAX_INPUT) {
        if (!op->has_pending) {
            unsigned char *result = NULL;
            size_t result_len = 0;
            ERR_set_mark();
            int computed = compute(op, data, len, &result, &result_len);
            ERR_pop_to_mark();
            if (computed) {
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
    struct session *s = with_native_op(handle, DP_VERIFY);
    if (!s) return 0;
    struct native_op *op = &s->ops[DP_VERIFY];
    enum verdict verdict = DEFER;
    if ((data || !len) && sig && len <= DP_MAX_INPUT) {
        ERR_set_mark();
        verdict = check(op, data, len, sig, sig_len);
        ERR_pop_to_mark();
    }
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
    ERR_set_mark();
    *rv = !len || RAND_bytes(out, (int)len) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
    ERR_pop_to_mark();
    return 1;
}

/* libcrypto is shared with the host. Some hosts build keys with it after loading the module and rely on its
 * configuration being loaded (pkcs11-tool 0.23 --read-object answers "cannot create EVP_PKEY" otherwise); an engine
 * in Python always did that by importing hashlib at start-up, and this library uses libcrypto itself, so it
 * initialises it the way OpenSSL's own tools do, once, at the first C_Initialize. */
static pthread_once_t libcrypto_once = PTHREAD_ONCE_INIT;
static void init_libcrypto(void) { OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL); }

/* Before a guarded call (one the engine answers that is not a hot call of its own). */
CK_RV dp_guard_before(unsigned flags, CK_SESSION_HANDLE handle) {
    if (flags & DP_MUTATES) bump_epoch();
    if (flags & DP_ALL) { /* login state or every session changes: hand every native operation to the engine */
        pthread_once(&libcrypto_once, init_libcrypto);
        for (int b = 0; b < BUCKETS; b++)
            for (struct session *s = __atomic_load_n(&buckets[b], __ATOMIC_ACQUIRE); s; s = s->next) {
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
    for (int b = 0; b < BUCKETS; b++)
        for (struct session *s = buckets[b]; s; s = s->next) {
            pthread_mutex_init(&s->lock, NULL);
            for (int k = 0; k < DP_KINDS; k++) s->ops[k].grant = NULL, end_op(&s->ops[k]);
            clear_session(s);
        }
    pthread_mutex_init(&table_lock, NULL);
}

unsigned long long dp_native_calls(void) { return __atomic_load_n(&native_calls, __ATOMIC_RELAXED); }
