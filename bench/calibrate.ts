/**
 * How fast this machine is right now: a fixed integer loop and two million JSON round trips of a
 * small object, kept in memory (so the collector works as it does under the benchmarks). This
 * VM's speed changes by up to 30% from one hour to the next; a benchmark bracketed by two
 * calibrations says in which phase it ran.
 *
 *   node dist/bench/calibrate.js
 */
const t0 = performance.now();
let x = 0;
for (let i = 0; i < 3e8; i++) x = (x + i * 7) % 1000003;
const t1 = performance.now();
const kept: unknown[] = [];
for (let i = 0; i < 2e6; i++) {
  kept.push(JSON.parse(JSON.stringify({ a: i, b: "x" + i, c: [i, i + 1] })));
}
const t2 = performance.now();
console.log(
  `loop ${(t1 - t0).toFixed(0)} ms, json ${(t2 - t1).toFixed(0)} ms (${x}, ${kept.length})`,
);
