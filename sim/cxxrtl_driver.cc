// Stream driver for a CXXRTL-compiled mixq design (linked together with the design).
//
// Runs the stream loop of stream_loop.h (shared with the Verilator testbench,
// so both give the same outputs at the same cycles) on the CXXRTL design.
// Called from Python through ctypes (sim/cxxrtl.py); one call runs a whole
// batch of frames without returning to Python.
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

#include "stream_loop.h"

#ifndef MIXQ_ONE_EVAL
#define MIXQ_ONE_EVAL 0
#endif

extern "C" cxxrtl_toplevel cxxrtl_design_create();

namespace {

inline void put(cxxrtl_object *obj, const uint32_t *words, size_t n) {
  std::memcpy(obj->next ? obj->next : obj->curr, words, n * sizeof(uint32_t));
}

inline void put_bit(cxxrtl_object *obj, uint32_t bit) { (obj->next ? obj->next : obj->curr)[0] = bit; }

// The CXXRTL design as a simulator of stream_loop.h.
struct CxxrtlSim {
  cxxrtl_handle top;
  cxxrtl_object *clk, *rst;
  cxxrtl_object *iv[mixq::kMaxPorts], *ir[mixq::kMaxPorts], *ip[mixq::kMaxPorts];
  cxxrtl_object *ov[mixq::kMaxPorts], *orr[mixq::kMaxPorts], *op[mixq::kMaxPorts];
  const int *in_words, *out_words;
  long n_evals = 0;

  void step() { n_evals += (long)cxxrtl_step(top); }
  void set_payload(int k, const uint32_t *words) { put(ip[k], words, in_words[k]); }
  void set_valid(int k, bool v) { put_bit(iv[k], v ? 1 : 0); }
  void set_ready(int k, bool v) { put_bit(orr[k], v ? 1 : 0); }
  bool settle() {
#if MIXQ_ONE_EVAL
    put_bit(clk, 1);  // the rising edge: eval() computes every register's next value ...
    n_evals++;
    return cxxrtl_eval(top);  // ... and the handshakes show their values before the edge
#else
    step();  // clk is low: settle the combinational logic for the new inputs
    return true;
#endif
  }
  bool in_ready(int k) { return ir[k]->curr[0] & 1; }
  bool out_valid(int k) { return ov[k]->curr[0] & 1; }
  void get_payload(int k, uint32_t *words) { std::memcpy(words, op[k]->curr, out_words[k] * sizeof(uint32_t)); }
  void edge() {
#if MIXQ_ONE_EVAL
    // The edge takes effect at commit().  Lowering clk first makes commit() record clk as low, so the
    // next eval() sees a rising edge again without a second commit() (the next values are computed).
    put_bit(clk, 0);
    cxxrtl_commit(top);
#else
    put_bit(clk, 1); n_evals++; cxxrtl_eval(top); cxxrtl_commit(top);
    put_bit(clk, 0);  // lowered in every module by the next cycle's settling step
#endif
  }
  long evals() { return n_evals; }
};

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
  CxxrtlSim sim;
  sim.top = cxxrtl_create(cxxrtl_design_create());
  sim.clk = cxxrtl_get(sim.top, "clk");
  sim.rst = cxxrtl_get(sim.top, "rst");
  sim.in_words = in_words;
  sim.out_words = out_words;
  if (!sim.clk || n_in > mixq::kMaxPorts || n_out > mixq::kMaxPorts) { cxxrtl_destroy(sim.top); return -1; }
  for (int k = 0; k < n_in; k++) {
    sim.iv[k] = cxxrtl_get(sim.top, in_valid[k]); sim.ir[k] = cxxrtl_get(sim.top, in_ready[k]);
    sim.ip[k] = cxxrtl_get(sim.top, in_payload[k]);
    if (!sim.iv[k] || !sim.ir[k] || !sim.ip[k]) { cxxrtl_destroy(sim.top); return -1; }
  }
  for (int k = 0; k < n_out; k++) {
    sim.ov[k] = cxxrtl_get(sim.top, out_valid[k]); sim.orr[k] = cxxrtl_get(sim.top, out_ready[k]);
    sim.op[k] = cxxrtl_get(sim.top, out_payload[k]);
    if (!sim.ov[k] || !sim.orr[k] || !sim.op[k]) { cxxrtl_destroy(sim.top); return -1; }
  }
  // Reset for one cycle, as Amaranth's simulator starts from reset values.
  if (sim.rst) put_bit(sim.rst, 1);
  put_bit(sim.clk, 0); sim.step(); put_bit(sim.clk, 1); sim.step();
  if (sim.rst) put_bit(sim.rst, 0);
  put_bit(sim.clk, 0); sim.step();
  mixq::StreamJob job{n_in, in_beats, in_count, in_words, n_out, out_beats, out_count, out_words, out_cycles,
                      stall, seed, max_cycles, progress};
  long result = mixq::run_stream_loop(sim, job);
  cxxrtl_destroy(sim.top);
  return result;
}

}  // extern "C"
