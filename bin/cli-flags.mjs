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
// No allocation-site pretenuring: when V8 sees most objects from one
// allocation site survive a scavenge, it allocates that site's later objects
// straight in the old generation, where only a full GC frees them. Whether it
// does depends on how scavenges fall against the data path's per-file
// objects (headers, paths, hashes, all short-lived): in half of the exports
// over SSH of 200,000 files it did, and the old generation grew by 11 MiB
// before the next full GC (peak 108-111 MiB instead of 93-99). Without it
// every such object dies young, as it is.
v8.setFlagsFromString('--no-allocation-site-pretenuring');
// Maglev compiles on the main thread, not on a background one: on a
// machine of two CPUs the background compiles competed with the data path
// and their zones grew the compiler thread's malloc arena. Exports over SSH
// (107 MB disk, 200,000 files) and local exports, alternating: peak RSS 3-5
// MiB lower and user CPU 10-25% lower (docs/benchmarks.md).
v8.setFlagsFromString('--no-concurrent-recompilation');
