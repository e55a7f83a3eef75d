/*
 * Benchmark driver: dlopens ANY PKCS#11 module by path and times the same calls through the same code, so pyhsm's
 * libpyhsm.so and SoftHSMv2's libsofthsm2.so are measured alike. bench/run.py builds and drives it.
 *
 *   driver MODULE setup    LABEL PIN            token keys the passes use (RSA-2048/3072, P-256/384, AES, HMAC)
 *   driver MODULE populate LABEL PIN N          N public data objects, one of them labelled "needle"
 *   driver MODULE pass     LABEL PIN SECONDS    one measurement pass; prints "name<TAB>value<TAB>unit" lines
 *   driver MODULE finds    SECONDS LABEL...     find by label in tokens filled by `populate`
 *
 * Any error aborts with exit status 3 and the failing call's CKR code (driver_util.h).
 */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "driver_util.h"
#include "driver_keys.h"

static double seconds = 0.5; /* minimum measuring time per figure */
/* Threads call the module concurrently: say so (C_Initialize(NULL) promises a single-threaded application). */
static CK_C_INITIALIZE_ARGS threaded_args = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL};

/* ---- one operation, as a closure the timing loops call ---- */

enum kind { SIGN, VERIFY, ENCRYPT, DIGEST, RANDOM, GETINFO, SESSIONINFO, FIND, CPU };

struct op {
    enum kind kind;
    CK_SESSION_HANDLE s;
    CK_MECHANISM mech;
    CK_OBJECT_HANDLE key;
    CK_BYTE in[65536];
    CK_ULONG in_len;
    CK_BYTE out[65536 + 64];
    CK_ULONG out_len; /* expected output length (0: any) */
    CK_BYTE sig[1024];
    CK_ULONG sig_len;
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_GCM_PARAMS gcm;
    CK_BYTE iv[16];
    uint64_t counter;
};

static void run_op(void *arg) {
    struct op *o = arg;
    CK_ULONG len = sizeof o->out;
    switch (o->kind) {
    case SIGN:
        CK(f->C_SignInit(o->s, &o->mech, o->key));
        CK(f->C_Sign(o->s, o->in, o->in_len, o->out, &len));
        break;
    case VERIFY:
        CK(f->C_VerifyInit(o->s, &o->mech, o->key));
        CK(f->C_Verify(o->s, o->in, o->in_len, o->sig, o->sig_len));
        return;
    case ENCRYPT:
        memcpy(o->iv, &o->counter, sizeof o->counter); /* a fresh IV per message, as GCM requires */
        o->counter++;
        CK(f->C_EncryptInit(o->s, &o->mech, o->key));
        CK(f->C_Encrypt(o->s, o->in, o->in_len, o->out, &len));
        break;
    case DIGEST:
        CK(f->C_DigestInit(o->s, &o->mech));
        CK(f->C_Digest(o->s, o->in, o->in_len, o->out, &len));
        break;
    case RANDOM:
        CK(f->C_GenerateRandom(o->s, o->out, 32));
        return;
    case FIND:
        find_one(o->s, CKO_DATA, "needle");
        return;
    case GETINFO: {
        CK_INFO info;
        CK(f->C_GetInfo(&info));
        return;
    }
    case SESSIONINFO: {
        CK_SESSION_INFO info;
        CK(f->C_GetSessionInfo(o->s, &info));
        return;
    }
    case CPU: { /* the CPU control: pure C work, no module involved */
        volatile uint64_t x = o->counter | 1;
        for (int i = 0; i < 200000; i++) x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        o->counter = x;
        return;
    }
    }
    if (o->out_len && len != o->out_len) {
        fprintf(stderr, "driver: output of %lu bytes, want %lu\n", len, o->out_len);
        exit(3);
    }
}

static struct op *new_op(enum kind kind, CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mech, CK_OBJECT_HANDLE key,
                         CK_ULONG in_len) {
    struct op *o = calloc(1, sizeof *o);
    REQUIRE(o != NULL);
    o->kind = kind;
    o->s = s;
    o->mech.mechanism = mech;
    o->key = key;
    o->in_len = in_len;
    for (CK_ULONG i = 0; i < in_len; i++) o->in[i] = (CK_BYTE)(i * 7);
    if (mech == CKM_SHA256_RSA_PKCS_PSS) {
        o->pss = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA256, CKG_MGF1_SHA256, 32};
        o->mech.pParameter = &o->pss;
        o->mech.ulParameterLen = sizeof o->pss;
    } else if (mech == CKM_AES_GCM) {
        o->gcm = (CK_GCM_PARAMS){o->iv, 12, 96, NULL, 0, 128};
        o->mech.pParameter = &o->gcm;
        o->mech.ulParameterLen = sizeof o->gcm;
        o->out_len = in_len + 16;
    } else if (mech == CKM_AES_CBC_PAD) {
        o->mech.pParameter = o->iv;
        o->mech.ulParameterLen = 16;
        o->out_len = (in_len / 16 + 1) * 16;
    }
    return o;
}

/* A verify operation needs a signature: make one with the private key, then verify with the public one. */
static struct op *new_verify(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mech, CK_OBJECT_HANDLE priv,
                             CK_OBJECT_HANDLE pub, CK_ULONG in_len) {
    struct op *o = new_op(SIGN, s, mech, priv, in_len);
    CK_ULONG len = sizeof o->sig;
    CK(f->C_SignInit(s, &o->mech, priv));
    CK(f->C_Sign(s, o->in, in_len, o->sig, &len));
    o->sig_len = len;
    o->kind = VERIFY;
    o->key = pub;
    return o;
}

/* BENCH_ONLY=prefix runs only the figures whose name starts with it (to profile one operation). */
static int wanted(const char *name) {
    const char *only = getenv("BENCH_ONLY");
    return !only || !strncmp(name, only, strlen(only));
}

/* Steady state: one untimed call first (a module may load and cache a key on its first use). */
static void measure(const char *name, struct op *o, double scale, const char *unit) {
    if (!wanted(name)) {
        free(o);
        return;
    }
    run_op(o);
    double per_second = rate(seconds, 3, run_op, o);
    report(name, scale > 0 ? per_second * scale : -scale / per_second, unit);
    free(o);
}

#define OPS(name, o) measure(name, o, 1, "ops/s")
#define MBPS(name, o, bytes) measure(name, o, (bytes) / 1e6, "MB/s")

/* ---- the key generation figures: only the generation is timed, the destruction is not ---- */

enum gen_kind { GEN_AES, GEN_RSA2048, GEN_P256 };

static void keygen(const char *name, CK_SESSION_HANDLE s, enum gen_kind kind, CK_BBOOL token) {
    double spent = 0;
    long n = 0;
    if (!wanted(name)) return;
    while (spent < seconds || n < 3) {
        CK_OBJECT_HANDLE pub = 0, priv;
        double start = now();
        if (kind == GEN_AES) priv = gen_secret(s, CKM_AES_KEY_GEN, CKK_AES, "bench-gen", token);
        else if (kind == GEN_RSA2048) gen_rsa(s, 2048, "bench-gen", token, &pub, &priv);
        else gen_ec(s, P256, sizeof P256, "bench-gen", token, &pub, &priv);
        spent += now() - start;
        n++;
        CK(f->C_DestroyObject(s, priv));
        if (pub) CK(f->C_DestroyObject(s, pub));
    }
    report(name, n / spent, "ops/s");
}

/* ---- threads, each with its own session; the CPU control runs through the same code ---- */

struct worker {
    pthread_t thread;
    struct op *op;
    long count;
};
static pthread_barrier_t barrier;
static volatile int stop;

static void *work(void *arg) {
    struct worker *w = arg;
    pthread_barrier_wait(&barrier);
    while (!stop) {
        run_op(w->op);
        w->count++;
    }
    return NULL;
}

typedef struct op *(*op_factory)(CK_SESSION_HANDLE s, void *ctx);

static void threaded(const char *name, int threads, CK_SLOT_ID slot, op_factory make, void *ctx) {
    struct worker w[8];
    long total = 0;
    char full[64];
    snprintf(full, sizeof full, "%s_%dt", name, threads);
    if (!wanted(full)) return;
    stop = 0;
    pthread_barrier_init(&barrier, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        w[i].op = make(open_rw(slot), ctx);
        w[i].count = 0;
        REQUIRE(pthread_create(&w[i].thread, NULL, work, &w[i]) == 0);
    }
    pthread_barrier_wait(&barrier);
    double start = now();
    usleep((useconds_t)(seconds * 1e6));
    stop = 1;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].thread, NULL);
        total += w[i].count;
        if (w[i].op->kind != CPU) CK(f->C_CloseSession(w[i].op->s));
        free(w[i].op);
    }
    double elapsed = now() - start;
    pthread_barrier_destroy(&barrier);
    report(full, total / elapsed, "ops/s");
}

static CK_OBJECT_HANDLE priv_rsa2048, priv_p256, key_aes;

static struct op *rsa_factory(CK_SESSION_HANDLE s, void *ctx) {
    (void)ctx;
    return new_op(SIGN, s, CKM_SHA256_RSA_PKCS, priv_rsa2048, 32);
}
static struct op *ec_factory(CK_SESSION_HANDLE s, void *ctx) {
    (void)ctx;
    return new_op(SIGN, s, CKM_ECDSA, priv_p256, 32);
}
static struct op *gcm_factory(CK_SESSION_HANDLE s, void *ctx) {
    (void)ctx;
    return new_op(ENCRYPT, s, CKM_AES_GCM, key_aes, 4096);
}
static struct op *cpu_factory(CK_SESSION_HANDLE s, void *ctx) {
    (void)ctx;
    CK(f->C_CloseSession(s));
    return new_op(CPU, 0, 0, 0, 0);
}

/* ---- one pass ---- */

static void crypto_figures(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE r2 = find_one(s, CKO_PRIVATE_KEY, "rsa2048"), r2p = find_one(s, CKO_PUBLIC_KEY, "rsa2048");
    CK_OBJECT_HANDLE r3 = find_one(s, CKO_PRIVATE_KEY, "rsa3072"), r3p = find_one(s, CKO_PUBLIC_KEY, "rsa3072");
    CK_OBJECT_HANDLE e2 = find_one(s, CKO_PRIVATE_KEY, "p256"), e2p = find_one(s, CKO_PUBLIC_KEY, "p256");
    CK_OBJECT_HANDLE e3 = find_one(s, CKO_PRIVATE_KEY, "p384"), e3p = find_one(s, CKO_PUBLIC_KEY, "p384");
    CK_OBJECT_HANDLE aes = find_one(s, CKO_SECRET_KEY, "aes256"), mac = find_one(s, CKO_SECRET_KEY, "hmac256");
    priv_rsa2048 = r2, priv_p256 = e2, key_aes = aes;

    OPS("rsa2048_sign_pkcs", new_op(SIGN, s, CKM_SHA256_RSA_PKCS, r2, 32));
    OPS("rsa2048_sign_pss", new_op(SIGN, s, CKM_SHA256_RSA_PKCS_PSS, r2, 32));
    OPS("rsa3072_sign_pkcs", new_op(SIGN, s, CKM_SHA256_RSA_PKCS, r3, 32));
    OPS("rsa3072_sign_pss", new_op(SIGN, s, CKM_SHA256_RSA_PKCS_PSS, r3, 32));
    OPS("rsa2048_verify_pkcs", new_verify(s, CKM_SHA256_RSA_PKCS, r2, r2p, 32));
    OPS("rsa3072_verify_pkcs", new_verify(s, CKM_SHA256_RSA_PKCS, r3, r3p, 32));
    OPS("ecdsa_p256_sign", new_op(SIGN, s, CKM_ECDSA, e2, 32));
    OPS("ecdsa_p256_verify", new_verify(s, CKM_ECDSA, e2, e2p, 32));
    OPS("ecdsa_p384_sign", new_op(SIGN, s, CKM_ECDSA, e3, 48));
    OPS("ecdsa_p384_verify", new_verify(s, CKM_ECDSA, e3, e3p, 48));
    static const CK_ULONG sizes[] = {64, 4096, 65536};
    static const char *size_names[] = {"64B", "4KiB", "64KiB"};
    char name[64];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "aes256_gcm_encrypt_%s", size_names[i]);
        MBPS(name, new_op(ENCRYPT, s, CKM_AES_GCM, aes, sizes[i]), sizes[i]);
        snprintf(name, sizeof name, "aes256_cbc_pad_encrypt_%s", size_names[i]);
        MBPS(name, new_op(ENCRYPT, s, CKM_AES_CBC_PAD, aes, sizes[i]), sizes[i]);
    }
    MBPS("hmac_sha256_4KiB", new_op(SIGN, s, CKM_SHA256_HMAC, mac, 4096), 4096);
    MBPS("sha256_digest_4KiB", new_op(DIGEST, s, CKM_SHA256, 0, 4096), 4096);
    OPS("generate_random_32B", new_op(RANDOM, s, 0, 0, 0));
}

static void keygen_figures(CK_SESSION_HANDLE s) {
    keygen("keygen_aes256_session", s, GEN_AES, CK_FALSE);
    keygen("keygen_aes256_token", s, GEN_AES, CK_TRUE);
    keygen("keygen_rsa2048_session", s, GEN_RSA2048, CK_FALSE);
    keygen("keygen_rsa2048_token", s, GEN_RSA2048, CK_TRUE);
    keygen("keygen_p256_session", s, GEN_P256, CK_FALSE);
    keygen("keygen_p256_token", s, GEN_P256, CK_TRUE);
}

/* Find by label among all the objects of a token populated with `populate`. */
static void find_figure(const char *label) {
    CK_SESSION_HANDLE s;
    CK_ULONG cls = CKO_DATA, count = 0, n;
    CK_OBJECT_HANDLE h[1024];
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}};
    CK(f->C_OpenSession(slot_of(label), CKF_SERIAL_SESSION, NULL, NULL, &s));
    CK(f->C_FindObjectsInit(s, t, 1));
    do {
        CK(f->C_FindObjects(s, h, 1024, &n));
        count += n;
    } while (n);
    CK(f->C_FindObjectsFinal(s));
    char name[64];
    snprintf(name, sizeof name, "find_label_among_%lu", count);
    measure(name, new_op(FIND, s, 0, 0, 0), -1e6, "us/op");
    CK(f->C_CloseSession(s));
}

static void login_figure(CK_SESSION_HANDLE s, const char *pin) {
    double spent = 0;
    long n = 0;
    if (!wanted("login_user")) return;
    while (spent < seconds || n < 3) {
        CK(f->C_Logout(s));
        double start = now();
        CK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)));
        spent += now() - start;
        n++;
    }
    report("login_user", spent / n * 1e3, "ms");
}

static void pass(const char *label, const char *pin) {
    double start = now();
    CK(f->C_Initialize(&threaded_args));
    report("first_initialize", (now() - start) * 1e3, "ms");
    report("rss_after_initialize", vm_rss_kib() / 1024.0, "MiB");
    measure("get_info", new_op(GETINFO, 0, 0, 0, 0), -1e9, "ns/call");

    CK_SLOT_ID slot = slot_of(label);
    CK_SESSION_HANDLE s = open_rw(slot);
    CK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)));
    measure("get_session_info", new_op(SESSIONINFO, s, 0, 0, 0), -1e9, "ns/call");
    crypto_figures(s);
    keygen_figures(s);
    static const int counts[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) {
        threaded("threads_rsa2048_sign", counts[i], slot, rsa_factory, NULL);
        threaded("threads_ecdsa_p256_sign", counts[i], slot, ec_factory, NULL);
        threaded("threads_aes256_gcm_4KiB", counts[i], slot, gcm_factory, NULL);
        threaded("threads_cpu_control", counts[i], slot, cpu_factory, NULL);
    }
    login_figure(s, pin);
    report("rss_end", vm_rss_kib() / 1024.0, "MiB");
    CK(f->C_CloseSession(s));
    CK(f->C_Finalize(NULL));
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODULE setup|populate|pass|finds ... (see driver.c)\n", argv[0]);
        return 2;
    }
    const char *command = argv[2];
    load_module(argv[1]);
    if (!strcmp(command, "finds")) {
        seconds = atof(argv[3]);
        CK(f->C_Initialize(&threaded_args));
        for (int i = 4; i < argc; i++) find_figure(argv[i]);
        CK(f->C_Finalize(NULL));
        return 0;
    }
    REQUIRE(argc >= 5);
    const char *label = argv[3], *pin = argv[4];
    if (!strcmp(command, "pass") && argc == 6) {
        seconds = atof(argv[5]);
        pass(label, pin);
        return 0;
    }
    CK(f->C_Initialize(&threaded_args));
    CK_SESSION_HANDLE s = open_rw(slot_of(label));
    CK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)));
    if (!strcmp(command, "setup")) setup(s);
    else if (!strcmp(command, "populate") && argc == 6) populate(s, atol(argv[5]));
    else return 2;
    CK(f->C_Logout(s));
    CK(f->C_CloseSession(s));
    CK(f->C_Finalize(NULL));
    return 0;
}
