// Stream testbench for a Verilator-compiled mixq design: a program, run once per batch.
//
//   tb JOB RESULT [PROGRESS]
//
// JOB (little-endian binary, written by sim/verilator.py):
//   "MIXQVJ01", int32 n_in, int32 n_out, double stall, uint64 seed, int64 max_cycles,
//   per input port:  int32 port, int32 words, int64 count, count*words uint32 (the beats)
//   per output port: int32 port, int32 words, int64 count
// RESULT: "MIXQVR01", int64 cycles (-2: timeout, -3: no convergence), int64 evals,
//   per output port: count*words uint32 (the beats), count int64 (the cycle of each beat).
// PROGRESS (optional): a file of 3 int64 mapped shared, receiving [cycle, beats out of the
//   first output port, evals] while the run goes.
// The port numbers index the tables of mixq_ports.h, generated per design (sim/verilator.py).
//
// Runs the stream loop of stream_loop.h (shared with the CXXRTL driver, so both
// give the same outputs at the same cycles).  Per cycle: the new inputs are
// evaluated with clk low (combinational logic settles, the handshakes are
// sampled), then clk rises and the design is evaluated again (the edge).  A design with several clocks
// (mixq_ports.h: MIXQ_N_CLK, kClockOfOut) has each rise only while an output stream of what it clocks
// has beats left to deliver: Verilator evaluates only the logic whose clock edge fired, so parts of the
// design a run does not drive, or that have delivered everything, cost nothing.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>
#include <type_traits>

#include "verilated.h"
#include "stream_loop.h"

double sc_time_stamp() { return 0; }

namespace {

// A payload port of any Verilator width from / into 32-bit words.
inline void put(CData &port, const uint32_t *w) { port = (CData)w[0]; }
inline void put(SData &port, const uint32_t *w) { port = (SData)w[0]; }
inline void put(IData &port, const uint32_t *w) { port = w[0]; }
inline void put(QData &port, const uint32_t *w) { port = (QData)w[0] | ((QData)w[1] << 32); }
template <std::size_t N>
inline void put(VlWide<N> &port, const uint32_t *w) { for (std::size_t i = 0; i < N; i++) port[i] = w[i]; }
inline void get(CData port, uint32_t *w) { w[0] = port; }
inline void get(SData port, uint32_t *w) { w[0] = port; }
inline void get(IData port, uint32_t *w) { w[0] = port; }
inline void get(QData port, uint32_t *w) { w[0] = (uint32_t)port; w[1] = (uint32_t)(port >> 32); }
template <std::size_t N>
inline void get(const VlWide<N> &port, uint32_t *w) { for (std::size_t i = 0; i < N; i++) w[i] = port[i]; }

}  // namespace

// MIXQ_TOP_CLASS (the Verilated model), MIXQ_HAS_RST, MIXQ_N_IN/OUT, kInWords/kOutWords, the port
// accessors mixq_set_in_payload/valid, mixq_get_in_ready, mixq_set_out_ready, mixq_get_out_valid/payload,
// and the clocks: MIXQ_N_CLK, mixq_set_clock, kClockOfOut, kClockAlways
#include "mixq_ports.h"

namespace {

struct VerilatorSim {
  MIXQ_TOP_CLASS *top;
  int in_port[mixq::kMaxPorts], out_port[mixq::kMaxPorts];  // job port k -> table index
  long n_evals = 0;
  int out_clock[mixq::kMaxPorts];   // job output port k -> the clock of what drives it, -1: none
  long pending[MIXQ_N_CLK + 1] = {0};  // per clock: beats its output streams have left to deliver

  void eval() { top->eval(); n_evals++; }
  void set_clocks(bool v) { for (int c = 0; c < MIXQ_N_CLK; c++) mixq_set_clock(top, c, v); }
  void set_payload(int k, const uint32_t *words) { mixq_set_in_payload(top, in_port[k], words); }
  void set_valid(int k, bool v) { mixq_set_in_valid(top, in_port[k], v); }
  void set_ready(int k, bool v) { mixq_set_out_ready(top, out_port[k], v); }
  bool settle() {
    set_clocks(false);
    eval();
    return true;
  }
  bool in_ready(int k) { return mixq_get_in_ready(top, in_port[k]); }
  bool out_valid(int k) { return mixq_get_out_valid(top, out_port[k]); }
  void get_payload(int k, uint32_t *words) {
    mixq_get_out_payload(top, out_port[k], words);
    if (out_clock[k] >= 0) pending[out_clock[k]]--;
  }
  void edge() {
    bool any = false;
    for (int c = 0; c < MIXQ_N_CLK; c++) {
      if (kClockAlways[c] || pending[c] > 0) { mixq_set_clock(top, c, true); any = true; }
    }
    if (any) eval();
  }
  long evals() { return n_evals; }
};

bool read_all(FILE *f, void *dst, size_t bytes) { return std::fread(dst, 1, bytes, f) == bytes; }

int fail(const char *what) {
  std::fprintf(stderr, "mixq testbench: %s\n", what);
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) return fail("usage: tb JOB RESULT [PROGRESS]");
  FILE *job_file = std::fopen(argv[1], "rb");
  if (!job_file) return fail("cannot open the job file");
  char magic[8];
  int32_t n_in = 0, n_out = 0;
  double stall = 0;
  uint64_t seed = 0;
  int64_t max_cycles = 0;
  if (!read_all(job_file, magic, 8) || std::memcmp(magic, "MIXQVJ01", 8) != 0) return fail("not a job file");
  if (!read_all(job_file, &n_in, 4) || !read_all(job_file, &n_out, 4) || !read_all(job_file, &stall, 8) ||
      !read_all(job_file, &seed, 8) || !read_all(job_file, &max_cycles, 8))
    return fail("truncated job header");
  if (n_in < 0 || n_out < 0 || n_in > mixq::kMaxPorts || n_out > mixq::kMaxPorts) return fail("too many ports");
  VerilatorSim sim;
  std::vector<std::vector<uint32_t>> in_beats(n_in), out_beats(n_out);
  std::vector<std::vector<long>> out_cycles(n_out);
  const uint32_t *in_ptr[mixq::kMaxPorts];
  uint32_t *out_ptr[mixq::kMaxPorts];
  long *cycle_ptr[mixq::kMaxPorts];
  long in_count[mixq::kMaxPorts], out_count[mixq::kMaxPorts];
  int in_words[mixq::kMaxPorts], out_words[mixq::kMaxPorts];
  for (int k = 0; k < n_in; k++) {
    int32_t port, words;
    int64_t count;
    if (!read_all(job_file, &port, 4) || !read_all(job_file, &words, 4) || !read_all(job_file, &count, 8))
      return fail("truncated input port record");
    if (port < 0 || port >= MIXQ_N_IN || words != kInWords[port] || count < 0) return fail("bad input port record");
    in_beats[k].resize((size_t)count * words + 1);
    if (!read_all(job_file, in_beats[k].data(), (size_t)count * words * 4)) return fail("truncated input beats");
    sim.in_port[k] = port; in_ptr[k] = in_beats[k].data(); in_count[k] = (long)count; in_words[k] = words;
  }
  for (int k = 0; k < n_out; k++) {
    int32_t port, words;
    int64_t count;
    if (!read_all(job_file, &port, 4) || !read_all(job_file, &words, 4) || !read_all(job_file, &count, 8))
      return fail("truncated output port record");
    if (port < 0 || port >= MIXQ_N_OUT || words != kOutWords[port] || count < 0) return fail("bad output port record");
    out_beats[k].assign((size_t)count * words + 1, 0);
    out_cycles[k].assign((size_t)count + 1, 0);
    sim.out_port[k] = port; out_ptr[k] = out_beats[k].data(); cycle_ptr[k] = out_cycles[k].data();
    sim.out_clock[k] = kClockOfOut[port];
    if (sim.out_clock[k] >= 0) sim.pending[sim.out_clock[k]] += (long)count;
    out_count[k] = (long)count; out_words[k] = words;
  }
  std::fclose(job_file);

  volatile long *progress = nullptr;
  if (argc > 3) {
    int fd = open(argv[3], O_RDWR);
    if (fd < 0) return fail("cannot open the progress file");
    void *mapped = mmap(nullptr, 3 * sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mapped == MAP_FAILED) return fail("cannot map the progress file");
    progress = (volatile long *)mapped;
  }

  auto context = std::make_unique<VerilatedContext>();
  context->fatalOnError(true);
  sim.top = new MIXQ_TOP_CLASS{context.get()};
  // The root is declared cache-line aligned and the compiled code stores to it with aligned vector moves.
  if (reinterpret_cast<uintptr_t>(sim.top->rootp) % alignof(std::remove_pointer_t<decltype(sim.top->rootp)>) != 0)
    return fail("the model's root is not on its declared alignment (the model must be compiled as C++17)");
  for (int p = 0; p < MIXQ_N_IN; p++) mixq_set_in_valid(sim.top, p, false);
  for (int p = 0; p < MIXQ_N_OUT; p++) mixq_set_out_ready(sim.top, p, false);
  // Reset for one cycle, as Amaranth's simulator starts from reset values (the CXXRTL driver does the same).
#if MIXQ_HAS_RST
  sim.top->rst = 1;
#endif
  // Every clock rises once in reset.
  sim.set_clocks(false); sim.eval();
  if (MIXQ_N_CLK > 0) { sim.set_clocks(true); sim.eval(); }
#if MIXQ_HAS_RST
  sim.top->rst = 0;
#endif
  mixq::StreamJob job{n_in, in_ptr, in_count, in_words, n_out, out_ptr, out_count, out_words, cycle_ptr,
                      stall, seed, (long)max_cycles, progress};
  int64_t result = mixq::run_stream_loop(sim, job);
  int64_t evals = sim.n_evals;
  sim.top->final();
  delete sim.top;

  FILE *out = std::fopen(argv[2], "wb");
  if (!out) return fail("cannot write the result file");
  bool ok = std::fwrite("MIXQVR01", 1, 8, out) == 8 && std::fwrite(&result, 8, 1, out) == 1 &&
            std::fwrite(&evals, 8, 1, out) == 1;
  for (int k = 0; k < n_out && ok; k++) {
    size_t n = (size_t)out_count[k] * out_words[k];
    ok = std::fwrite(out_beats[k].data(), 4, n, out) == n;
    for (long b = 0; b < out_count[k] && ok; b++) {
      int64_t c = out_cycles[k][b];
      ok = std::fwrite(&c, 8, 1, out) == 1;
    }
  }
  ok = (std::fclose(out) == 0) && ok;
  return ok ? 0 : fail("writing the result file failed");
}
