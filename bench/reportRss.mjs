// Loaded with `node --import` into a benchmarked process: prints its peak RSS as it exits.
process.on('exit', () => process.stderr.write(`\n@@peak-rss-mb ${Math.round(process.resourceUsage().maxRSS / 1024)}\n`));
