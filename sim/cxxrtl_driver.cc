// Stream driver for a CXXRTL-compiled mixq design (compiled together with the design).
//
// Feeds every input stream its beats and drains every output stream, each with
// random valid/ready stalls (the same rules as sim/streams.py: a beat, once
// offered, is held until accepted), and counts clock cycles.  Called from
// Python through ctypes (sim/cxxrtl.py); one call runs a whole batch of frames
// without returning to Python, which is what makes whole networks fast.
#include <cstdint>
#include <cstring>
#include <cxxrtl/capi/cxxrtl_capi.h>

extern "C" cxxrtl_toplevel cxxrtl_design_create();

namespace {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {}
  uint64_t next() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
  bool chance(double p) { return p > 0.0 && (next() >> 11) * (1.0 / 9007199254740992.0) < p; }
};

void put(cxxrtl_object *obj, const uint32_t *words, size_t n) {
  uint32_t *dst = obj->next ? obj->next : obj->curr;
  std::memcpy(dst, words, n * sizeof(uint32_t));
}

void put_bit(cxxrtl_object *obj, uint32_t bit) {
  uint32_t *dst = obj->next ? obj->next : obj->curr;
  dst[0] = bit;
}

}  // namespace

extern "C" {

// Names are the CXXRTL debug names ("i__valid" ...).  Beats are packed
// little-endian into `words` 32-bit chunks each.  Returns the number of cycles,
// or -1 if a name is missing, -2 on timeout.  out_cycles[k][b] receives the
// cycle at which output beat b of port k was accepted.
long mixq_run(int n_in, const char *const *in_valid, const char *const *in_ready,
              const char *const *in_payload, const uint32_t *const *in_beats,
              const long *in_count, const int *in_words,
              int n_out, const char *const *out_valid, const char *const *out_ready,
              const char *const *out_payload, uint32_t *const *out_beats,
              const long *out_count, const int *out_words, long *const *out_cycles,
              double stall, uint64_t seed, long max_cycles, long *progress) {
  cxxrtl_handle top = cxxrtl_create(cxxrtl_design_create());
  cxxrtl_object *clk = cxxrtl_get(top, "clk");
  cxxrtl_object *rst = cxxrtl_get(top, "rst");
  const int kMax = 16;
  if (!clk || n_in > kMax || n_out > kMax) { cxxrtl_destroy(top); return -1; }
  cxxrtl_object *iv[kMax], *ir[kMax], *ip[kMax], *ov[kMax], *orr[kMax], *op[kMax];
  for (int k = 0; k < n_in; k++) {
    iv[k] = cxxrtl_get(top, in_valid[k]); ir[k] = cxxrtl_get(top, in_ready[k]);
    ip[k] = cxxrtl_get(top, in_payload[k]);
    if (!iv[k] || !ir[k] || !ip[k]) { cxxrtl_destroy(top); return -1; }
  }
  for (int k = 0; k < n_out; k++) {
    ov[k] = cxxrtl_get(top, out_valid[k]); orr[k] = cxxrtl_get(top, out_ready[k]);
    op[k] = cxxrtl_get(top, out_payload[k]);
    if (!ov[k] || !orr[k] || !op[k]) { cxxrtl_destroy(top); return -1; }
  }
  Rng rng(seed);
  long sent[kMax] = {0}, got[kMax] = {0};
  bool offering[kMax] = {false}, ready_now[kMax] = {false};
  // Reset for one cycle, as Amaranth's simulator starts from reset values.
  if (rst) put_bit(rst, 1);
  put_bit(clk, 0); cxxrtl_step(top); put_bit(clk, 1); cxxrtl_step(top);
  if (rst) put_bit(rst, 0);
  put_bit(clk, 0); cxxrtl_step(top);
  long cycle = 0;
  for (;;) {
    bool done = true;
    for (int k = 0; k < n_out; k++) done = done && got[k] >= out_count[k];
    if (done) break;
    if (cycle >= max_cycles) { cxxrtl_destroy(top); return -2; }
    for (int k = 0; k < n_in; k++) {
      if (!offering[k] && sent[k] < in_count[k] && !rng.chance(stall)) {
        offering[k] = true;
        put(ip[k], in_beats[k] + sent[k] * in_words[k], in_words[k]);
      }
      put_bit(iv[k], offering[k] ? 1 : 0);
    }
    for (int k = 0; k < n_out; k++) {
      ready_now[k] = got[k] < out_count[k] && !rng.chance(stall);
      put_bit(orr[k], ready_now[k] ? 1 : 0);
    }
    cxxrtl_step(top);  // settle combinational paths with the new inputs
    for (int k = 0; k < n_in; k++) {
      if (offering[k] && (ir[k]->curr[0] & 1)) { offering[k] = false; sent[k]++; }
    }
    for (int k = 0; k < n_out; k++) {
      if (ready_now[k] && (ov[k]->curr[0] & 1)) {
        std::memcpy(out_beats[k] + got[k] * out_words[k], op[k]->curr, out_words[k] * sizeof(uint32_t));
        out_cycles[k][got[k]] = cycle;
        got[k]++;
      }
    }
    put_bit(clk, 1); cxxrtl_step(top);
    put_bit(clk, 0); cxxrtl_step(top);
    cycle++;
    if (progress && (cycle & 0xFFFF) == 0) *progress = cycle;
  }
  cxxrtl_destroy(top);
  return cycle;
}

}  // extern "C"
