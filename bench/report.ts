import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './processes.js';

export interface Row {
  scenario: string;
  rate?: number;
  p50?: number;
  p99?: number;
  errors?: number;
  baseline?: number;
  baselineName?: string;
  /** Defaults to rate / baseline. */
  ratio?: number;
  /** A plain value for rows that are not rates (ms, MB). */
  value?: string;
  target: string;
  met?: boolean;
  note?: string;
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

export function renderTable(rows: Row[]): string {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'baseline req/s', 'ratio', 'target', 'met?'];
  const lines = rows.map((r) => {
    const ratio = r.ratio ?? (r.rate !== undefined && r.baseline ? r.rate / r.baseline : undefined);
    return [
      r.scenario,
      r.value ?? fmt(r.rate),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      r.errors === undefined ? '—' : String(r.errors),
      r.baseline === undefined ? '—' : `${fmt(r.baseline)}${r.baselineName ? ` (${r.baselineName})` : ''}`,
      ratio === undefined ? '—' : `${fmt(ratio, 2)}×`,
      r.target,
      r.met === undefined ? (r.note ?? '—') : r.met ? 'yes' : 'NO',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n');
}

export function machineDescription() {
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  } catch { /* not a git checkout */ }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: dirty ? `${commit} (+ uncommitted changes in src/)` : commit,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    loadAverage: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

const BEGIN = '<!-- bench:results:begin -->';
const END = '<!-- bench:results:end -->';

/** Replaces the results section of docs/BENCHMARKS.md (between the markers), keeping the prose around it. */
export function writeResults(section: string) {
  const file = path.join(ROOT, 'docs', 'BENCHMARKS.md');
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : `# Benchmarks\n\n${BEGIN}\n${END}\n`;
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next = start >= 0 && end > start
    ? `${current.slice(0, start + BEGIN.length)}\n${section}\n${current.slice(end)}`
    : `${current.trimEnd()}\n\n${BEGIN}\n${section}\n${END}\n`;
  fs.writeFileSync(file, next);
  return file;
}
