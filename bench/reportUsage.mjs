// Loaded with `node --import` into a benchmarked process: prints its peak RSS and the CPU time it
// used (user + system, every thread: GC helpers included) as it exits.
process.on('exit', () => {
  const { user, system } = process.cpuUsage();
  process.stderr.write(`\n@@peak-rss-mb ${Math.round(process.resourceUsage().maxRSS / 1024)}\n@@cpu-s ${((user + system) / 1e6).toFixed(3)}\n`);
});
