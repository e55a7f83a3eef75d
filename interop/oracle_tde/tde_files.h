/*
 * The two files the Oracle TDE replay keeps outside the token, with the harness's own AES (OpenSSL libcrypto):
 *
 * - the database's key metadata (what Oracle keeps in its data dictionary and control file): the activated master
 *   key ids, oldest first, with the keystore that holds each (HSM or FILE), and one row per tablespace encryption
 *   key (TEK), encrypted under one of those master keys:
 *       mk HSM|FILE <key-id>
 *       tek <name> HSM|FILE <key-id> CBC|CBC_PAD <iv-hex> <ciphertext-hex>
 * - a software keystore (the file wallet Oracle migrates from and back to, and the auto-login wallet that holds the
 *   HSM password): master keys and secrets, each AES-256-CBC-PAD encrypted under PBKDF2-HMAC-SHA256(password):
 *       pyhsm-test-wallet 1 <iterations> <salt-hex>
 *       key <key-id> <iv-hex> <ciphertext-hex>
 *       secret <name> <iv-hex> <ciphertext-hex>
 * interop/oracle_tde/test_oracle_tde.py reads and writes the same formats with pyca/cryptography.
 */
#ifndef TDE_FILES_H
#define TDE_FILES_H

#include <stddef.h>

#define KEY_ID_LEN 34 /* "06" + 32 uppercase hex digits */
#define MAX_KEYS 32
#define MAX_ROWS 128

typedef struct {
    char name[64];
    char store[8];               /* "HSM" or "FILE": where the master key that encrypts this row lives */
    char key_id[KEY_ID_LEN + 1];
    char mech[8];                /* "CBC" or "CBC_PAD" */
    unsigned char iv[16];
    unsigned char ct[48];
    size_t ct_len;
} tek_row;

typedef struct {
    char store[8];
    char id[KEY_ID_LEN + 1];
} master_key_ref;

typedef struct {
    master_key_ref master_keys[MAX_KEYS]; /* activated, oldest first; the last one is current */
    int n_master_keys;
    tek_row rows[MAX_ROWS];
    int n_rows;
} database;

typedef struct {
    char kind[8];   /* "key" or "secret" */
    char name[128];
    unsigned char value[128];
    size_t len;
} wallet_entry;

typedef struct {
    wallet_entry entries[MAX_KEYS];
    int n;
} wallet;

/* All return 0 on success and print what went wrong otherwise. */
int db_load(const char *path, database *db);
int db_save(const char *path, const database *db);      /* whole file, atomically (temp file + rename) */
int db_append_row(const char *path, const tek_row *row); /* one write(2) with O_APPEND: safe across processes */
int wallet_open(const char *path, const char *password, wallet *w);
int wallet_save(const char *path, const char *password, const wallet *w); /* fresh salt and IVs, mode 0600 */
const wallet_entry *wallet_find(const wallet *w, const char *kind, const char *name);

/* AES-256-CBC with (pad=1) or without PKCS#7 padding; returns the output length or -1. */
int software_aes_cbc(int encrypt, int pad, const unsigned char key[32], const unsigned char iv[16],
                     const unsigned char *in, size_t in_len, unsigned char *out);
void hex_encode(const unsigned char *in, size_t len, char *out); /* uppercase, NUL-terminated */
int hex_decode(const char *in, unsigned char *out, size_t max);  /* returns the byte count or -1 */
void random_bytes(unsigned char *out, size_t len);
void auto_login_password(char *out, size_t size); /* LOCAL auto-login: bound to this host */

#endif
