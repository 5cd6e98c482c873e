// docs/configuration.md's tables of PGHERD_* settings, rendered from their declarations (settings.ts),
// so the manual cannot drift from what the code reads. The tables sit between two marker comments;
// the prose around them is the manual's own. A unit test fails when the file is not the rendering.
//   node --import tsx lib/settings/render-docs.ts           says whether the docs are current
//   node --import tsx lib/settings/render-docs.ts --write   rewrites the tables in place
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SETTINGS, type Setting } from '@/lib/settings/settings';

export const CONFIGURATION_MD = path.resolve(__dirname, '../../docs/configuration.md');
export const START_MARKER = '<!-- settings:start -->';
export const END_MARKER = '<!-- settings:end -->';

/** A table cell: a pipe would end the cell, even inside backticks. */
const cell = (s: string) => s.replace(/\|/g, '\\|');

function table(rows: [string, Setting<unknown>][]): string {
  return [
    '| variable | type | default | meaning |',
    '|---|---|---|---|',
    ...rows.map(([name, s]) => `| \`${name}\` | ${cell(s.type)} | ${cell(s.shownDefault || '—')} | ${cell(s.doc)} |`),
  ].join('\n');
}

/** The markdown between the markers: pgherd's settings, then those only the lab, the tests and the benchmarks read. */
export function renderSettingsTables(): string {
  const all = Object.entries(SETTINGS) as [string, Setting<unknown>][];
  return [
    table(all.filter(([, s]) => !s.lab)),
    '',
    'The lab, the tests and the benchmarks read these as well:',
    '',
    table(all.filter(([, s]) => s.lab)),
  ].join('\n');
}

/** `markdown` with the part between the markers replaced by the rendered tables; throws when a marker is missing. */
export function withSettingsTables(markdown: string): string {
  const start = markdown.indexOf(START_MARKER);
  const end = markdown.indexOf(END_MARKER);
  if (start < 0 || end < start) throw new Error(`docs/configuration.md needs ${START_MARKER} and, after it, ${END_MARKER}`);
  return `${markdown.slice(0, start + START_MARKER.length)}\n${renderSettingsTables()}\n${markdown.slice(end)}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  const now = readFileSync(CONFIGURATION_MD, 'utf8');
  const rendered = withSettingsTables(now);
  if (process.argv.includes('--write')) {
    if (rendered !== now) writeFileSync(CONFIGURATION_MD, rendered);
    console.log(`render-docs: ${path.relative(process.cwd(), CONFIGURATION_MD)} ${rendered === now ? 'was current' : 'rewritten'}`);
  } else if (rendered !== now) {
    console.error('render-docs: docs/configuration.md is not the rendering of the settings; run it with --write');
    process.exit(1);
  }
}
