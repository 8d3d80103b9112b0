/**
 * Loaded with `node --import` into a process the scan benchmark runs (the fqa-scan CLI): at exit it
 * writes the process's peak resident set (VmHWM, KiB) to the file named by FQA_BENCH_PEAK_RSS_FILE,
 * which a parent cannot read once the child is gone.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.FQA_BENCH_PEAK_RSS_FILE;
if (file) {
  process.on('exit', () => {
    const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (peak) writeFileSync(file, peak[1]!);
  });
}
