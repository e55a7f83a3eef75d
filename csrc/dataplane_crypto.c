/*
 * The cryptography of the native data plane: which mechanisms it runs, the libcrypto objects of a grant, and the
 * computations. Every function answers "the engine decides" (0 / DEFER) for anything but the ordinary path, so error
 * codes always come from the engine (see dataplane.c).
 *
 * System libcrypto (OpenSSL 3), not pyca/cryptography's copy: a C library cannot reach into a Python wheel.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ck_constants.h"
#include "dataplane_crypto.h"

#define SV ((1u << DP_SIGN) | (1u << DP_VERIFY))
static const struct native_mech MECHANISMS[] = {
    {CKM_ECDSA, SV, ECDSA_RAW, NULL},
    {CKM_ECDSA_SHA256, SV, ECDSA_HASH, "SHA256"},
    {CKM_ECDSA_SHA384, SV, ECDSA_HASH, "SHA384"},
    {CKM_ECDSA_SHA512, SV, ECDSA_HASH, "SHA512"},
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

const struct native_mech *native_mechanism(unsigned kind, CK_MECHANISM_TYPE ckm) {
    for (size_t i = 0; i < MECHANISM_COUNT; i++)
        if (MECHANISMS[i].ckm == ckm && (MECHANISMS[i].kinds & (1u << kind))) return &MECHANISMS[i];
    return NULL;
}

void free_grant(struct grant *g) {
    EVP_PKEY_CTX_free(g->pctx);
    EVP_PKEY_free(g->pkey);
    EVP_MD_CTX_free(g->mdctx);
    EVP_MD_free(g->md);
    EVP_MAC_CTX_free(g->mac);
    EVP_CIPHER_CTX_free(g->cipher);
    memset(g, 0, sizeof *g);
}

static const EVP_CIPHER *aes_cipher(enum algo algo, size_t key_len) {
    if (algo == AES_GCM)
        return key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm() : key_len == 32 ? EVP_aes_256_gcm() : NULL;
    return key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc() : key_len == 32 ? EVP_aes_256_cbc() : NULL;
}

/* libcrypto objects for one grant, from the key material the engine hands over: DER PKCS#8 for private keys,
 * DER SubjectPublicKeyInfo for public keys, the raw value for secret keys. */
int prepare(struct grant *g, const unsigned char *material, size_t len) {
    const struct native_mech *m = g->mech;
    const unsigned char *p = material;
    if (m->md && !(g->md = EVP_MD_fetch(NULL, m->md, NULL))) return 0;
    switch (m->algo) {
    case ECDSA_RAW:
    case ECDSA_HASH:
    case RSA_PKCS_HASH:
    case RSA_PKCS_RAW:
    case RSA_PSS_HASH:
    case RSA_PSS_RAW: {
        int ecdsa = m->algo == ECDSA_RAW || m->algo == ECDSA_HASH, want = ecdsa ? EVP_PKEY_EC : EVP_PKEY_RSA;
        g->pkey = g->kind == DP_SIGN ? d2i_AutoPrivateKey(NULL, &p, (long)len) : d2i_PUBKEY(NULL, &p, (long)len);
        if (!g->pkey || EVP_PKEY_get_base_id(g->pkey) != want) return 0;
        if (!(g->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, g->pkey, NULL))) return 0;
        if ((g->kind == DP_SIGN ? EVP_PKEY_sign_init(g->pctx) : EVP_PKEY_verify_init(g->pctx)) <= 0) return 0;
        /* The libcrypto in pyca/cryptography's wheel (the engine's) is newer than Debian's 3.0 and much faster for
         * RSA private keys above 2048 bits and for the curves other than P-256 (measured side by side: RSA-3072
         * sign 1,078/s there, 506/s here; P-384 sign 3,195/s there, 900/s here): those stay with the engine. */
        if (ecdsa) {
            char curve[32];
            size_t curve_len = 0;
            if (!EVP_PKEY_get_utf8_string_param(g->pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve, &curve_len) ||
                strcmp(curve, "prime256v1") != 0)
                return 0;
            g->out_len = 2 * (size_t)((EVP_PKEY_get_bits(g->pkey) + 7) / 8);
            return m->algo == ECDSA_RAW || (g->mdctx = EVP_MD_CTX_new()) != NULL;
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

/* Copy the mechanism parameters the native code accepts; 0 for anything else (the engine then decides). */
int read_params(const struct grant *g, const CK_MECHANISM *mech, struct native_op *op) {
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
    if (g->pss_configured && memcmp(&g->pss_set, p, sizeof *p) == 0) { /* checked and set up by an earlier call */
        *hash_len = g->pss_hash_len;
        return 1;
    }
    const char *name = md_name(p->hashAlg), *mgf = md_name(mgf_hash(p->mgf));
    if (!name || !mgf) return 0;
    if (g->mech->md && strcmp(g->mech->md, name) != 0) return 0; /* SHAx_RSA_PKCS_PSS: hashAlg must be SHAx */
    EVP_MD *sig_md = EVP_MD_fetch(NULL, name, NULL), *mgf_md = EVP_MD_fetch(NULL, mgf, NULL);
    size_t hlen = sig_md ? (size_t)EVP_MD_get_size(sig_md) : 0;
    /* the largest salt is emLen - hLen - 2, emLen = k for keys of 8n bits */
    int ok = sig_md && mgf_md && g->out_len >= hlen + 2 && p->sLen <= g->out_len - hlen - 2 &&
             EVP_PKEY_CTX_set_rsa_padding(g->pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_signature_md(g->pctx, sig_md) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(g->pctx, mgf_md) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(g->pctx, (int)p->sLen) > 0;
    EVP_MD_free(sig_md);
    EVP_MD_free(mgf_md);
    g->pss_configured = ok;
    if (ok) g->pss_set = *p, g->pss_hash_len = *hash_len = hlen;
    return ok;
}

/* The output of a native sign / encrypt / digest, or 0 when the engine must answer this input. */
int compute(struct native_op *op, const unsigned char *data, size_t len, unsigned char **out, size_t *out_len) {
    struct grant *g = op->grant;
    unsigned char digest[EVP_MAX_MD_SIZE];
    size_t n;
    int ok = 0;
    switch (g->mech->algo) {
    case ECDSA_HASH:
        if (!hash(g, data, len, digest, &len)) return 0;
        data = digest;
        /* fall through: sign the digest */
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
        free(*out);
        *out = NULL;
    }
    return ok;
}

/* C_Verify: VALID, INVALID, or DEFER when the engine must answer (wrong lengths, odd input). */
enum verdict check(struct native_op *op, const unsigned char *data, size_t len, const unsigned char *sig,
                   size_t sig_len) {
    struct grant *g = op->grant;
    unsigned char digest[EVP_MAX_MD_SIZE];
    size_t hash_len = 0, tbs_len = len;
    const unsigned char *tbs = data;
    int verdict = -1;
    if (sig_len != g->out_len) return DEFER;
    switch (g->mech->algo) {
    case ECDSA_HASH:
        if (!hash(g, data, len, digest, &len)) return DEFER;
        data = digest;
        /* fall through: verify over the digest */
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
    /* libcrypto: 1 valid; 0 a well-formed signature that does not verify; < 0 an error, which the engine decides */
    return verdict == 1 ? VALID : verdict == 0 ? INVALID : DEFER;
}

