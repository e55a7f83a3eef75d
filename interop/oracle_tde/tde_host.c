/*
 * Oracle TDE replayed through the module. Oracle Database cannot run here, so this program does, one Oracle server
 * process per invocation, the PKCS#11 calls that ../shared/docs/oracle-tde-and-cloudhsm.md (part A and its replay
 * script) documents for each ADMINISTER KEY MANAGEMENT statement. Tablespace keys (TEKs) are encrypted under the
 * master key with CKM_AES_CBC / CKM_AES_CBC_PAD; their metadata and the file wallets are in tde_files.h.
 *
 * Usage: tde_host MODULE [options] COMMAND
 *   -p PIN           C_Login PIN, "user:password" (IDENTIFIED BY "u:p")
 *   -a WALLET        IDENTIFIED BY EXTERNAL STORE: the PIN is the HSM_PASSWORD secret of this auto-login wallet
 *   -d DB            the database's key metadata
 *   -w WALLET -W PW  the software keystore and its password (MIGRATE USING / REVERSE MIGRATE)
 *   -l os            C_Initialize with CKF_OS_LOCKING_OK (default: NULL arguments)
 *   -u               misaligned output pointers, as Oracle's packed structures give them
 *   -t minimal       generate the master key with a minimal template (default: Oracle's inferred full template)
 *   -k KEY-ID        the key of USE KEY
 *   -m CBC|CBC_PAD   the mechanism for new tablespace keys
 * Commands:
 *   setkey      SET ENCRYPTION KEY (creates the keystore objects on first use; re-encrypts existing TEKs)
 *   tablespace  CREATE TABLESPACE ... ENCRYPTION: TEKs read from stdin as "NAME HEX" lines
 *   migrate     SET ENCRYPTION KEY ... MIGRATE USING wallet: FILE TEKs re-encrypted under a new HSM master key
 *   usekey      USE KEY 'id' FORCE KEYSTORE: every TEK re-encrypted under an existing HSM key
 *   open        keystore open after a restart (every activated key looked up by label, no decryption), then the
 *               first access to every tablespace: prints "tek NAME HEX"
 *   reverse     SET ENCRYPTION KEY ... REVERSE MIGRATE: TEKs decrypted in the HSM, encrypted under a new file key
 * Prints "ok"/"FAIL" lines, "calls C_X=n ..." (every PKCS#11 call this process made), then "ALL OK" or exits 1.
 * A missing master key prints what Oracle would ("ORA-28353: failed to open wallet") and exits 3.
 */
#include <openssl/crypto.h>
#include <unistd.h>

#include "common.h"
#include "tde_files.h"

#define CK_TRUE 1
#define CK_FALSE 0

static const char *pin, *auto_login, *db_path, *wallet_path, *wallet_password, *use_key_id, *template_kind = "full";
static const char *tek_mech = "CBC";
static int os_locking, misaligned;
static CK_SLOT_ID slot;
static database db;
static wallet file_wallet;

/* ---- every call counted: a copy of the module's function table whose entries count, then forward ---------- */
#define INDEX_OF(name, params, args) I_##name,
enum function_index { PYHSM_V2_FUNCTIONS(INDEX_OF) N_FUNCTIONS };
static const char *function_names[] = {
#define NAME_OF(name, params, args) #name,
    PYHSM_V2_FUNCTIONS(NAME_OF)};
static unsigned long calls[N_FUNCTIONS];
static CK_FUNCTION_LIST module_table, counting_table;
#define COUNTING(name, params, args)                         \
    static CK_RV counting_##name params {                    \
        calls[I_##name]++;                                   \
        return ((CK_RV(*) params)module_table.name) args;    \
    }
PYHSM_V2_FUNCTIONS(COUNTING)

static void count_calls(void) {
    module_table = *f;
    counting_table = *f;
#define INSTALL(name, params, args) counting_table.name = (__typeof__(counting_table.name))counting_##name;
    PYHSM_V2_FUNCTIONS(INSTALL)
    f = &counting_table;
}

/* Functions that change what the token holds. */
static const enum function_index writes[] = {I_C_CreateObject, I_C_CopyObject,  I_C_DestroyObject, I_C_SetAttributeValue,
                                             I_C_GenerateKey,  I_C_GenerateKeyPair, I_C_UnwrapKey, I_C_DeriveKey,
                                             I_C_InitToken,    I_C_InitPIN,     I_C_SetPIN};

static void report_calls(void) {
    unsigned long n_writes = 0;
    printf("calls");
    for (int i = 0; i < N_FUNCTIONS; i++)
        if (calls[i]) printf(" %s=%lu", function_names[i], calls[i]);
    for (size_t i = 0; i < sizeof writes / sizeof *writes; i++) n_writes += calls[writes[i]];
    printf("\ntoken writes %lu\n", n_writes);
}

/* ---- output pointers: at an odd address in misaligned runs; read back with memcpy -------------------------- */
static unsigned char out_area[8 * 64 + 1];
static void *out_pointer(void) {
    memset(out_area, 0xA5, sizeof out_area);
    return out_area + (misaligned ? 1 : 0);
}
static CK_ULONG out_value(const void *p, size_t index) {
    CK_ULONG v;
    memcpy(&v, (const unsigned char *)p + index * sizeof v, sizeof v);
    return v;
}

/* ---- step 0: what every Oracle process does when it loads the library --------------------------------------- */
static int has_flags(CK_MECHANISM_TYPE type, CK_FLAGS flags) {
    CK_MECHANISM_INFO info;
    CK_RV rv = f->C_GetMechanismInfo(slot, type, &info);
    return rv == CKR_OK && (info.flags & flags) == flags && info.ulMinKeySize <= 32 && info.ulMaxKeySize >= 32;
}

static void start_oracle_process(void) {
    CK_C_INITIALIZE_ARGS args = {0};
    args.flags = CKF_OS_LOCKING_OK;
    expect("C_Initialize", f->C_Initialize(os_locking ? &args : NULL), CKR_OK);
    CK_INFO info;
    expect("C_GetInfo", f->C_GetInfo(&info), CKR_OK);
    CK_ULONG *count = out_pointer();
    expect("C_GetSlotList count", f->C_GetSlotList(CK_TRUE, NULL, count), CKR_OK);
    CK_SLOT_ID slots[64];
    CK_ULONG n = out_value(count, 0);
    check("a slot with a token", n >= 1 && n <= 64);
    expect("C_GetSlotList", f->C_GetSlotList(CK_TRUE, slots, count), CKR_OK);
    slot = slots[0]; /* Oracle uses the first slot */
    CK_SLOT_INFO slot_info;
    expect("C_GetSlotInfo", f->C_GetSlotInfo(slot, &slot_info), CKR_OK);
    CK_TOKEN_INFO token;
    expect("C_GetTokenInfo", f->C_GetTokenInfo(slot, &token), CKR_OK);
    check("token not CKF_WRITE_PROTECTED", !(token.flags & CKF_WRITE_PROTECTED));
    check("token initialized, login required",
          (token.flags & (CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED)) == (CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED));
    CK_MECHANISM_TYPE mechs[256];
    CK_ULONG n_mechs = 0;
    expect("C_GetMechanismList count", f->C_GetMechanismList(slot, NULL, &n_mechs), CKR_OK);
    check("mechanism count fits", n_mechs <= 256);
    expect("C_GetMechanismList", f->C_GetMechanismList(slot, mechs, &n_mechs), CKR_OK);
    int listed = 0;
    for (CK_ULONG i = 0; i < n_mechs; i++)
        listed += mechs[i] == CKM_AES_KEY_GEN || mechs[i] == CKM_AES_CBC || mechs[i] == CKM_AES_CBC_PAD;
    check("AES_KEY_GEN, AES_CBC, AES_CBC_PAD listed", listed == 3);
    check("AES_KEY_GEN flags CKF_GENERATE, 32-byte keys", has_flags(CKM_AES_KEY_GEN, CKF_GENERATE));
    check("AES_CBC flags CKF_ENCRYPT|CKF_DECRYPT", has_flags(CKM_AES_CBC, CKF_ENCRYPT | CKF_DECRYPT));
    check("AES_CBC_PAD flags CKF_ENCRYPT|CKF_DECRYPT", has_flags(CKM_AES_CBC_PAD, CKF_ENCRYPT | CKF_DECRYPT));
}

/* SET KEYSTORE OPEN IDENTIFIED BY "u:p" (or BY EXTERNAL STORE): a read-write session logged in as the user. */
static CK_SESSION_HANDLE open_keystore(void) {
    char secret[256] = "";
    if (auto_login) {
        char password[300];
        wallet sso;
        auto_login_password(password, sizeof password);
        const wallet_entry *e = wallet_open(auto_login, password, &sso) ? NULL : wallet_find(&sso, "secret", "HSM_PASSWORD");
        check("HSM_PASSWORD in the auto-login wallet", e && e->len < sizeof secret);
        if (e && e->len < sizeof secret) memcpy(secret, e->value, e->len);
        OPENSSL_cleanse(&sso, sizeof sso);
    } else {
        snprintf(secret, sizeof secret, "%s", pin);
    }
    CK_SESSION_HANDLE *out = out_pointer();
    expect("C_OpenSession", f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, out), CKR_OK);
    CK_SESSION_HANDLE s = out_value(out, 0);
    expect("C_Login", f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)secret, strlen(secret)), CKR_OK);
    OPENSSL_cleanse(secret, sizeof secret);
    return s;
}

/* FindObjectsInit{CKA_CLASS, CKA_LABEL}, FindObjects, FindObjectsFinal; returns how many matched (up to 8). */
static CK_ULONG find_by_label(CK_SESSION_HANDLE s, CK_ULONG cls, const char *label, CK_OBJECT_HANDLE *first) {
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
    expect("C_FindObjectsInit", f->C_FindObjectsInit(s, t, 2), CKR_OK);
    CK_OBJECT_HANDLE *handles = out_pointer();
    CK_ULONG *count = (CK_ULONG *)((unsigned char *)handles + 8 * sizeof(CK_OBJECT_HANDLE));
    expect("C_FindObjects", f->C_FindObjects(s, handles, 8, count), CKR_OK);
    CK_ULONG n = out_value(count, 0);
    if (first) *first = n ? out_value(handles, 0) : 0;
    expect("C_FindObjectsFinal", f->C_FindObjectsFinal(s), CKR_OK);
    return n;
}

static void master_key_label(const char *key_id, char *label, size_t size) {
    snprintf(label, size, "ORACLE.TDE.HSM.MK.%s", key_id);
}

/* The master key of key_id, or 0 (and a FAIL) when the token does not hold exactly one. */
static CK_OBJECT_HANDLE master_key(CK_SESSION_HANDLE s, const char *key_id) {
    char label[64];
    CK_OBJECT_HANDLE h;
    master_key_label(key_id, label, sizeof label);
    CK_ULONG n = find_by_label(s, CKO_SECRET_KEY, label, &h);
    check("exactly one master key with the label", n == 1);
    return n == 1 ? h : 0;
}

static void new_key_id(char id[KEY_ID_LEN + 1]) {
    unsigned char mkid[16], zero[16] = {0};
    do random_bytes(mkid, sizeof mkid);
    while (!memcmp(mkid, zero, sizeof zero)); /* a zero MKID is ORA-46685 */
    id[0] = '0', id[1] = '6';
    hex_encode(mkid, sizeof mkid, id + 2);
}

/* ---- step 1: the keystore's objects ------------------------------------------------------------------------- */
static void create_data_object(CK_SESSION_HANDLE s, const char *label, const char *value) {
    CK_ULONG cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &yes, 1},
                        {CKA_LABEL, (void *)label, strlen(label)}, {CKA_VALUE, (void *)value, strlen(value)}};
    CK_OBJECT_HANDLE *out = out_pointer();
    expect("C_CreateObject data object", f->C_CreateObject(s, t, 5, out), CKR_OK);
    check("data object handle", out_value(out, 0) != 0);
}

/* The opaque object Oracle creates once, at the first keystore open. */
static void ensure_supported_iden(CK_SESSION_HANDLE s) {
    if (find_by_label(s, CKO_DATA, "DATA_OBJECT_SUPPORTED_IDEN", NULL) == 0) {
        create_data_object(s, "DATA_OBJECT_SUPPORTED_IDEN", "pyhsm oracle tde replay");
        printf("created DATA_OBJECT_SUPPORTED_IDEN\n");
    } else {
        printf("found DATA_OBJECT_SUPPORTED_IDEN\n");
    }
}

/* ORACLE.SECURITY.{KM,KT,CL}.ENCRYPTION.<hex(ascii(key id))>, unless the KM one exists already. */
static void ensure_companions(CK_SESSION_HANDLE s, const char *key_id) {
    static const char *prefixes[] = {"KM", "KT", "CL"};
    char hex[2 * KEY_ID_LEN + 1], label[128], value[128];
    hex_encode((const unsigned char *)key_id, strlen(key_id), hex);
    snprintf(label, sizeof label, "ORACLE.SECURITY.KM.ENCRYPTION.%s", hex);
    if (find_by_label(s, CKO_DATA, label, NULL)) return;
    for (int i = 0; i < 3; i++) {
        snprintf(label, sizeof label, "ORACLE.SECURITY.%s.ENCRYPTION.%s", prefixes[i], hex);
        snprintf(value, sizeof value, "%s metadata of master key %s", prefixes[i], key_id);
        create_data_object(s, label, value);
    }
}

/* C_GetAttributeValue as Oracle checks a master key: sizes first, then values; CKA_VALUE is sensitive. */
static void check_master_key_attributes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mk, const char *label) {
    CK_ATTRIBUTE t[] = {{CKA_LABEL, NULL, 0},   {CKA_KEY_TYPE, NULL, 0}, {CKA_VALUE_LEN, NULL, 0},
                        {CKA_EXTRACTABLE, NULL, 0}, {CKA_SENSITIVE, NULL, 0}, {CKA_WRAP, NULL, 0},
                        {CKA_UNWRAP, NULL, 0},  {CKA_MODIFIABLE, NULL, 0}};
    enum { n = sizeof t / sizeof *t };
    expect("C_GetAttributeValue sizes", f->C_GetAttributeValue(s, mk, t, n), CKR_OK);
    check("label size", t[0].ulValueLen == strlen(label));
    unsigned char values[n][64];
    for (CK_ULONG i = 0; i < n; i++) t[i].pValue = values[i];
    expect("C_GetAttributeValue values", f->C_GetAttributeValue(s, mk, t, n), CKR_OK);
    check("CKA_LABEL", !memcmp(values[0], label, strlen(label)));
    check("CKA_KEY_TYPE CKK_AES", out_value(values[1], 0) == CKK_AES);
    check("CKA_VALUE_LEN 32", out_value(values[2], 0) == 32);
    check("CKA_EXTRACTABLE false, CKA_SENSITIVE true", values[3][0] == CK_FALSE && values[4][0] == CK_TRUE);
    check("CKA_WRAP, CKA_UNWRAP true", values[5][0] == CK_TRUE && values[6][0] == CK_TRUE);
    int full = !strcmp(template_kind, "full");
    check(full ? "CKA_MODIFIABLE false as asked" : "CKA_MODIFIABLE true by default", values[7][0] == !full);
    unsigned char secret[64];
    CK_ATTRIBUTE value = {CKA_VALUE, secret, sizeof secret};
    expect("CKA_VALUE is CKR_ATTRIBUTE_SENSITIVE", f->C_GetAttributeValue(s, mk, &value, 1), CKR_ATTRIBUTE_SENSITIVE);
    check("CKA_VALUE length unavailable", value.ulValueLen == CK_UNAVAILABLE_INFORMATION);
}

static CK_OBJECT_HANDLE generate_master_key(CK_SESSION_HANDLE s, const char *key_id) {
    char label[64];
    master_key_label(key_id, label, sizeof label);
    CK_ULONG cls = CKO_SECRET_KEY;
    CK_ULONG type = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},  {CKA_KEY_TYPE, &type, sizeof type},
                        {CKA_VALUE_LEN, &len, sizeof len}, {CKA_LABEL, label, strlen(label)},
                        {CKA_TOKEN, &yes, 1},            /* the minimal template ends here */
                        {CKA_PRIVATE, &yes, 1},          {CKA_SENSITIVE, &yes, 1}, {CKA_EXTRACTABLE, &no, 1},
                        {CKA_MODIFIABLE, &no, 1},        {CKA_ENCRYPT, &yes, 1},   {CKA_DECRYPT, &yes, 1},
                        {CKA_WRAP, &yes, 1},             {CKA_UNWRAP, &yes, 1}};
    CK_ULONG n = strcmp(template_kind, "minimal") ? sizeof t / sizeof *t : 5;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE *out = out_pointer();
    expect("C_GenerateKey master key", f->C_GenerateKey(s, &gen, t, n, out), CKR_OK);
    CK_OBJECT_HANDLE mk = out_value(out, 0);
    check_master_key_attributes(s, mk, label);
    return mk;
}

/* ---- tablespace keys under a master key ---------------------------------------------------------------------- */
static CK_MECHANISM_TYPE mechanism_of(const char *name) {
    return strcmp(name, "CBC_PAD") ? CKM_AES_CBC : CKM_AES_CBC_PAD;
}

/* C_EncryptInit + C_Encrypt with the length query first: 32 bytes under CBC, 48 under CBC_PAD. */
static size_t hsm_encrypt(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mk, const char *mech, const unsigned char iv[16],
                          const unsigned char tek[32], unsigned char out[48]) {
    CK_MECHANISM m = {mechanism_of(mech), (void *)iv, 16};
    CK_ULONG want = m.mechanism == CKM_AES_CBC ? 32 : 48, len = 0;
    expect("C_EncryptInit", f->C_EncryptInit(s, &m, mk), CKR_OK);
    expect("C_Encrypt length query", f->C_Encrypt(s, (CK_BYTE_PTR)tek, 32, NULL, &len), CKR_OK);
    check(want == 32 ? "CBC length 32" : "CBC_PAD length 48", len == want);
    len = 48;
    expect("C_Encrypt", f->C_Encrypt(s, (CK_BYTE_PTR)tek, 32, out, &len), CKR_OK);
    check("ciphertext length", len == want);
    return len;
}

static void hsm_decrypt(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mk, const tek_row *row, unsigned char tek[32]) {
    CK_MECHANISM m = {mechanism_of(row->mech), (void *)row->iv, 16};
    unsigned char out[48];
    CK_ULONG len = 0;
    expect("C_DecryptInit", f->C_DecryptInit(s, &m, mk), CKR_OK);
    expect("C_Decrypt length query", f->C_Decrypt(s, (CK_BYTE_PTR)row->ct, row->ct_len, NULL, &len), CKR_OK);
    check("length query covers the key", len >= 32 && len <= 48);
    len = sizeof out;
    expect("C_Decrypt", f->C_Decrypt(s, (CK_BYTE_PTR)row->ct, row->ct_len, out, &len), CKR_OK);
    check("decrypted a 32-byte key", len == 32);
    memcpy(tek, out, 32);
}

/* The plaintext TEK of a row, from the HSM or (software only) from the file wallet. */
static int decrypt_row(CK_SESSION_HANDLE s, const tek_row *row, unsigned char tek[32]) {
    if (!strcmp(row->store, "HSM")) {
        CK_OBJECT_HANDLE mk = master_key(s, row->key_id);
        if (mk) hsm_decrypt(s, mk, row, tek);
        return mk ? 0 : 1;
    }
    const wallet_entry *key = wallet_find(&file_wallet, "key", row->key_id);
    int n = key && key->len == 32 ? software_aes_cbc(0, !strcmp(row->mech, "CBC_PAD"), key->value, row->iv, row->ct,
                                                     row->ct_len, tek)
                                  : -1;
    check("file wallet decrypts the key", n == 32);
    return n != 32;
}

static void encrypt_row_in_hsm(CK_SESSION_HANDLE s, tek_row *row, const char *key_id, CK_OBJECT_HANDLE mk,
                               const unsigned char tek[32]) {
    random_bytes(row->iv, sizeof row->iv);
    row->ct_len = hsm_encrypt(s, mk, row->mech, row->iv, tek, row->ct);
    snprintf(row->store, sizeof row->store, "HSM");
    snprintf(row->key_id, sizeof row->key_id, "%s", key_id);
}

/* A new current master key, recorded in the database with the keystore that holds it. */
static void activate(const char *store, const char *key_id) {
    check("room for another master key", db.n_master_keys < MAX_KEYS);
    if (db.n_master_keys >= MAX_KEYS) return;
    master_key_ref *k = &db.master_keys[db.n_master_keys++];
    snprintf(k->store, sizeof k->store, "%s", store);
    snprintf(k->id, sizeof k->id, "%s", key_id);
}

/* Every TEK re-encrypted under a master key of the HSM, which becomes the current one. */
static void reencrypt_all(CK_SESSION_HANDLE s, const char *key_id, CK_OBJECT_HANDLE mk) {
    for (int i = 0; i < db.n_rows; i++) {
        unsigned char tek[32];
        if (decrypt_row(s, &db.rows[i], tek)) continue;
        encrypt_row_in_hsm(s, &db.rows[i], key_id, mk, tek);
        OPENSSL_cleanse(tek, sizeof tek);
    }
    activate("HSM", key_id);
    check("database saved", db_save(db_path, &db) == 0);
    printf("current master key %s\n", key_id);
}

static void set_key(CK_SESSION_HANDLE s) {
    char id[KEY_ID_LEN + 1];
    ensure_supported_iden(s);
    new_key_id(id);
    CK_OBJECT_HANDLE mk = generate_master_key(s, id);
    ensure_companions(s, id);
    reencrypt_all(s, id, mk);
}

static void use_key(CK_SESSION_HANDLE s) {
    CK_OBJECT_HANDLE mk = master_key(s, use_key_id);
    if (!mk) return;
    ensure_companions(s, use_key_id);
    reencrypt_all(s, use_key_id, mk);
}

/* New TEKs ("NAME HEX" on stdin) under the current master key; both CBC variants are checked for each key. */
static void create_tablespaces(CK_SESSION_HANDLE s) {
    const master_key_ref *current = db.n_master_keys ? &db.master_keys[db.n_master_keys - 1] : NULL;
    check("the current master key is in the HSM", current && !strcmp(current->store, "HSM"));
    if (!current || strcmp(current->store, "HSM")) return;
    const char *id = current->id;
    CK_OBJECT_HANDLE mk = master_key(s, id);
    char name[64], hex[128];
    while (mk && scanf("%63s %127s", name, hex) == 2) {
        unsigned char tek[32], back[32], cbc[48], pad[48];
        tek_row row = {0};
        check("TEK is 32 bytes", hex_decode(hex, tek, sizeof tek) == 32);
        snprintf(row.name, sizeof row.name, "%s", name);
        snprintf(row.mech, sizeof row.mech, "%s", tek_mech);
        encrypt_row_in_hsm(s, &row, id, mk, tek);
        hsm_decrypt(s, mk, &row, back);
        check("TEK round trip", !memcmp(back, tek, 32));
        hsm_encrypt(s, mk, "CBC", row.iv, tek, cbc); /* same key and IV: CBC_PAD = CBC + one padding block */
        hsm_encrypt(s, mk, "CBC_PAD", row.iv, tek, pad);
        check("CBC_PAD starts with the CBC ciphertext", !memcmp(cbc, pad, 32));
        check("row appended", db_append_row(db_path, &row) == 0);
    }
}

/* After a restart: every activated HSM master key must be there (ORA-28353 otherwise), found by label only. */
static int open_after_restart(CK_SESSION_HANDLE s) {
    int found = 0;
    for (int i = 0; i < db.n_master_keys; i++) {
        char label[64];
        if (strcmp(db.master_keys[i].store, "HSM")) continue;
        master_key_label(db.master_keys[i].id, label, sizeof label);
        if (find_by_label(s, CKO_SECRET_KEY, label, NULL) != 1) {
            printf("ORA-28353: failed to open wallet (master key %s is not in the HSM)\n", db.master_keys[i].id);
            return 3;
        }
        found++;
    }
    check("no C_Decrypt at keystore open", calls[I_C_Decrypt] == 0 && calls[I_C_DecryptInit] == 0);
    printf("keystore open: %d HSM master keys found\n", found);
    for (int i = 0; i < db.n_rows; i++) {
        unsigned char tek[32];
        char hex[65];
        if (decrypt_row(s, &db.rows[i], tek)) continue;
        hex_encode(tek, 32, hex);
        printf("tek %s %s\n", db.rows[i].name, hex);
    }
    return 0;
}

/* Every HSM-protected TEK moves under a new master key of the software keystore; nothing is written to the HSM. */
static void reverse_migrate(CK_SESSION_HANDLE s) {
    check("room in the wallet", file_wallet.n < MAX_KEYS);
    if (file_wallet.n >= MAX_KEYS) return;
    wallet_entry *key = &file_wallet.entries[file_wallet.n];
    snprintf(key->kind, sizeof key->kind, "key");
    new_key_id(key->name);
    random_bytes(key->value, 32);
    key->len = 32;
    file_wallet.n++;
    for (int i = 0; i < db.n_rows; i++) {
        tek_row *row = &db.rows[i];
        unsigned char tek[32];
        if (decrypt_row(s, row, tek)) continue;
        random_bytes(row->iv, sizeof row->iv);
        int n = software_aes_cbc(1, !strcmp(row->mech, "CBC_PAD"), key->value, row->iv, tek, 32, row->ct);
        check("software encryption", n == 32 || n == 48);
        row->ct_len = n > 0 ? (size_t)n : 0;
        snprintf(row->store, sizeof row->store, "FILE");
        snprintf(row->key_id, sizeof row->key_id, "%s", key->name);
        OPENSSL_cleanse(tek, sizeof tek);
    }
    activate("FILE", key->name);
    check("wallet saved", wallet_save(wallet_path, wallet_password, &file_wallet) == 0);
    check("database saved", db_save(db_path, &db) == 0);
    printf("current master key %s (software keystore)\n", key->name);
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: tde_host MODULE [options] COMMAND\n"), 2;
    load_module(argv[1]);
    int opt, status = 0;
    optind = 2;
    while ((opt = getopt(argc, argv, "p:a:d:w:W:l:ut:k:m:")) != -1) {
        switch (opt) {
        case 'p': pin = optarg; break;
        case 'a': auto_login = optarg; break;
        case 'd': db_path = optarg; break;
        case 'w': wallet_path = optarg; break;
        case 'W': wallet_password = optarg; break;
        case 'l': os_locking = !strcmp(optarg, "os"); break;
        case 'u': misaligned = 1; break;
        case 't': template_kind = optarg; break;
        case 'k': use_key_id = optarg; break;
        case 'm': tek_mech = optarg; break;
        default: return 2;
        }
    }
    const char *command = optind < argc ? argv[optind] : "";
    if ((!pin && !auto_login) || !db_path) return fprintf(stderr, "-p or -a, and -d, are required\n"), 2;
    if (wallet_path && wallet_open(wallet_path, wallet_password ? wallet_password : "", &file_wallet)) return 2;
    if (db_load(db_path, &db)) return 2;
    count_calls();
    start_oracle_process();
    CK_SESSION_HANDLE s = open_keystore();
    if (!strcmp(command, "setkey") || !strcmp(command, "migrate")) {
        set_key(s); /* MIGRATE: the same calls, the old TEKs come from the file wallet (software only) */
    } else if (!strcmp(command, "tablespace")) {
        create_tablespaces(s);
    } else if (!strcmp(command, "usekey") && use_key_id) {
        use_key(s);
    } else if (!strcmp(command, "open")) {
        status = open_after_restart(s);
    } else if (!strcmp(command, "reverse") && wallet_path && wallet_password) {
        reverse_migrate(s);
    } else {
        return fprintf(stderr, "unknown command or missing option: %s\n", command), 2;
    }
    expect("C_CloseSession", f->C_CloseSession(s), CKR_OK);
    expect("C_Finalize", f->C_Finalize(NULL), CKR_OK);
    OPENSSL_cleanse(&file_wallet, sizeof file_wallet);
    report_calls();
    if (status) return status;
    if (failures) return printf("%d FAILED\n", failures), 1;
    printf("ALL OK\n");
    return 0;
}
