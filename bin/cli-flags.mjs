// V8 settings of a kompoxops run, set before anything allocates much; the
// benchmarks that run the data paths in their own process (bench/archive-op.mjs)
// import this too, so that they measure what the binary does.
import v8 from 'node:v8';

// A command-line run is short: V8's young generation need not grow to 32 MiB
// for it, and a data command's peak memory is its heap plus the buffers in
// flight (issue 11: within 100 MiB). See src/archive/memory.ts for why the
// growth factor, not the size flag.
v8.setFlagsFromString('--semi-space-growth-factor=1');
// No TurboFan either: in a run this short its compiles barely pay off, and
// its code and compile zones were 7 MiB of a data command's peak (the pages
// of node's binary it runs from count in RSS too). Maglev, the mid tier,
// stays: hot byte loops (ws masks what it sends to a plain-HTTP API server) run
// there at 0.85x TurboFan's speed, where the baseline tier alone is 15x
// slower. docs/benchmarks.md has the numbers.
v8.setFlagsFromString('--no-turbofan');
