// The stream loop every compiled mixq simulator runs (sim/cxxrtl_driver.cc, sim/verilator_tb.cc).
//
// Feeds every input stream its beats and drains every output stream, each with
// random valid/ready stalls (a beat, once offered, is held until accepted), and
// counts clock cycles.  Every stream has its own seeded stall generator (input
// k: seed * 1000 + k, output k: seed * 1000 + 500 + k; sim/stall_rng.py is the
// same in Python, for Amaranth's simulator), drawn once per cycle while the
// stream waits to offer a beat / has beats left to take, so every simulator
// that runs this loop, and sim/streams.py, give the same outputs at the same
// cycles.
//
// A simulator plugs in as a class with these members (k: index of the port):
//   void set_payload(int k, const uint32_t *words);  // input port k's payload
//   void set_valid(int k, bool v);                     // input port k's valid
//   void set_ready(int k, bool v);                     // output port k's ready
//   bool settle();        // combinational logic settled for the new inputs, the
//                         // clock edge still to come (false: did not converge)
//   bool in_ready(int k); bool out_valid(int k);       // handshakes before the edge
//   void get_payload(int k, uint32_t *words);          // output port k's payload
//   void edge();          // the rising clock edge takes effect
//   long evals();         // evaluation calls so far (for the statistics)
#ifndef MIXQ_STREAM_LOOP_H
#define MIXQ_STREAM_LOOP_H

#include <cstdint>

namespace mixq {

// xorshift64 seeded through a multiplicative hash; sim/stall_rng.py is the same generator in Python.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed = 0) : s(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {}
  uint64_t next() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
  bool chance(double p) { return p > 0.0 && (next() >> 11) * (1.0 / 9007199254740992.0) < p; }
};

// Below 500, every port's stall seed is distinct (inputs seed * 1000 + k, outputs seed * 1000 + 500 + k).
const int kMaxPorts = 500;

// Beats are packed little-endian into `words` 32-bit chunks each.
struct StreamJob {
  int n_in;
  const uint32_t *const *in_beats;
  const long *in_count;
  const int *in_words;
  int n_out;
  uint32_t *const *out_beats;
  const long *out_count;
  const int *out_words;
  long *const *out_cycles;  // out_cycles[k][b]: the cycle at which output beat b of port k was accepted
  double stall;
  uint64_t seed;
  long max_cycles;
  volatile long *progress;  // if given: [cycle, beats out of port 0, evals] every 65536 cycles and at the end
};

// Runs the job from the cycle after reset; returns the number of cycles, -2 on timeout, -3 if settle() failed.
template <class Sim>
long run_stream_loop(Sim &sim, const StreamJob &job) {
  Rng in_rng[kMaxPorts], out_rng[kMaxPorts];
  for (int k = 0; k < kMaxPorts; k++) {
    in_rng[k] = Rng(job.seed * 1000 + k);
    out_rng[k] = Rng(job.seed * 1000 + 500 + k);
  }
  long sent[kMaxPorts] = {0}, got[kMaxPorts] = {0};
  bool offering[kMaxPorts] = {false}, ready_now[kMaxPorts] = {false};
  long cycle = 0, result = 0;
  for (;;) {
    bool done = true;
    for (int k = 0; k < job.n_out; k++) done = done && got[k] >= job.out_count[k];
    if (done) { result = cycle; break; }
    if (cycle >= job.max_cycles) { result = -2; break; }
    for (int k = 0; k < job.n_in; k++) {
      if (!offering[k] && sent[k] < job.in_count[k] && !in_rng[k].chance(job.stall)) {
        offering[k] = true;
        sim.set_payload(k, job.in_beats[k] + sent[k] * job.in_words[k]);
      }
      sim.set_valid(k, offering[k]);
    }
    for (int k = 0; k < job.n_out; k++) {
      ready_now[k] = got[k] < job.out_count[k] && !out_rng[k].chance(job.stall);
      sim.set_ready(k, ready_now[k]);
    }
    if (!sim.settle()) { result = -3; break; }
    for (int k = 0; k < job.n_in; k++) {
      if (offering[k] && sim.in_ready(k)) { offering[k] = false; sent[k]++; }
    }
    for (int k = 0; k < job.n_out; k++) {
      if (ready_now[k] && sim.out_valid(k)) {
        sim.get_payload(k, job.out_beats[k] + got[k] * job.out_words[k]);
        job.out_cycles[k][got[k]] = cycle;
        got[k]++;
      }
    }
    sim.edge();
    cycle++;
    if (job.progress && (cycle & 0xFFFF) == 0) {
      job.progress[0] = cycle; job.progress[1] = job.n_out ? got[0] : 0; job.progress[2] = sim.evals();
    }
  }
  if (job.progress) { job.progress[0] = cycle; job.progress[1] = job.n_out ? got[0] : 0; job.progress[2] = sim.evals(); }
  return result;
}

}  // namespace mixq

#endif  // MIXQ_STREAM_LOOP_H
