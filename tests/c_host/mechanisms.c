/*
 * Mechanism families driven from a non-Python host. Usage: mechanisms MODULE PIN TOKEN-LABEL SCENARIO [ARGS...]
 * Each scenario runs the mechanism through the C ABI, checks what it can check by itself against known answers
 * ("ok NAME" / "FAIL NAME: ..."), and prints values for independent verification as "out NAME HEX"; the pytest
 * side (tests/test_mech_c_host.py) checks those with pyca/cryptography or openssl.
 */
#include "common.h"

static CK_BBOOL yes = 1, no = 0;
static CK_SESSION_HANDLE s;

static void out(const char *name, const CK_BYTE *data, CK_ULONG len) {
    printf("out %s ", name);
    for (CK_ULONG i = 0; i < len; i++) printf("%02x", data[i]);
    printf("\n");
}

static CK_OBJECT_HANDLE secret_key(CK_ULONG key_type, const CK_BYTE *value, CK_ULONG len) {
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
        {CKA_VALUE, (void *)value, len}, {CKA_EXTRACTABLE, &yes, 1}, {CKA_SENSITIVE, &no, 1},
        {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1}, {CKA_WRAP, &yes, 1}, {CKA_UNWRAP, &yes, 1},
        {CKA_SIGN, &yes, 1}, {CKA_VERIFY, &yes, 1}, {CKA_DERIVE, &yes, 1},
    };
    CK_OBJECT_HANDLE h = 0;
    expect("C_CreateObject secret key", f->C_CreateObject(s, t, sizeof t / sizeof t[0], &h), CKR_OK);
    return h;
}

static CK_ULONG read_value(CK_OBJECT_HANDLE h, CK_BYTE *buf, CK_ULONG cap) {
    CK_ATTRIBUTE t = {CKA_VALUE, buf, cap};
    expect("C_GetAttributeValue CKA_VALUE", f->C_GetAttributeValue(s, h, &t, 1), CKR_OK);
    return t.ulValueLen;
}

static CK_OBJECT_HANDLE okp_private_key(CK_ULONG key_type, const CK_BYTE *params, CK_ULONG params_len,
                                        const CK_BYTE *value, CK_ULONG len) {
    CK_ULONG cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
        {CKA_EC_PARAMS, (void *)params, params_len}, {CKA_VALUE, (void *)value, len},
        {CKA_SIGN, &yes, 1}, {CKA_DERIVE, &yes, 1}, {CKA_EXTRACTABLE, &yes, 1},
    };
    CK_OBJECT_HANDLE h = 0;
    expect("C_CreateObject private key", f->C_CreateObject(s, t, sizeof t / sizeof t[0], &h), CKR_OK);
    return h;
}

/* ---- DES3 ----------------------------------------------------------------------------------------------- */
static void des3(void) {
    /* SP 800-67 Rev. 2 appendix B: three-key TDEA, ECB. */
    static const CK_BYTE key[24] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x23, 0x45, 0x67, 0x89,
                                    0xab, 0xcd, 0xef, 0x01, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23};
    static const CK_BYTE want[24] = {0xa8, 0x26, 0xfd, 0x8c, 0xe5, 0x3b, 0x85, 0x5f, 0xcc, 0xe2, 0x1c, 0x81,
                                     0x12, 0x25, 0x6f, 0xe6, 0x68, 0xd5, 0xc0, 0x5d, 0xd9, 0xb6, 0xb9, 0x00};
    CK_OBJECT_HANDLE k = secret_key(CKK_DES3, key, sizeof key);
    CK_MECHANISM ecb = {CKM_DES3_ECB, NULL, 0};
    CK_BYTE buf[64];
    CK_ULONG n = sizeof buf;
    expect("C_EncryptInit DES3_ECB", f->C_EncryptInit(s, &ecb, k), CKR_OK);
    expect("C_Encrypt DES3_ECB", f->C_Encrypt(s, (CK_BYTE_PTR) "The qufck brown fox jump", 24, buf, &n), CKR_OK);
    check("DES3_ECB known answer (SP 800-67)", n == 24 && !memcmp(buf, want, 24));
    /* CBC_PAD, multi-part, to be checked by openssl enc. */
    CK_BYTE iv[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    CK_MECHANISM cbc_pad = {CKM_DES3_CBC_PAD, iv, sizeof iv};
    CK_BYTE ct[64];
    CK_ULONG total = 0, part;
    expect("C_EncryptInit DES3_CBC_PAD", f->C_EncryptInit(s, &cbc_pad, k), CKR_OK);
    const char *msg = "multi-part 3DES from C";
    for (int i = 0; i < 22; i += 5) {
        part = sizeof ct - total;
        expect("C_EncryptUpdate", f->C_EncryptUpdate(s, (CK_BYTE_PTR)msg + i, i + 5 > 22 ? 22 - i : 5, ct + total,
                                                     &part), CKR_OK);
        total += part;
    }
    part = sizeof ct - total;
    expect("C_EncryptFinal", f->C_EncryptFinal(s, ct + total, &part), CKR_OK);
    total += part;
    check("CBC_PAD output is 3 blocks", total == 24);
    out("des3_cbc_pad", ct, total);
    CK_BYTE bad_iv[16] = {0};
    CK_MECHANISM bad = {CKM_DES3_CBC, bad_iv, sizeof bad_iv};
    expect("DES3_CBC with a 16-byte IV", f->C_EncryptInit(s, &bad, k), CKR_MECHANISM_PARAM_INVALID);
}

/* ---- RSA-AES key wrap and the CloudHSM mechanisms ----------------------------------------------------------- */
static void rsa_aes_wrap(const char *pub_label) {
    CK_OBJECT_HANDLE pub = find(s, CKO_PUBLIC_KEY, pub_label);
    check("RSA public key found", pub != 0);
    static const CK_BYTE value[32] = "an AES-256 key wrapped from C!!";
    CK_OBJECT_HANDLE target = secret_key(CKK_AES, value, sizeof value);
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_RSA_AES_KEY_WRAP_PARAMS params = {256, &oaep};
    CK_MECHANISM mech = {CKM_RSA_AES_KEY_WRAP, &params, sizeof params};
    CK_BYTE wrapped[1024];
    CK_ULONG n = 0;
    expect("C_WrapKey length query", f->C_WrapKey(s, &mech, pub, target, NULL, &n), CKR_OK);
    expect("C_WrapKey", f->C_WrapKey(s, &mech, pub, target, wrapped, &n), CKR_OK);
    out("rsa_aes_wrapped", wrapped, n);
    params.ulAESKeyBits = 100;
    expect("ulAESKeyBits 100", f->C_WrapKey(s, &mech, pub, target, wrapped, &n), CKR_MECHANISM_PARAM_INVALID);
}

static void cloudhsm(void) {
    static const CK_BYTE kek_value[32] = "0123456789abcdef0123456789abcdef";
    CK_OBJECT_HANDLE kek = secret_key(CKK_AES, kek_value, sizeof kek_value);
    CK_GCM_PARAMS gcm = {NULL, 12, 96, (CK_BYTE_PTR) "aad", 3, 128};
    CK_MECHANISM mech = {CKM_CLOUDHSM_AES_GCM, &gcm, sizeof gcm};
    CK_BYTE buf[128], plain[128];
    CK_ULONG n = sizeof buf, m = sizeof plain;
    expect("C_EncryptInit CLOUDHSM_AES_GCM", f->C_EncryptInit(s, &mech, kek), CKR_OK);
    expect("C_Encrypt CLOUDHSM_AES_GCM", f->C_Encrypt(s, (CK_BYTE_PTR) "cloudhsm gcm", 12, buf, &n), CKR_OK);
    check("IV || ciphertext || tag", n == 12 + 12 + 16);
    out("cloudhsm_gcm", buf, n);
    expect("C_DecryptInit CLOUDHSM_AES_GCM", f->C_DecryptInit(s, &mech, kek), CKR_OK);
    expect("C_Decrypt CLOUDHSM_AES_GCM", f->C_Decrypt(s, buf, n, plain, &m), CKR_OK);
    check("round trip", m == 12 && !memcmp(plain, "cloudhsm gcm", 12));
    CK_BYTE iv[12] = {0};
    gcm.pIv = iv;
    expect("pIv not NULL", f->C_EncryptInit(s, &mech, kek), CKR_MECHANISM_PARAM_INVALID);

    static const CK_BYTE secret[20] = "twenty byte secret!";
    CK_OBJECT_HANDLE target = secret_key(CKK_GENERIC_SECRET, secret, sizeof secret);
    CK_MECHANISM zero_pad = {CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, NULL, 0};
    n = sizeof buf;
    expect("C_WrapKey ZERO_PAD", f->C_WrapKey(s, &zero_pad, kek, target, buf, &n), CKR_OK);
    out("zero_pad_wrapped", buf, n);
    CK_MECHANISM no_pad = {CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, NULL, 0};
    expect("NO_PAD of a 20-byte key", f->C_WrapKey(s, &no_pad, kek, target, buf, &n), CKR_KEY_SIZE_RANGE);
}

/* ---- SHA-3, EdDSA, X25519 ---------------------------------------------------------------------------------- */
static void sha3(void) {
    static const CK_BYTE abc256[32] = {0x3a, 0x98, 0x5d, 0xa7, 0x4f, 0xe2, 0x25, 0xb2, 0x04, 0x5c, 0x17,
                                       0x2d, 0x6b, 0xd3, 0x90, 0xbd, 0x85, 0x5f, 0x08, 0x6e, 0x3e, 0x9d,
                                       0x52, 0x5b, 0x46, 0xbf, 0xe2, 0x45, 0x11, 0x43, 0x15, 0x32};
    CK_MECHANISM m256 = {CKM_SHA3_256, NULL, 0}, m512 = {CKM_SHA3_512, NULL, 0};
    CK_BYTE digest[64];
    CK_ULONG n = 0;
    expect("C_DigestInit SHA3-256", f->C_DigestInit(s, &m256), CKR_OK);
    expect("C_Digest length query", f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, NULL, &n), CKR_OK);
    check("SHA3-256 is 32 bytes", n == 32);
    expect("C_Digest SHA3-256", f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &n), CKR_OK);
    check("SHA3-256(abc) known answer (FIPS 202)", n == 32 && !memcmp(digest, abc256, 32));
    expect("C_DigestInit SHA3-512", f->C_DigestInit(s, &m512), CKR_OK);
    expect("C_DigestUpdate", f->C_DigestUpdate(s, (CK_BYTE_PTR) "multi-part ", 11), CKR_OK);
    expect("C_DigestUpdate", f->C_DigestUpdate(s, (CK_BYTE_PTR) "sha3", 4), CKR_OK);
    n = sizeof digest;
    expect("C_DigestFinal", f->C_DigestFinal(s, digest, &n), CKR_OK);
    out("sha3_512", digest, n);
}

static const CK_BYTE edwards25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'};
/* RFC 8032 section 7.1 TEST 1. */
static const CK_BYTE ed_secret[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                      0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                      0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const CK_BYTE ed_sig[64] = {
    0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80, 0x6e, 0x82, 0x8a,
    0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73, 0xe0, 0x65, 0x22, 0x49, 0x01, 0x55,
    0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b, 0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b,
    0xd2, 0x5b, 0xf5, 0xf0, 0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b};

static void sign_empty_message(const char *name, CK_OBJECT_HANDLE key) {
    CK_MECHANISM eddsa = {CKM_EDDSA, NULL, 0};
    CK_BYTE sig[64];
    CK_ULONG n = sizeof sig;
    expect("C_SignInit EDDSA", f->C_SignInit(s, &eddsa, key), CKR_OK);
    expect("C_Sign EDDSA", f->C_Sign(s, (CK_BYTE_PTR) "", 0, sig, &n), CKR_OK);
    check(name, n == 64 && !memcmp(sig, ed_sig, 64));
}

static void eddsa(void) {
    CK_OBJECT_HANDLE priv = okp_private_key(CKK_EC_EDWARDS, edwards25519, sizeof edwards25519, ed_secret, 32);
    sign_empty_message("Ed25519 known answer (RFC 8032 TEST 1)", priv);
    CK_EDDSA_PARAMS ph = {1, 0, NULL};
    CK_MECHANISM eddsa_ph = {CKM_EDDSA, &ph, sizeof ph};
    expect("Ed25519ph", f->C_SignInit(s, &eddsa_ph, priv), CKR_MECHANISM_PARAM_INVALID);
    /* Verify with a public key object made from the private key's CKA_EC_POINT. */
    CK_BYTE point[64];
    CK_ATTRIBUTE get = {CKA_EC_POINT, point, sizeof point};
    expect("C_GetAttributeValue CKA_EC_POINT", f->C_GetAttributeValue(s, priv, &get, 1), CKR_OK);
    check("CKA_EC_POINT is a DER OCTET STRING", get.ulValueLen == 34 && point[0] == 0x04 && point[1] == 32);
    CK_ULONG cls = CKO_PUBLIC_KEY, kt = CKK_EC_EDWARDS;
    CK_ATTRIBUTE pt[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                         {CKA_EC_PARAMS, (void *)edwards25519, sizeof edwards25519},
                         {CKA_EC_POINT, point, get.ulValueLen}, {CKA_VERIFY, &yes, 1}};
    CK_OBJECT_HANDLE pub = 0;
    expect("C_CreateObject Ed25519 public key", f->C_CreateObject(s, pt, 5, &pub), CKR_OK);
    CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};
    expect("C_VerifyInit", f->C_VerifyInit(s, &mech, pub), CKR_OK);
    expect("C_Verify RFC 8032 signature", f->C_Verify(s, (CK_BYTE_PTR) "", 0, (CK_BYTE_PTR)ed_sig, 64), CKR_OK);
    expect("C_VerifyInit", f->C_VerifyInit(s, &mech, pub), CKR_OK);
    expect("C_Verify 63-byte signature", f->C_Verify(s, (CK_BYTE_PTR) "", 0, (CK_BYTE_PTR)ed_sig, 63),
           CKR_SIGNATURE_LEN_RANGE);
    /* Wrap it as PKCS#8 with AES KWP, unwrap it back, sign again. */
    static const CK_BYTE kek_value[32] = "kek for an Ed25519 private key!";
    CK_OBJECT_HANDLE kek = secret_key(CKK_AES, kek_value, sizeof kek_value);
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_KWP, NULL, 0};
    CK_BYTE wrapped[256];
    CK_ULONG n = sizeof wrapped;
    expect("C_WrapKey Ed25519 private key", f->C_WrapKey(s, &kwp, kek, priv, wrapped, &n), CKR_OK);
    out("ed25519_pkcs8_kwp", wrapped, n);
    CK_ULONG priv_cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &priv_cls, sizeof priv_cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                         {CKA_SIGN, &yes, 1}};
    CK_OBJECT_HANDLE back = 0;
    expect("C_UnwrapKey Ed25519 private key", f->C_UnwrapKey(s, &kwp, kek, wrapped, n, ut, 3, &back), CKR_OK);
    sign_empty_message("unwrapped key signs the RFC 8032 answer", back);
}

static void x25519(void) {
    /* RFC 7748 section 6.1: Alice's private key, Bob's public key, the shared secret. */
    static const CK_BYTE curve25519[] = {0x13, 0x0a, 'c', 'u', 'r', 'v', 'e', '2', '5', '5', '1', '9'};
    static const CK_BYTE alice[32] = {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
                                      0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
                                      0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a};
    static const CK_BYTE bob_public[32] = {0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3, 0x5b, 0x61,
                                           0xc2, 0xec, 0xe4, 0x35, 0x37, 0x3f, 0x83, 0x43, 0xc8, 0x5b, 0x78,
                                           0x67, 0x4d, 0xad, 0xfc, 0x7e, 0x14, 0x6f, 0x88, 0x2b, 0x4f};
    static const CK_BYTE shared[32] = {0x4a, 0x5d, 0x9d, 0x5b, 0xa4, 0xce, 0x2d, 0xe1, 0x72, 0x8e, 0x3b,
                                       0xf4, 0x80, 0x35, 0x0f, 0x25, 0xe0, 0x7e, 0x21, 0xc9, 0x47, 0xd1,
                                       0x9e, 0x33, 0x76, 0xf0, 0x9b, 0x3c, 0x1e, 0x16, 0x17, 0x42};
    CK_OBJECT_HANDLE priv = okp_private_key(CKK_EC_MONTGOMERY, curve25519, sizeof curve25519, alice, 32);
    CK_ECDH1_DERIVE_PARAMS p = {CKD_NULL, 0, NULL, 32, (CK_BYTE_PTR)bob_public};
    CK_MECHANISM ecdh = {CKM_ECDH1_DERIVE, &p, sizeof p};
    CK_ULONG cls = CKO_SECRET_KEY, kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                        {CKA_SENSITIVE, &no, 1}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE derived = 0;
    expect("C_DeriveKey X25519", f->C_DeriveKey(s, &ecdh, priv, t, 4, &derived), CKR_OK);
    CK_BYTE value[64];
    CK_ULONG n = read_value(derived, value, sizeof value);
    check("X25519 shared secret known answer (RFC 7748)", n == 32 && !memcmp(value, shared, 32));
    p.ulPublicDataLen = 31;
    expect("31-byte peer key", f->C_DeriveKey(s, &ecdh, priv, t, 4, &derived), CKR_MECHANISM_PARAM_INVALID);
}

/* ---- HKDF (RFC 5869 test case 1) ------------------------------------------------------------------------- */
static void hkdf(void) {
    static const CK_BYTE ikm[22] = {0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                                    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
    static CK_BYTE salt[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static CK_BYTE info[10] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9};
    static const CK_BYTE okm[42] = {0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
                                    0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
                                    0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65};
    CK_OBJECT_HANDLE base = secret_key(CKK_GENERIC_SECRET, ikm, sizeof ikm);
    CK_HKDF_PARAMS p = {1, 1, CKM_SHA256, CKF_HKDF_SALT_DATA, salt, sizeof salt, 0, info, sizeof info};
    CK_MECHANISM derive = {CKM_HKDF_DERIVE, &p, sizeof p}, data = {CKM_HKDF_DATA, &p, sizeof p};
    CK_ULONG secret_cls = CKO_SECRET_KEY, kt = CKK_GENERIC_SECRET, len = 42, data_cls = CKO_DATA;
    CK_ATTRIBUTE kt_t[] = {{CKA_CLASS, &secret_cls, sizeof secret_cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
                           {CKA_VALUE_LEN, &len, sizeof len}, {CKA_SENSITIVE, &no, 1}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_OBJECT_HANDLE key = 0, object = 0;
    expect("C_DeriveKey HKDF_DERIVE", f->C_DeriveKey(s, &derive, base, kt_t, 5, &key), CKR_OK);
    CK_BYTE value[64];
    CK_ULONG n = read_value(key, value, sizeof value);
    check("HKDF_DERIVE known answer (RFC 5869 A.1)", n == 42 && !memcmp(value, okm, 42));
    CK_ATTRIBUTE data_t[] = {{CKA_CLASS, &data_cls, sizeof data_cls}, {CKA_VALUE_LEN, &len, sizeof len},
                             {CKA_LABEL, "hkdf data", 9}};
    expect("C_DeriveKey HKDF_DATA", f->C_DeriveKey(s, &data, base, data_t, 3, &object), CKR_OK);
    CK_ULONG cls = 0;
    CK_ATTRIBUTE get_cls = {CKA_CLASS, &cls, sizeof cls};
    expect("C_GetAttributeValue CKA_CLASS", f->C_GetAttributeValue(s, object, &get_cls, 1), CKR_OK);
    check("HKDF_DATA made a data object", cls == CKO_DATA);
    n = read_value(object, value, sizeof value);
    check("HKDF_DATA known answer (RFC 5869 A.1)", n == 42 && !memcmp(value, okm, 42));
    expect("HKDF_DATA asked for a secret key", f->C_DeriveKey(s, &data, base, kt_t, 5, &object),
           CKR_TEMPLATE_INCONSISTENT);
    p.bExtract = p.bExpand = 0;
    expect("bExtract and bExpand FALSE", f->C_DeriveKey(s, &derive, base, kt_t, 5, &key),
           CKR_MECHANISM_PARAM_INVALID);
}

/* ---- AES-CCM (SP 800-38C C.1) and AES-CTS (RFC 3962) ----------------------------------------------------- */
static void aes_ccm_cts(void) {
    static const CK_BYTE ccm_key[16] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
                                        0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f};
    static CK_BYTE nonce[7] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16};
    static CK_BYTE aad[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    static CK_BYTE payload[4] = {0x20, 0x21, 0x22, 0x23};
    static const CK_BYTE ccm_want[8] = {0x71, 0x62, 0x01, 0x5b, 0x4d, 0xac, 0x25, 0x5d};
    CK_OBJECT_HANDLE key = secret_key(CKK_AES, ccm_key, sizeof ccm_key);
    CK_CCM_PARAMS p = {4, nonce, sizeof nonce, aad, sizeof aad, 4};
    CK_MECHANISM mech = {CKM_AES_CCM, &p, sizeof p};
    CK_BYTE buf[64];
    CK_ULONG n = sizeof buf;
    expect("C_EncryptInit AES_CCM", f->C_EncryptInit(s, &mech, key), CKR_OK);
    expect("C_Encrypt AES_CCM", f->C_Encrypt(s, payload, 4, buf, &n), CKR_OK);
    check("AES_CCM known answer (SP 800-38C C.1)", n == 8 && !memcmp(buf, ccm_want, 8));
    p.ulMACLen = 5;
    expect("ulMACLen 5", f->C_EncryptInit(s, &mech, key), CKR_MECHANISM_PARAM_INVALID);

    static const CK_BYTE cts_key[16] = "chicken teriyaki";
    static CK_BYTE iv[16];
    static const CK_BYTE cts_want[17] = {0xc6, 0x35, 0x35, 0x68, 0xf2, 0xbf, 0x8c, 0xb4, 0xd8,
                                         0xa5, 0x80, 0x36, 0x2d, 0xa7, 0xff, 0x7f, 0x97};
    CK_OBJECT_HANDLE k2 = secret_key(CKK_AES, cts_key, sizeof cts_key);
    CK_MECHANISM cts = {CKM_AES_CTS, iv, sizeof iv};
    n = sizeof buf;
    expect("C_EncryptInit AES_CTS", f->C_EncryptInit(s, &cts, k2), CKR_OK);
    expect("C_Encrypt AES_CTS", f->C_Encrypt(s, (CK_BYTE_PTR) "I would like the ", 17, buf, &n), CKR_OK);
    check("AES_CTS known answer (RFC 3962)", n == 17 && !memcmp(buf, cts_want, 17));
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODULE PIN TOKEN-LABEL SCENARIO [ARGS]\n", argv[0]);
        return 2;
    }
    load_module(argv[1]);
    token_label = argv[3];
    expect("C_Initialize", f->C_Initialize(NULL), CKR_OK);
    CK_SLOT_ID slot = token_slot();
    expect("C_OpenSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    expect("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2])), CKR_OK);
    const char *scenario = argv[4];
    if (!strcmp(scenario, "des3")) des3();
    else if (!strcmp(scenario, "rsa-aes-wrap") && argc > 5) rsa_aes_wrap(argv[5]);
    else if (!strcmp(scenario, "cloudhsm")) cloudhsm();
    else if (!strcmp(scenario, "sha3")) sha3();
    else if (!strcmp(scenario, "eddsa")) eddsa();
    else if (!strcmp(scenario, "x25519")) x25519();
    else if (!strcmp(scenario, "hkdf")) hkdf();
    else if (!strcmp(scenario, "aes-ccm-cts")) aes_ccm_cts();
    else {
        fprintf(stderr, "unknown scenario %s\n", scenario);
        return 2;
    }
    expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
    if (!failures) printf("ALL OK\n");
    return failures ? 1 : 0;
}
