// Stream driver for a CXXRTL-compiled mixq design (linked together with the design).
//
// Feeds every input stream its beats and drains every output stream, each with
// random valid/ready stalls (the same rules as sim/streams.py: a beat, once
// offered, is held until accepted), and counts clock cycles.  Called from
// Python through ctypes (sim/cxxrtl.py); one call runs a whole batch of frames
// without returning to Python.
//
// CXXRTL evaluates the whole design on every eval(), so the cost of a cycle is
// the number of eval() and commit() calls it takes.  Two ways to clock, chosen
// at compile time (MIXQ_ONE_EVAL), with the same results:
//  * one eval (a flattened design whose eval() always converges): per cycle ONE
//    eval() with the rising edge pending.  Right after it the handshakes show
//    their values before the edge (combinational outputs are computed from the
//    inputs, register outputs change only at commit()); then commit().
//  * settle (any design, e.g. a hierarchical one with delta cycles): a step()
//    with clk low settles the combinational logic for the new inputs, the
//    handshakes are sampled, then one eval() + commit() with clk high: every
//    register input has settled, so the edge needs no delta cycles of its own.
#include <cstdint>
#include <cstring>
#include <cxxrtl/capi/cxxrtl_capi.cc>

#ifndef MIXQ_ONE_EVAL
#define MIXQ_ONE_EVAL 0
#endif

extern "C" cxxrtl_toplevel cxxrtl_design_create();

namespace {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {}
  uint64_t next() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
  bool chance(double p) { return p > 0.0 && (next() >> 11) * (1.0 / 9007199254740992.0) < p; }
};

inline void put(cxxrtl_object *obj, const uint32_t *words, size_t n) {
  std::memcpy(obj->next ? obj->next : obj->curr, words, n * sizeof(uint32_t));
}

inline void put_bit(cxxrtl_object *obj, uint32_t bit) { (obj->next ? obj->next : obj->curr)[0] = bit; }

}  // namespace

extern "C" {

// How this library clocks the design (1: one eval() per cycle, 0: settle + edge).
__attribute__((visibility("default"))) int mixq_one_eval() { return MIXQ_ONE_EVAL; }

// Names are the CXXRTL debug names ("i__valid" ...).  Beats are packed
// little-endian into `words` 32-bit chunks each.  Returns the number of cycles,
// -1 if a name is missing, -2 on timeout, -3 if eval() did not converge in the
// one-eval clocking.  out_cycles[k][b] receives the cycle at which output beat
// b of port k was accepted.  progress (if given) receives [cycle, beats out of
// port 0, eval() calls] every 65536 cycles and at the end.
__attribute__((visibility("default")))
long mixq_run(int n_in, const char *const *in_valid, const char *const *in_ready,
              const char *const *in_payload, const uint32_t *const *in_beats,
              const long *in_count, const int *in_words,
              int n_out, const char *const *out_valid, const char *const *out_ready,
              const char *const *out_payload, uint32_t *const *out_beats,
              const long *out_count, const int *out_words, long *const *out_cycles,
              double stall, uint64_t seed, long max_cycles, volatile long *progress) {
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
  long evals = 0;
  auto step = [&]() { evals += (long)cxxrtl_step(top); };
  Rng rng(seed);
  long sent[kMax] = {0}, got[kMax] = {0};
  bool offering[kMax] = {false}, ready_now[kMax] = {false};
  // Reset for one cycle, as Amaranth's simulator starts from reset values.
  if (rst) put_bit(rst, 1);
  put_bit(clk, 0); step(); put_bit(clk, 1); step();
  if (rst) put_bit(rst, 0);
  put_bit(clk, 0); step();
  long cycle = 0, result = 0;
  for (;;) {
    bool done = true;
    for (int k = 0; k < n_out; k++) done = done && got[k] >= out_count[k];
    if (done) { result = cycle; break; }
    if (cycle >= max_cycles) { result = -2; break; }
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
#if MIXQ_ONE_EVAL
    put_bit(clk, 1);  // the rising edge: eval() computes every register's next value ...
    evals++;
    if (!cxxrtl_eval(top)) { result = -3; break; }
#else
    step();  // clk is low: settle the combinational logic for the new inputs
#endif
    // ... and the handshakes show their values before the edge
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
#if MIXQ_ONE_EVAL
    // The edge takes effect at commit().  Lowering clk first makes commit() record clk as low, so the
    // next eval() sees a rising edge again without a second commit() (the next values are computed).
    put_bit(clk, 0);
    cxxrtl_commit(top);
#else
    put_bit(clk, 1); evals++; cxxrtl_eval(top); cxxrtl_commit(top);
    put_bit(clk, 0);  // lowered in every module by the next cycle's settling step
#endif
    cycle++;
    if (progress && (cycle & 0xFFFF) == 0) { progress[0] = cycle; progress[1] = got[0]; progress[2] = evals; }
  }
  if (progress) { progress[0] = cycle; progress[1] = n_out ? got[0] : 0; progress[2] = evals; }
  cxxrtl_destroy(top);
  return result;
}

}  // extern "C"
