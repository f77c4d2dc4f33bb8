/* Fuzz target: event decoding (src/core/codec.h) never crashes, leaks or
 * reads out of bounds, and keeps its promises on every input:
 *  - a success has a known type and the fields its type requires;
 *  - a failure is bad_request or too_large, with a message;
 *  - a proposal's derived id is 64 hex digits and the same on a re-derive;
 *  - decoding the same bytes twice gives the same verdict;
 *  - the one-pass reader of plain proposals and the jansson path agree
 *    (verdict, error, every field).
 * The first input byte picks the size limit and whether headers are given. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
  fprintf(stderr, "fuzz_codec: %s\n", what);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  size_t limit = (mode & 1) ? 64 : 1u << 20;
  const char *hc = (mode & 2) ? "corr-hdr" : NULL;
  const char *hr = (mode & 4) ? "reply-hdr" : NULL;

  smc_event_t ev;
  smc_error_t err;
  memset(&ev, 0, sizeof ev);
  memset(&err, 0, sizeof err);
  int rc = smc_event_decode(data, size, limit, hc, hr, &ev, &err);
  if (rc != 0) {
    if (rc != SMC_EBAD_REQUEST && rc != SMC_ETOO_LARGE)
      fail("decode failed with a code other than bad_request/too_large");
    if (rc == SMC_ETOO_LARGE && size <= limit)
      fail("too_large for a value within the limit");
    if (err.message[0] == 0)
      fail("an error without a message");
  } else {
    if (size > limit)
      fail("accepted a value over the limit");
    switch (ev.type) {
    case SMC_EV_PROPOSAL:
      if (!ev.object || !ev.id)
        fail("proposal without object or id");
      if (ev.id_derived) {
        char again[65];
        if (strlen(ev.id) != 64)
          fail("derived id is not 64 hex digits");
        if (smc_proposal_derive_id(ev.object, ev.has_expect, ev.expect_version, ev.transition,
                                   ev.data, again) != 0 ||
            strcmp(again, ev.id) != 0)
          fail("derived id not reproducible");
      }
      break;
    case SMC_EV_VOTE:
      if (!ev.object || !ev.proposal || !ev.voter)
        fail("vote without object, proposal or voter");
      break;
    case SMC_EV_READ:
      if (!ev.object)
        fail("read without object");
      break;
    case SMC_EV_TICK:
      break;
    case SMC_EV_MACHINE:
      if (!ev.definition)
        fail("machine without definition");
      break;
    default:
      fail("success with an unknown event type");
    }
    if (hc && ev.correlation == NULL)
      fail("correlation header lost");
    if (hr && ev.reply_to == NULL)
      fail("reply_to header lost");
  }
  smc_event_close(&ev);

  smc_event_t ev2;
  smc_error_t err2;
  memset(&ev2, 0, sizeof ev2);
  memset(&err2, 0, sizeof err2);
  int rc2 = smc_event_decode(data, size, limit, hc, hr, &ev2, &err2);
  if (rc2 != rc)
    fail("two decodes of the same bytes disagree");

  smc_event_t ej;
  smc_error_t errj;
  memset(&errj, 0, sizeof errj);
  int rcj = smc_event_decode_json(data, size, limit, hc, hr, &ej, &errj);
  if (rcj != rc2 || ej.type != ev2.type || errj.code != err2.code ||
      strcmp(errj.message, err2.message) || strcmp(errj.path, err2.path))
    fail("the fast and the jansson decoders disagree on the verdict");
  const char *fa[] = {ev2.id,       ev2.object,      ev2.machine,  ev2.transition, ev2.to,
                      ev2.proposer, ev2.correlation, ev2.reply_to, ev2.proposal,   ev2.voter};
  const char *fb[] = {ej.id,       ej.object,      ej.machine,  ej.transition, ej.to,
                      ej.proposer, ej.correlation, ej.reply_to, ej.proposal,   ej.voter};
  for (size_t i = 0; i < sizeof(fa) / sizeof(fa[0]); i++)
    if ((fa[i] == NULL) != (fb[i] == NULL) || (fa[i] && strcmp(fa[i], fb[i])))
      fail("the fast and the jansson decoders disagree on a field");
  if (ev2.has_expect != ej.has_expect || ev2.expect_version != ej.expect_version ||
      ev2.id_derived != ej.id_derived || (ev2.data == NULL) != (ej.data == NULL))
    fail("the fast and the jansson decoders disagree on data or expect_version");
  if (ev2.data) {
    char *da = json_dumps(ev2.data, JSON_COMPACT), *db = json_dumps(ej.data, JSON_COMPACT);
    if (!da || !db || strcmp(da, db))
      fail("the fast and the jansson decoders disagree on data");
    free(da);
    free(db);
  }
  smc_event_close(&ej);
  smc_event_close(&ev2);
  return 0;
}
