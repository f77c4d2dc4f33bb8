/* Tests of the event codec (src/core/codec.h) and of the partitioner
 * (murmur2, against the Java client's published values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "core/codec.h"
#include "core/util.h"

static int dec(const char *json, smc_event_t *ev, smc_error_t *err) {
  smc_error_clear(err);
  return smc_event_decode(json, strlen(json), 1 << 20, NULL, NULL, ev, err);
}

static void proposal_full(void **state) {
  (void)state;
  smc_event_t ev;
  smc_error_t err;
  const char *j = "{\"type\":\"proposal\",\"id\":\"p-1\",\"machine\":\"lock\",\"object\":\"l-1\","
                  "\"transition\":\"acquire\",\"to\":\"held\",\"data\":{\"owner\":\"a\"},"
                  "\"expect_version\":3,\"proposer\":\"svc\",\"correlation\":\"c-9\","
                  "\"reply_to\":\"my.replies\",\"unknown\":[1,2]}";
  assert_int_equal(dec(j, &ev, &err), 0);
  assert_int_equal(ev.type, SMC_EV_PROPOSAL);
  assert_string_equal(ev.id, "p-1");
  assert_false(ev.id_derived);
  assert_string_equal(ev.machine, "lock");
  assert_string_equal(ev.object, "l-1");
  assert_string_equal(ev.transition, "acquire");
  assert_string_equal(ev.to, "held");
  assert_string_equal(json_string_value(json_object_get(ev.data, "owner")), "a");
  assert_true(ev.has_expect);
  assert_int_equal(ev.expect_version, 3);
  assert_string_equal(ev.proposer, "svc");
  assert_string_equal(ev.correlation, "c-9");
  assert_string_equal(ev.reply_to, "my.replies");
  smc_event_close(&ev);
}

static void headers(void **state) {
  (void)state;
  smc_event_t ev;
  smc_error_t err;
  const char *j = "{\"type\":\"read\",\"id\":\"r\",\"object\":\"o\"}";
  assert_int_equal(smc_event_decode(j, strlen(j), 0, "hc", "ht", &ev, &err), 0);
  assert_string_equal(ev.correlation, "hc");
  assert_string_equal(ev.reply_to, "ht");
  smc_event_close(&ev);
  /* the field wins over the header */
  j = "{\"type\":\"read\",\"id\":\"r\",\"object\":\"o\",\"correlation\":\"fc\","
      "\"reply_to\":\"ft\"}";
  assert_int_equal(smc_event_decode(j, strlen(j), 0, "hc", "ht", &ev, &err), 0);
  assert_string_equal(ev.correlation, "fc");
  assert_string_equal(ev.reply_to, "ft");
  smc_event_close(&ev);
}

typedef struct bad_case {
  const char *json;
  int code;
  const char *path;
} bad_case_t;

static void bad_events(void **state) {
  (void)state;
  static const bad_case_t cases[] = {
      {"not json", SMC_EBAD_REQUEST, ""},
      {"[1,2]", SMC_EBAD_REQUEST, ""},
      {"{}", SMC_EBAD_REQUEST, "type"},
      {"{\"type\":5}", SMC_EBAD_REQUEST, "type"},
      {"{\"type\":\"bogus\"}", SMC_EBAD_REQUEST, "type"},
      {"{\"type\":\"proposal\"}", SMC_EBAD_REQUEST, "object"},
      {"{\"type\":\"proposal\",\"object\":7}", SMC_EBAD_REQUEST, "object"},
      {"{\"type\":\"proposal\",\"object\":\"\"}", SMC_EBAD_REQUEST, "object"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"id\":1}", SMC_EBAD_REQUEST, "id"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"id\":\"\"}", SMC_EBAD_REQUEST, "id"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"machine\":[]}", SMC_EBAD_REQUEST, "machine"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"transition\":true}", SMC_EBAD_REQUEST,
       "transition"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"to\":1}", SMC_EBAD_REQUEST, "to"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"data\":\"x\"}", SMC_EBAD_REQUEST, "data"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"data\":[1]}", SMC_EBAD_REQUEST, "data"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":1.5}", SMC_EBAD_REQUEST,
       "expect_version"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":-1}", SMC_EBAD_REQUEST,
       "expect_version"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":\"1\"}", SMC_EBAD_REQUEST,
       "expect_version"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"proposer\":{}}", SMC_EBAD_REQUEST, "proposer"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"correlation\":1}", SMC_EBAD_REQUEST,
       "correlation"},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"reply_to\":1}", SMC_EBAD_REQUEST, "reply_to"},
      {"{\"type\":\"proposal\",\"object\":\"a\\u0000b\"}", SMC_EBAD_REQUEST, ""},
      {"{\"type\":\"proposal\",\"object\":\"o\",\"object\":\"p\"}", SMC_EBAD_REQUEST, ""},
      {"{\"type\":\"vote\",\"proposal\":\"p\",\"object\":\"o\",\"voter\":\"v\"}", SMC_EBAD_REQUEST,
       "accept"},
      {"{\"type\":\"vote\",\"proposal\":\"p\",\"object\":\"o\",\"voter\":\"v\",\"accept\":1}",
       SMC_EBAD_REQUEST, "accept"},
      {"{\"type\":\"vote\",\"object\":\"o\",\"voter\":\"v\",\"accept\":true}", SMC_EBAD_REQUEST,
       "proposal"},
      {"{\"type\":\"vote\",\"proposal\":\"p\",\"object\":\"o\",\"accept\":true}", SMC_EBAD_REQUEST,
       "voter"},
      {"{\"type\":\"vote\",\"proposal\":\"p\",\"object\":\"o\",\"voter\":\"v\",\"accept\":true,"
       "\"reason\":5}",
       SMC_EBAD_REQUEST, "reason"},
      {"{\"type\":\"read\",\"object\":\"o\"}", SMC_EBAD_REQUEST, "id"},
      {"{\"type\":\"read\",\"id\":\"r\"}", SMC_EBAD_REQUEST, "object"},
      {"{\"type\":\"machine\",\"definition\":\"x\"}", SMC_EBAD_REQUEST, "name"},
      {"{\"type\":\"machine\",\"name\":\"x\"}", SMC_EBAD_REQUEST, "definition"},
      {"{\"type\":\"machine\",\"name\":\"x\",\"definition\":\"d\",\"hash\":3}", SMC_EBAD_REQUEST,
       "hash"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    smc_event_t ev;
    smc_error_t err;
    int rc = dec(cases[i].json, &ev, &err);
    if (rc != cases[i].code || strcmp(err.path, cases[i].path))
      fail_msg("case %zu %s: rc %d path '%s' (%s)", i, cases[i].json, rc, err.path, err.message);
    assert_true(err.message[0] != '\0');
    smc_event_close(&ev);
  }
}

static void too_large(void **state) {
  (void)state;
  char big[200];
  snprintf(big, sizeof(big), "{\"type\":\"tick\",\"pad\":\"%0100d\"}", 0);
  smc_event_t ev;
  smc_error_t err;
  smc_error_clear(&err);
  assert_int_equal(smc_event_decode(big, strlen(big), 64, NULL, NULL, &ev, &err), SMC_ETOO_LARGE);
  smc_event_close(&ev);
  assert_int_equal(smc_event_decode(big, strlen(big), 1000, NULL, NULL, &ev, &err), 0);
  assert_int_equal(ev.type, SMC_EV_TICK);
  smc_event_close(&ev);
}

/* A rejected event still carries what is needed to address an answer. */
static void addressable_errors(void **state) {
  (void)state;
  smc_event_t ev;
  smc_error_t err;
  assert_int_equal(dec("{\"type\":\"proposal\",\"id\":\"p\",\"object\":\"o\",\"data\":5,"
                       "\"reply_to\":\"t\",\"correlation\":\"c\"}",
                       &ev, &err),
                   SMC_EBAD_REQUEST);
  assert_string_equal(err.path, "data");
  assert_string_equal(ev.id, "p");
  assert_string_equal(ev.object, "o");
  assert_string_equal(ev.reply_to, "t");
  assert_string_equal(ev.correlation, "c");
  smc_event_close(&ev);
}

static void sha_hex(const char *s, char out[65]) {
  unsigned char md[32];
  SHA256((const unsigned char *)s, strlen(s), md);
  for (int i = 0; i < 32; i++)
    sprintf(out + 2 * i, "%02x", md[i]);
}

static void derived_id(void **state) {
  (void)state;
  smc_event_t ev;
  smc_error_t err;
  char want[65];
  assert_int_equal(dec("{\"type\":\"proposal\",\"object\":\"lock-1\",\"expect_version\":3,"
                       "\"transition\":\"acquire\",\"data\":{\"z\":1,\"a\":\"x\"}}",
                       &ev, &err),
                   0);
  sha_hex("lock-1\n3\nacquire\n{\"a\":\"x\",\"z\":1}", want);
  assert_true(ev.id_derived);
  assert_string_equal(ev.id, want);
  smc_event_close(&ev);
  assert_int_equal(dec("{\"type\":\"proposal\",\"object\":\"lock-1\"}", &ev, &err), 0);
  sha_hex("lock-1\n\n\n{}", want);
  assert_string_equal(ev.id, want);
  smc_event_close(&ev);
  /* expect_version 0 is not the same as absent */
  assert_int_equal(
      dec("{\"type\":\"proposal\",\"object\":\"lock-1\",\"expect_version\":0}", &ev, &err), 0);
  sha_hex("lock-1\n0\n\n{}", want);
  assert_string_equal(ev.id, want);
  smc_event_close(&ev);
}

static void vote_machine_tick(void **state) {
  (void)state;
  smc_event_t ev;
  smc_error_t err;
  assert_int_equal(dec("{\"type\":\"vote\",\"proposal\":\"p\",\"object\":\"o\",\"voter\":\"v\","
                       "\"accept\":false,\"reason\":\"no\"}",
                       &ev, &err),
                   0);
  assert_int_equal(ev.type, SMC_EV_VOTE);
  assert_false(ev.accept);
  assert_string_equal(ev.voter, "v");
  assert_string_equal(ev.reason, "no");
  smc_event_close(&ev);
  assert_int_equal(dec("{\"type\":\"machine\",\"name\":\"m\",\"definition\":\"abc\"}", &ev, &err),
                   0);
  assert_int_equal(ev.type, SMC_EV_MACHINE);
  assert_int_equal(ev.definition_len, 3);
  assert_null(ev.hash);
  smc_event_close(&ev);
  assert_int_equal(dec("{\"type\":\"tick\",\"x\":1}", &ev, &err), 0);
  assert_int_equal(ev.type, SMC_EV_TICK);
  smc_event_close(&ev);
}

static void binary_records(void **state) {
  (void)state;
  smc_buf_t b;
  smc_buf_init(&b);
  smc_buf_put_u8(&b, 7);
  smc_buf_put_i64(&b, -5);
  smc_buf_put_str(&b, "hello");
  smc_buf_put_str(&b, NULL);
  smc_buf_put_u32(&b, 0xdeadbeef);
  assert_false(b.oom);
  smc_rd_t r = {(const uint8_t *)b.p, b.len, 0, 0};
  assert_int_equal(smc_rd_u8(&r), 7);
  assert_int_equal(smc_rd_i64(&r), -5);
  char *s = smc_rd_str(&r);
  assert_string_equal(s, "hello");
  free(s);
  assert_null(smc_rd_str(&r));
  assert_false(r.bad);
  assert_int_equal(smc_rd_u32(&r), 0xdeadbeef);
  assert_false(r.bad);
  assert_int_equal(smc_rd_u8(&r), 0);
  assert_true(r.bad);
  /* truncated string */
  smc_rd_t t = {(const uint8_t *)b.p, 1 + 8 + 4 + 2, 0, 0};
  smc_rd_u8(&t);
  smc_rd_i64(&t);
  assert_null(smc_rd_str(&t));
  assert_true(t.bad);
  smc_buf_close(&b);
}

/* Hand-built JSON strings must match jansson's canonical output. */
static void json_string_escaping(void **state) {
  (void)state;
  const char *samples[] = {
      "",    "plain",         "q\"uote",      "back\\slash",
      "a/b", "tab\tnl\ncr\r", "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80"};
  char one[2] = {0, 0};
  for (int i = 0; i < (int)(sizeof(samples) / sizeof(samples[0])) + 127; i++) {
    const char *s = samples[0];
    if (i < (int)(sizeof(samples) / sizeof(samples[0])))
      s = samples[i];
    else {
      one[0] = (char)(i - (int)(sizeof(samples) / sizeof(samples[0])) + 1);
      s = one;
    }
    json_t *j = json_string(s);
    assert_non_null(j);
    char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    smc_buf_t b;
    smc_buf_init(&b);
    smc_buf_add_jstr(&b, s);
    assert_string_equal(b.p, want);
    smc_buf_close(&b);
    free(want);
    json_decref(j);
  }
}

/* murmur2 as Kafka's Utils.murmur2 describes it (seed 0x9747b28c, m
 * 0x5bd1e995, r 24, little-endian 4-byte blocks, tail, final mix). */
static int32_t ref_murmur2(const char *s) {
  const uint8_t *d = (const uint8_t *)s;
  uint32_t len = (uint32_t)strlen(s), m = 0x5bd1e995u, h = 0x9747b28cu ^ len;
  uint32_t i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t k =
        d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16 | (uint32_t)d[i + 3] << 24;
    k *= m;
    k ^= k >> 24;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (len - i) {
  case 3:
    h ^= (uint32_t)d[i + 2] << 16; /* fall through */
  case 2:
    h ^= (uint32_t)d[i + 1] << 8; /* fall through */
  case 1:
    h ^= d[i];
    h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return (int32_t)h;
}

static void murmur2_java(void **state) {
  (void)state;
  /* Kafka clients UtilsTest.testMurmur2 */
  static const struct {
    const char *s;
    int32_t h;
  } java[] = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (size_t i = 0; i < sizeof(java) / sizeof(java[0]); i++) {
    int32_t h = ref_murmur2(java[i].s);
    assert_int_equal(h, java[i].h);
    int32_t pos = (int32_t)((uint32_t)h & 0x7fffffffu);
    for (int32_t n = 1; n <= 16; n++)
      assert_int_equal(smc_partition_for(java[i].s, strlen(java[i].s), n), pos % n);
  }
  /* toPositive(murmur2("21")) % 8 and % 12, computed by hand from -973932308 */
  assert_int_equal(smc_partition_for("21", 2, 8), 1173551340 % 8);
  assert_int_equal(smc_partition_for("21", 2, 12), 1173551340 % 12);
  /* and many generated keys against the reference */
  for (int i = 0; i < 2000; i++) {
    char k[32];
    snprintf(k, sizeof(k), "obj-%d-%x", i, i * 2654435761u);
    int32_t pos = (int32_t)((uint32_t)ref_murmur2(k) & 0x7fffffffu);
    assert_int_equal(smc_partition_for(k, strlen(k), 12), pos % 12);
  }
}

/* Both decoders must give the same event (or the same error) for a value. */
static void same_decoding(const char *v, size_t n, const char *hc, const char *hr) {
  smc_event_t a, b;
  smc_error_t ea, eb;
  smc_error_clear(&ea);
  smc_error_clear(&eb);
  int ra = smc_event_decode(v, n, 512, hc, hr, &a, &ea);
  int rb = smc_event_decode_json(v, n, 512, hc, hr, &b, &eb);
  assert_int_equal(ra, rb);
  assert_int_equal(a.type, b.type);
  assert_int_equal(ea.code, eb.code);
  assert_string_equal(ea.message, eb.message);
  assert_string_equal(ea.path, eb.path);
  const char *sa[] = {a.id,       a.object,      a.machine,  a.transition, a.to,
                      a.proposer, a.correlation, a.reply_to, a.proposal,   a.voter};
  const char *sb[] = {b.id,       b.object,      b.machine,  b.transition, b.to,
                      b.proposer, b.correlation, b.reply_to, b.proposal,   b.voter};
  for (size_t i = 0; i < sizeof(sa) / sizeof(sa[0]); i++) {
    assert_int_equal(sa[i] == NULL, sb[i] == NULL);
    if (sa[i])
      assert_string_equal(sa[i], sb[i]);
  }
  assert_int_equal(a.id_derived, b.id_derived);
  assert_int_equal(a.has_expect, b.has_expect);
  assert_int_equal(a.expect_version, b.expect_version);
  assert_int_equal(a.data == NULL, b.data == NULL);
  if (a.data) {
    char *ca = json_dumps(a.data, JSON_COMPACT), *cb = json_dumps(b.data, JSON_COMPACT);
    assert_string_equal(ca, cb); /* same members in the same order */
    free(ca);
    free(cb);
  }
  smc_event_close(&a);
  smc_event_close(&b);
}

/* The one-pass reader of plain proposals against the jansson path: the
 * inputs it takes, the near misses it must leave to jansson, and seeded
 * random mutations of them. */
static void fast_path_agrees(void **state) {
  (void)state;
  static const char *cases[] = {
      "{\"type\":\"proposal\",\"id\":\"p1\",\"object\":\"lock-1\",\"transition\":\"acquire\","
      "\"data\":{\"owner\":\"svc-1\"}}",
      " {\"type\" : \"proposal\" ,\n\"object\":\"o\",\"machine\":\"lock\",\"to\":\"\","
      "\"proposer\":\"\",\"expect_version\":0}\r\n",
      "{\"object\":\"o\",\"type\":\"proposal\",\"expect_version\":123456789012345678,"
      "\"correlation\":\"\",\"reply_to\":\"\"}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"data\":{\"b\":1,\"a\":[1.0,2.5,{\"x\":null}],"
      "\"s\":\"\\u00e9\\\"}\"}}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"data\":{\"a\":1,\"a\":2}}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"data\":{}}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"data\":[]}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"data\":null}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"data\":{\"a\":1}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"data\":{\"a\":01}}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"id\":\"\"}",
      "{\"type\":\"proposal\",\"object\":\"\"}",
      "{\"type\":\"proposal\"}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"object\":\"p\"}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"id\":null}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"id\":7}",
      "{\"type\":\"proposal\",\"object\":\"o\\u0041\"}",
      "{\"type\":\"proposal\",\"object\":\"\xc3\xa9\"}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":-1}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":01}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":1.0}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":1e2}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"expect_version\":99999999999999999999}",
      "{\"type\":\"proposal\",\"object\":\"o\",\"other\":1}",
      "{\"type\":\"proposal\",\"object\":\"o\"} x",
      "{\"type\":\"proposal\",\"object\":\"o\",}",
      "{\"type\":\"read\",\"id\":\"r\",\"object\":\"o\"}",
      "{\"type\":\"vote\",\"proposal\":\"p\",\"object\":\"o\",\"voter\":\"v\",\"accept\":true}",
      "{\"type\":\"tick\"}",
      "{}",
      "[]",
  };
  /* the first three are plain: read by the one-pass reader (own is set) */
  for (size_t i = 0; i < 3; i++) {
    smc_event_t e;
    smc_error_t er;
    assert_int_equal(smc_event_decode(cases[i], strlen(cases[i]), 0, NULL, NULL, &e, &er), 0);
    assert_non_null(e.own);
    smc_event_close(&e);
  }
  const char *hdrs[][2] = {{NULL, NULL}, {"hc", "hr"}, {"hc", ""}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    for (size_t h = 0; h < 3; h++)
      same_decoding(cases[i], strlen(cases[i]), hdrs[h][0], hdrs[h][1]);
  /* a reply_to of 249 bytes is taken, 250 is refused; ids up to the limit */
  char big[2200];
  for (int n = 248; n <= 251; n++) {
    int len = snprintf(big, sizeof(big),
                       "{\"type\":\"proposal\",\"object\":\"o\",\"reply_to\":\"%*s\"}", n, "r");
    same_decoding(big, (size_t)len, NULL, NULL);
  }
  for (int n = SMC_CODEC_MAX_ID - 1; n <= SMC_CODEC_MAX_ID + 1; n++) {
    int len = snprintf(big, sizeof(big), "{\"type\":\"proposal\",\"object\":\"%0*d\"}", n, 7);
    smc_event_t a, b;
    smc_error_t ea, eb;
    int ra = smc_event_decode(big, (size_t)len, 0, NULL, NULL, &a, &ea);
    int rb = smc_event_decode_json(big, (size_t)len, 0, NULL, NULL, &b, &eb);
    assert_int_equal(ra, rb);
    if (!ra)
      assert_string_equal(a.object, b.object);
    smc_event_close(&a);
    smc_event_close(&b);
  }
  /* seeded mutations: one byte changed, dropped or cut short */
  uint64_t x = 42;
  static const char alphabet[] = "{}[]\":,. \\01a-eE\x01\xc3";
  for (int round = 0; round < 20000; round++) {
    const char *c = cases[round % 6];
    size_t n = strlen(c);
    char m[256];
    memcpy(m, c, n);
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t at = (size_t)(x % n);
    switch ((x >> 32) % 3) {
    case 0:
      m[at] = alphabet[(x >> 40) % (sizeof(alphabet) - 1)];
      break;
    case 1:
      memmove(m + at, m + at + 1, n - at - 1);
      n--;
      break;
    default:
      n = at;
    }
    same_decoding(m, n, (x >> 50) & 1 ? "hc" : NULL, NULL);
  }
}

/* smc_buf_add_i64 writes what printf's %lld writes, at both ends. */
static void decimal_text(void **state) {
  (void)state;
  const int64_t vals[] = {0,         1,         -1,           9, 10, -10, 1764300000000LL,
                          INT64_MAX, INT64_MIN, INT64_MIN + 1};
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    smc_buf_t b;
    smc_buf_init(&b);
    smc_buf_adds(&b, "x");
    smc_buf_add_i64(&b, vals[i]);
    char want[32];
    snprintf(want, sizeof(want), "x%lld", (long long)vals[i]);
    assert_string_equal(b.p, want);
    smc_buf_close(&b);
  }
}

/* A random JSON tree: objects, arrays, strings with escapes and UTF-8,
 * integers, booleans, null, and (when reals) reals. */
static json_t *random_tree(uint64_t *x, int depth, int reals) {
  *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
  static const char *strs[] = {"", "a", "b", "ab", "B", "\xc3\xa9t\xc3\xa9", "q\"\\/\n\t\x01", "z"};
  int kind = (int)(*x % (depth > 3 ? 6 : 8));
  switch (kind) {
  case 0:
    return json_string(strs[(*x >> 8) % 8]);
  case 1:
    return json_integer((json_int_t)(*x >> 3) * ((*x & 4) ? -1 : 1));
  case 2:
    return json_boolean((*x >> 5) & 1);
  case 3:
    return json_null();
  case 4:
    return reals ? json_real(((*x >> 20) & 1) ? 2.0 : 0.25) : json_integer(7);
  case 5:
    return json_stringn("n\0ul", 4);
  case 6: {
    json_t *a = json_array();
    for (uint64_t i = 0; i < (*x >> 12) % 4; i++)
      json_array_append_new(a, random_tree(x, depth + 1, reals));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (uint64_t i = 0; i < (*x >> 12) % 6; i++)
      json_object_set_new(o, strs[(*x >> (16 + i)) % 8], random_tree(x, depth + 1, reals));
    return o;
  }
  }
}

/* smc_buf_add_canonical writes exactly smc_json_canonical's text, or
 * declines (leaving the buffer as it was) for reals and NULs. */
static void canonical_writer(void **state) {
  (void)state;
  uint64_t x = 7;
  int written = 0;
  for (int i = 0; i < 5000; i++) {
    json_t *t = random_tree(&x, 0, i % 3 == 0);
    char *want = smc_json_canonical(t);
    assert_non_null(want);
    smc_buf_t b;
    smc_buf_init(&b);
    smc_buf_adds(&b, "pre");
    if (smc_buf_add_canonical(&b, t) == 0) {
      assert_false(b.oom);
      assert_string_equal(b.p + 3, want);
      written++;
    } else {
      assert_string_equal(b.p, "pre");
    }
    smc_buf_close(&b);
    free(want);
    json_decref(t);
  }
  assert_true(written > 2000); /* most trees have no real and no NUL */
}

/* Objects of 0 to 40 members (the writer sorts up to 16 keys itself and
 * more with qsort): the same text as smc_json_canonical, keys that are
 * prefixes of others and non-ASCII bytes included. */
static void canonical_writer_many_keys(void **state) {
  (void)state;
  uint64_t x = 99;
  for (int i = 0; i < 2000; i++) {
    json_t *o = json_object();
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int n = (int)(x % 41);
    for (int k = 0; k < n; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      char key[16];
      snprintf(key, sizeof(key), "%s%u", (x & 1) ? "k" : "\xc3\xa9", (unsigned)(x >> 8) % 60);
      json_object_set_new(o, key, json_integer((json_int_t)k));
    }
    char *want = smc_json_canonical(o);
    smc_buf_t b;
    smc_buf_init(&b);
    assert_int_equal(smc_buf_add_canonical(&b, o), 0);
    assert_false(b.oom);
    assert_string_equal(b.p, want);
    smc_buf_close(&b);
    free(want);
    json_decref(o);
  }
}

/* A correlation is at most SMC_CODEC_MAX_CORRELATION bytes: a longer field is
 * a bad_request (still addressable: the answer carries no correlation), a
 * longer header is ignored; both decoders agree. */
static void correlation_bound(void **state) {
  (void)state;
  char corr[SMC_CODEC_MAX_CORRELATION + 2], hdr[SMC_CODEC_MAX_CORRELATION + 2];
  char v[SMC_CODEC_MAX_CORRELATION + 200];
  for (int over = 0; over <= 1; over++) {
    size_t n = SMC_CODEC_MAX_CORRELATION + (size_t)over;
    memset(corr, 'k', n);
    corr[n] = '\0';
    snprintf(v, sizeof v,
             "{\"type\":\"proposal\",\"id\":\"p\",\"object\":\"o\",\"transition\":\"t\","
             "\"correlation\":\"%s\"}",
             corr);
    smc_event_t ev;
    smc_error_t err;
    smc_error_clear(&err);
    int rc = smc_event_decode(v, strlen(v), 0, NULL, NULL, &ev, &err);
    assert_int_equal(rc, over ? SMC_EBAD_REQUEST : 0);
    assert_string_equal(ev.id, "p");
    assert_string_equal(ev.object, "o");
    if (over) {
      assert_null(ev.correlation);
      assert_string_equal(err.path, "correlation");
    } else {
      assert_int_equal(strlen(ev.correlation), n);
    }
    smc_event_close(&ev);
    /* the jansson path decides the same */
    smc_error_clear(&err);
    assert_int_equal(smc_event_decode_json(v, strlen(v), 0, NULL, NULL, &ev, &err), rc);
    assert_true(over ? ev.correlation == NULL : strlen(ev.correlation) == n);
    smc_event_close(&ev);
    /* the same length in the header: taken at the bound, ignored past it */
    memset(hdr, 'h', n);
    hdr[n] = '\0';
    snprintf(v, sizeof v,
             "{\"type\":\"proposal\",\"id\":\"p\",\"object\":\"o\",\"transition\":\"t\"}");
    smc_error_clear(&err);
    assert_int_equal(smc_event_decode(v, strlen(v), 0, hdr, NULL, &ev, &err), 0);
    if (over)
      assert_null(ev.correlation);
    else
      assert_string_equal(ev.correlation, hdr);
    smc_event_close(&ev);
    smc_error_clear(&err);
    assert_int_equal(smc_event_decode_json(v, strlen(v), 0, hdr, NULL, &ev, &err), 0);
    assert_true(over ? ev.correlation == NULL : strcmp(ev.correlation, hdr) == 0);
    smc_event_close(&ev);
  }
}

/* The proposal encoder writes what jansson's sorted compact dump of the same
 * object writes, for every combination of the optional fields and for data
 * with reals, escapes, nesting and non-ASCII text. */
static void proposal_encoder_matches_jansson(void **state) {
  (void)state;
  const char *datas[] = {
      NULL, "{}", "{\"owner\":\"ann\",\"n\":3}",
      "{\"z\":[1,2.5,{\"b\":null,\"a\":true}],\"q\":\"\\u00e9\\n\\\"x\",\"r\":-0.125}"};
  for (unsigned mask = 0; mask < 64; mask++)
    for (size_t d = 0; d < sizeof datas / sizeof datas[0]; d++) {
      json_t *data = datas[d] ? json_loads(datas[d], 0, NULL) : NULL;
      assert_true(!datas[d] || data);
      smc_codec_proposal_t p = {.id = "p-1\u00e9",
                                .object = "lock-\"7\"",
                                .machine = mask & 1 ? "lock" : NULL,
                                .transition = mask & 2 ? "acquire" : NULL,
                                .to = mask & 4 ? "held" : NULL,
                                .proposer = mask & 8 ? "ann/\u00fc" : NULL,
                                .correlation = mask & 16 ? "c\t1" : NULL,
                                .data = data,
                                .expect_version = mask & 32 ? 41 : -1};
      json_t *ev = json_pack("{s:s, s:s, s:s}", "type", "proposal", "id", p.id, "object", p.object);
      const char *opt[][2] = {{"machine", p.machine},
                              {"transition", p.transition},
                              {"to", p.to},
                              {"proposer", p.proposer},
                              {"correlation", p.correlation}};
      for (size_t i = 0; i < 5; i++)
        if (opt[i][1])
          json_object_set_new(ev, opt[i][0], json_string(opt[i][1]));
      if (data)
        json_object_set(ev, "data", data);
      if (p.expect_version >= 0)
        json_object_set_new(ev, "expect_version", json_integer(p.expect_version));
      char *want = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
      smc_buf_t b;
      smc_buf_init(&b);
      smc_codec_proposal_json(&b, &p);
      assert_false(b.oom);
      assert_string_equal(b.p, want);
      smc_buf_close(&b);
      free(want);
      json_decref(ev);
      json_decref(data);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(proposal_full),      cmocka_unit_test(headers),
      cmocka_unit_test(bad_events),         cmocka_unit_test(too_large),
      cmocka_unit_test(addressable_errors), cmocka_unit_test(derived_id),
      cmocka_unit_test(vote_machine_tick),  cmocka_unit_test(binary_records),
      cmocka_unit_test(murmur2_java),       cmocka_unit_test(json_string_escaping),
      cmocka_unit_test(fast_path_agrees),   cmocka_unit_test(decimal_text),
      cmocka_unit_test(canonical_writer),   cmocka_unit_test(canonical_writer_many_keys),
      cmocka_unit_test(correlation_bound),  cmocka_unit_test(proposal_encoder_matches_jansson),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
