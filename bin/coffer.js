#!/usr/bin/env -S node --max-semi-space-size=4
// The young generation is capped at 2 × 4 MB (Node's default grows it to 2 × 16 MB under load): measured, it keeps a
// busy server's peak RSS under 200 MB (176–184 MB against 197–253 MB) for 3–4% more CPU per request (docs/BENCHMARKS.md).
import '../dist/cli/main.js';
