/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time by function and by module (package or source
 * file), which is what tells where a hot path spends its time. Usage: node --import tsx bench/profile-summary.ts FILE
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] }

function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node core (' + url.replace(/^node:/, '').split('/').slice(0, 2).join('/') + ')';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const own = /\/(dist|src|bench)\/(.+)$/.exec(url);
  return own ? `coffer ${own[1]}/${own[2]}` : url;
}

export function summarise(file: string, top = 15) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const perSampleMs = totalMs / Math.max(1, profile.samples.length);
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const ms = (node.hitCount ?? 0) * perSampleMs;
    if (!ms) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName !== '(idle)') busy += ms;
    const fn = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    const mod = moduleOf(url, functionName);
    byModule.set(mod, (byModule.get(mod) ?? 0) + ms);
  }
  const rank = (m: Map<string, number>) => [...m].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, ms]) => `  ${((100 * ms) / busy).toFixed(1).padStart(5)}%  ${k}`).join('\n');
  return [
    `profile ${file}: ${totalMs.toFixed(0)} ms, busy (not idle) ${busy.toFixed(0)} ms`,
    'self time by module (share of busy time):', rank(byModule),
    'self time by function:', rank(byFunction),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const file of process.argv.slice(2)) process.stdout.write(summarise(file) + '\n');
}
