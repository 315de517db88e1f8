#include "_test.h"

static void hex(const uint8_t *d, char *out) {
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

TEST(hash_sha256_and_sm3_match_their_known_vectors) {
  static const struct {
    uint32_t alg;
    const char *digest;
  } vectors[] = {
      {VASP_ALG_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {VASP_ALG_SM3, "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
  };
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    uint8_t d[32];
    char h[65];
    CHECK_RC(vasp_hash(vectors[i].alg, (const uint8_t *)"abc", 3, d), VASP_OK, NULL);
    hex(d, h);
    CHECK(strcmp(h, vectors[i].digest) == 0);
  }
}

TEST(hash_batch_gives_one_digest_per_region) {
  static const uint8_t data[] = "abcabc";
  vasp_mem_region regions[2] = {{(uint64_t)(uintptr_t)data, 3},
                                {(uint64_t)(uintptr_t)(data + 3), 3}};
  uint8_t out[64], one[32];
  CHECK_RC(vasp_hash_batch(VASP_ALG_SHA256, regions, 2, out), VASP_OK, NULL);
  CHECK_RC(vasp_hash(VASP_ALG_SHA256, data, 3, one), VASP_OK, NULL);
  CHECK(memcmp(out, one, 32) == 0 && memcmp(out + 32, one, 32) == 0);
}

TEST(hash_rejects_unknown_algorithm_with_message) {
  uint8_t d[32];
  CHECK_RC(vasp_hash(7, (const uint8_t *)"", 0, d), VASP_E_ARG, NULL);
  CHECK_MSG(NULL, "unknown hash algorithm 7");
}
