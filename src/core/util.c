#include "core/util.h"

#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <stdlib.h>

void smc_sha256_hex(const void *data, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
  for (unsigned int i = 0; i < n && i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

char *smc_json_canonical(const json_t *v) {
  return json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
}

int32_t smc_partition_for(const void *key, size_t len, int32_t n) {
  /* librdkafka's murmur2 partitioner is the Java client's default one; it
   * does not use the topic handle. */
  return rd_kafka_msg_partitioner_murmur2(NULL, key, len, n, NULL, NULL);
}
