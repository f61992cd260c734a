/*
 * accounts.c - Subsonic apps' accounts and API keys in LMDB (accounts.h).
 *
 * Entry points: talas_account_key_load, talas_account_put / _password /
 * _del / _foreach, talas_apikey_create / _revoke / _user. Logs nothing.
 *
 * Records, through the record codec (core/record.h):
 *   accounts (key: the name)
 *     u8 version (1), u8 reserved (0), u16 reserved (0), u64 created_ms,
 *     u64 changed_ms, blob nonce (12 bytes), blob ciphertext and GCM tag
 *     (the password's length + 16 bytes); the associated data is
 *     "talas-account-1" NUL and the name
 *   api_keys (key: the SHA-256 of the key's 32 random bytes)
 *     u8 version (1), u8 reserved (0), u16 reserved (0), u64 created_ms,
 *     str the account's name
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/record.h"
#include "core/token.h"
#include "store/accounts.h"

#define RECORD_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16
#define AAD_PREFIX "talas-account-1"
#define KEY_BYTES 32

int talas_account_key_load(const char *path, struct talas_account_key *key, char **error_r)
{
    unsigned char *data;
    unsigned int md_len = 0;
    size_t len;
    int rc;

    if (talas_token_read_key_file(path, "subsonic.password_key_file", 1, &data, &len, error_r) != 0)
        return -1;
    if (len < 32) {
        *error_r = xasprintf("subsonic.password_key_file: \"%s\" holds %zu bytes: at least 32 are needed "
                             "(openssl rand -hex 32)",
                             path, len);
        rc = -1;
    } else {
        rc = EVP_Digest(data, len, key->k, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32 ? 0 : -1;
        if (rc != 0)
            *error_r = xasprintf("subsonic.password_key_file: EVP_Digest() failed");
    }
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

const char *talas_account_name_problem(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;

    if (len == 0 || len > TALAS_ACCOUNT_NAME_MAX)
        return "a user name is 1 to 128 bytes";
    if (!talas_utf8_valid(name, len))
        return "a user name is UTF-8";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return "a user name has no control characters";
    return NULL;
}

const char *talas_account_password_problem(const char *password, size_t len)
{
    if (len == 0 || len > TALAS_ACCOUNT_PASSWORD_MAX)
        return "a password is 1 to 256 bytes";
    if (memchr(password, '\0', len) != NULL)
        return "a password has no NUL byte";
    return NULL;
}

static MDB_val key_of(const char *name)
{
    MDB_val k = {strlen(name), (void *)name};
    return k;
}

/* AES-256-GCM of IN (LEN bytes) into OUT (LEN + TAG_LEN bytes), or the
 * reverse (ENCRYPT 0: IN holds the ciphertext and its tag, LEN counts
 * both). 0, or -1 (a forged or damaged record when decrypting). */
static int gcm(int encrypt, const struct talas_account_key *key, const unsigned char nonce[NONCE_LEN],
               const char *name, const unsigned char *in, size_t len, unsigned char *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    size_t text_len = encrypt ? len : len - TAG_LEN;
    int n, ok;

    if (c == NULL || (!encrypt && len < TAG_LEN) || text_len > INT32_MAX) {
        EVP_CIPHER_CTX_free(c);
        return -1;
    }
    ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
         EVP_CipherInit_ex(c, NULL, NULL, key->k, nonce, encrypt) == 1 &&
         EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)AAD_PREFIX, sizeof(AAD_PREFIX)) == 1 &&
         EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)name, (int)strlen(name)) == 1 &&
         EVP_CipherUpdate(c, out, &n, in, (int)text_len) == 1;
    if (ok && !encrypt)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(in + text_len)) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(c, out + text_len, &n) == 1;
    if (ok && encrypt)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + text_len) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

static int random_bytes(void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom((char *)buf + got, len - got, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

struct account_record {
    uint64_t created_ms, changed_ms;
    const unsigned char *nonce;
    const unsigned char *sealed;
    size_t sealed_len;
};

static int account_decode(const MDB_val *v, struct account_record *a)
{
    struct talas_record_reader r;
    size_t nonce_len = 0;

    talas_record_reader_init(&r, v->mv_data, v->mv_size);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    talas_record_get_zero(&r, 3);
    a->created_ms = talas_record_get_u64(&r);
    a->changed_ms = talas_record_get_u64(&r);
    a->nonce = talas_record_get_blob(&r, &nonce_len);
    a->sealed = talas_record_get_blob(&r, &a->sealed_len);
    if (talas_record_reader_end(&r) != 0 || nonce_len != NONCE_LEN || a->sealed_len < TAG_LEN ||
        a->sealed_len > TALAS_ACCOUNT_PASSWORD_MAX + TAG_LEN)
        return -1;
    return 0;
}

int talas_account_put(struct talas_storage *st, const struct talas_account_key *key, const char *name,
                      const char *password, size_t len, enum talas_account_put_mode mode)
{
    unsigned char nonce[NONCE_LEN], sealed[TALAS_ACCOUNT_PASSWORD_MAX + TAG_LEN];
    struct talas_record_writer w;
    struct account_record old;
    struct talas_buf rec = {0};
    uint64_t now = talas_wall_ms(), created = now;
    MDB_val k = key_of(name), v;
    MDB_txn *txn;
    int rc;

    if (len > TALAS_ACCOUNT_PASSWORD_MAX || random_bytes(nonce, sizeof(nonce)) != 0 ||
        gcm(1, key, nonce, name, (const unsigned char *)password, len, sealed) != 0)
        return -1;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_ACCOUNTS), &k, &v);
    if (rc == 0 && mode == TALAS_ACCOUNT_CREATE)
        rc = EEXIST;
    else if (rc == MDB_NOTFOUND && mode == TALAS_ACCOUNT_CREATE)
        rc = 0;
    else if (rc == 0 && account_decode(&v, &old) == 0)
        created = old.created_ms;
    if (rc == 0) {
        talas_record_writer_buf(&w, &rec);
        talas_record_put_u8(&w, RECORD_VERSION);
        talas_record_put_zero(&w, 3);
        talas_record_put_u64(&w, created);
        talas_record_put_u64(&w, now);
        talas_record_put_blob(&w, nonce, sizeof(nonce));
        talas_record_put_blob(&w, sealed, len + TAG_LEN);
        v.mv_size = rec.len;
        v.mv_data = rec.data;
        rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_ACCOUNTS), &k, &v, 0);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    talas_buf_free(&rec);
    return rc;
}

int talas_account_password(struct talas_storage *st, MDB_txn *txn, const struct talas_account_key *key,
                           const char *name, char *out, size_t cap, size_t *len_r)
{
    struct account_record a;
    MDB_val k = key_of(name), v;
    size_t len;
    int rc;

    if (k.mv_size == 0 || k.mv_size > TALAS_ACCOUNT_NAME_MAX)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_ACCOUNTS), &k, &v)) != 0)
        return rc;
    if (account_decode(&v, &a) != 0)
        return -1;
    if (key == NULL)
        return 0;
    len = a.sealed_len - TAG_LEN;
    if (cap < len + 1 || gcm(0, key, a.nonce, name, a.sealed, a.sealed_len, (unsigned char *)out) != 0)
        return -1;
    out[len] = '\0';
    if (len_r != NULL)
        *len_r = len;
    return 0;
}

struct apikey_record {
    uint64_t created_ms;
    const char *user;
};

static int apikey_decode(const MDB_val *v, struct apikey_record *a)
{
    struct talas_record_reader r;

    talas_record_reader_init(&r, v->mv_data, v->mv_size);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    talas_record_get_zero(&r, 3);
    a->created_ms = talas_record_get_u64(&r);
    a->user = talas_record_get_str(&r, NULL);
    return talas_record_reader_end(&r);
}

/* Calls FN for every API key record (key hash, decoded record); FN returns
 * 0 to go on. */
typedef int apikey_fn(const MDB_val *k, const struct apikey_record *a, void *arg);

static int apikey_foreach(struct talas_storage *st, MDB_txn *txn, apikey_fn *fn, void *arg)
{
    struct apikey_record a;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_API_KEYS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (apikey_decode(&v, &a) != 0)
            continue; /* damaged: belongs to nobody, never accepted */
        if ((rc = fn(&k, &a, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

struct collect {
    const char *user;
    struct talas_buf keys; /* the hashes of USER's keys, KEY_BYTES each */
    uint64_t count;
};

static int collect_key(const MDB_val *k, const struct apikey_record *a, void *arg)
{
    struct collect *c = arg;

    if (strcmp(a->user, c->user) == 0 && k->mv_size == KEY_BYTES) {
        talas_buf_append(&c->keys, k->mv_data, KEY_BYTES);
        c->count++;
    }
    return 0;
}

int talas_account_del(struct talas_storage *st, const char *name, uint64_t *keys_r)
{
    struct collect c = {.user = name};
    MDB_val k = key_of(name);
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_ACCOUNTS), &k, NULL);
    /* collected first: no delete under an open cursor */
    if (rc == 0)
        rc = apikey_foreach(st, txn, collect_key, &c);
    for (size_t i = 0; rc == 0 && i < c.count; i++) {
        MDB_val hk = {KEY_BYTES, c.keys.data + i * KEY_BYTES};
        rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_API_KEYS), &hk, NULL);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc == 0 && keys_r != NULL)
        *keys_r = c.count;
    talas_buf_free(&c.keys);
    return rc;
}

int talas_account_foreach(struct talas_storage *st, MDB_txn *txn, talas_account_fn *fn, void *arg)
{
    struct account_record a;
    MDB_cursor *cur;
    MDB_val k, v;
    char name[TALAS_ACCOUNT_NAME_MAX + 1];
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_ACCOUNTS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct collect c = {.user = name};
        if (k.mv_size == 0 || k.mv_size > TALAS_ACCOUNT_NAME_MAX || account_decode(&v, &a) != 0) {
            rc = -1;
            break;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        rc = apikey_foreach(st, txn, collect_key, &c);
        talas_buf_free(&c.keys);
        if (rc != 0 || (rc = fn(name, a.created_ms, c.count, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The hash of the key whose text is KEY (LEN hex digits) into HASH_R; -1
 * when it is not one. */
static int apikey_hash(const char *key, size_t len, unsigned char hash_r[KEY_BYTES])
{
    unsigned char raw[KEY_BYTES];
    unsigned int md_len = 0;

    if (len != TALAS_APIKEY_TEXT_LEN)
        return -1;
    for (size_t i = 0; i < KEY_BYTES; i++) {
        int v = 0;
        for (size_t j = 0; j < 2; j++) {
            char ch = key[2 * i + j];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        raw[i] = (unsigned char)v;
    }
    return EVP_Digest(raw, sizeof(raw), hash_r, &md_len, EVP_sha256(), NULL) == 1 && md_len == KEY_BYTES ? 0
                                                                                                         : -1;
}

int talas_apikey_create(struct talas_storage *st, const char *name, char key_r[TALAS_APIKEY_TEXT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[KEY_BYTES], hash[KEY_BYTES];
    struct talas_record_writer w;
    struct talas_buf rec = {0};
    MDB_val k = key_of(name), v;
    MDB_txn *txn;
    int rc;

    if (random_bytes(raw, sizeof(raw)) != 0)
        return -1;
    for (size_t i = 0; i < KEY_BYTES; i++) {
        key_r[2 * i] = hex[raw[i] >> 4];
        key_r[2 * i + 1] = hex[raw[i] & 15];
    }
    key_r[TALAS_APIKEY_TEXT_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    if (apikey_hash(key_r, TALAS_APIKEY_TEXT_LEN, hash) != 0)
        return -1;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_ACCOUNTS), &k, &v);
    if (rc == 0) {
        talas_record_writer_buf(&w, &rec);
        talas_record_put_u8(&w, RECORD_VERSION);
        talas_record_put_zero(&w, 3);
        talas_record_put_u64(&w, talas_wall_ms());
        talas_record_put_str(&w, name);
        k.mv_size = KEY_BYTES;
        k.mv_data = hash;
        v.mv_size = rec.len;
        v.mv_data = rec.data;
        rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_API_KEYS), &k, &v, MDB_NOOVERWRITE);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    talas_buf_free(&rec);
    return rc;
}

int talas_apikey_revoke(struct talas_storage *st, const char *name, const char *key, size_t len)
{
    unsigned char hash[KEY_BYTES];
    struct apikey_record a;
    MDB_val k = {KEY_BYTES, hash}, v;
    MDB_txn *txn;
    int rc;

    if (apikey_hash(key, len, hash) != 0)
        return MDB_NOTFOUND;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_API_KEYS), &k, &v);
    if (rc == 0 && (apikey_decode(&v, &a) != 0 || strcmp(a.user, name) != 0))
        rc = MDB_NOTFOUND;
    if (rc == 0)
        rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_API_KEYS), &k, NULL);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    return rc;
}

int talas_apikey_user(struct talas_storage *st, MDB_txn *txn, const char *key, size_t len,
                      char user_r[TALAS_ACCOUNT_NAME_MAX + 1])
{
    unsigned char hash[KEY_BYTES];
    struct apikey_record a;
    MDB_val k = {KEY_BYTES, hash}, v;
    int rc;

    if (apikey_hash(key, len, hash) != 0)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_API_KEYS), &k, &v)) != 0)
        return rc;
    if (apikey_decode(&v, &a) != 0 || strlen(a.user) > TALAS_ACCOUNT_NAME_MAX)
        return -1;
    /* the account may have gone since (talas_account_del removes its keys
     * in the same transaction; this is for a store damaged otherwise) */
    k = key_of(a.user);
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_ACCOUNTS), &k, &v)) != 0)
        return rc;
    strcpy(user_r, a.user);
    return 0;
}
