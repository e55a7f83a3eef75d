/*
 * Key generation for the benchmark driver: the token keys a pass uses (`setup`), the objects finds search among
 * (`populate`), and the generation figures themselves. Every call goes through CK() (driver_util.h).
 */
#ifndef PYHSM_BENCH_DRIVER_KEYS_H
#define PYHSM_BENCH_DRIVER_KEYS_H

#include "driver_util.h"

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static void gen_rsa(CK_SESSION_HANDLE s, CK_ULONG bits, const char *label, CK_BBOOL token, CK_OBJECT_HANDLE *pub,
                    CK_OBJECT_HANDLE *priv) {
    CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_BYTE e[] = {1, 0, 1};
    CK_ULONG n = strlen(label);
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &token, 1}, {CKA_VERIFY, &yes, 1}, {CKA_MODULUS_BITS, &bits, sizeof bits},
                         {CKA_PUBLIC_EXPONENT, e, 3}, {CKA_LABEL, (void *)label, n}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &token, 1}, {CKA_SIGN, &yes, 1}, {CKA_PRIVATE, &yes, 1},
                         {CKA_SENSITIVE, &yes, 1}, {CKA_LABEL, (void *)label, n}};
    CK(f->C_GenerateKeyPair(s, &m, pt, 5, vt, 5, pub, priv));
}

static CK_BYTE P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static CK_BYTE P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static void gen_ec(CK_SESSION_HANDLE s, CK_BYTE *oid, CK_ULONG oid_len, const char *label, CK_BBOOL token,
                   CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv) {
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG n = strlen(label);
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &token, 1}, {CKA_VERIFY, &yes, 1}, {CKA_EC_PARAMS, oid, oid_len},
                         {CKA_LABEL, (void *)label, n}};
    CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &token, 1}, {CKA_SIGN, &yes, 1}, {CKA_PRIVATE, &yes, 1},
                         {CKA_SENSITIVE, &yes, 1}, {CKA_LABEL, (void *)label, n}};
    CK(f->C_GenerateKeyPair(s, &m, pt, 4, vt, 5, pub, priv));
}

static CK_OBJECT_HANDLE gen_secret(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mech, CK_ULONG key_type,
                                   const char *label, CK_BBOOL token) {
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ULONG len = 32, cls = CKO_SECRET_KEY;
    CK_BBOOL crypt = key_type == CKK_AES ? CK_TRUE : CK_FALSE, mac = crypt ? CK_FALSE : CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
                        {CKA_TOKEN, &token, 1}, {CKA_VALUE_LEN, &len, sizeof len}, {CKA_ENCRYPT, &crypt, 1},
                        {CKA_DECRYPT, &crypt, 1}, {CKA_SIGN, &mac, 1}, {CKA_VERIFY, &mac, 1},
                        {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h;
    CK(f->C_GenerateKey(s, &m, t, 11, &h));
    return h;
}

static void setup(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE pub, priv;
    gen_rsa(s, 2048, "rsa2048", CK_TRUE, &pub, &priv);
    gen_rsa(s, 3072, "rsa3072", CK_TRUE, &pub, &priv);
    gen_ec(s, P256, sizeof P256, "p256", CK_TRUE, &pub, &priv);
    gen_ec(s, P384, sizeof P384, "p384", CK_TRUE, &pub, &priv);
    gen_secret(s, CKM_AES_KEY_GEN, CKK_AES, "aes256", CK_TRUE);
    gen_secret(s, CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET, "hmac256", CK_TRUE);
}

static void populate(CK_SESSION_HANDLE s, long count) {
    CK_ULONG cls = CKO_DATA;
    CK_BYTE value[16] = {0};
    for (long i = 0; i < count; i++) {
        const char *label = i == count / 2 ? "needle" : "hay";
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &no, 1},
                            {CKA_LABEL, (void *)label, strlen(label)}, {CKA_VALUE, value, sizeof value}};
        CK_OBJECT_HANDLE h;
        CK(f->C_CreateObject(s, t, 5, &h));
    }
}

#endif
