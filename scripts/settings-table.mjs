#!/usr/bin/env node
// Prints docs/serve.md's settings table from src/daemon/settings.ts (run through tsx):
//   node --import tsx scripts/settings-table.mjs
const { SETTINGS } = await import('../src/daemon/settings.ts');
const rows = SETTINGS.map((d) => `| \`${d.flag}\` | \`${d.env}\` | \`${d.configKey}\` | ${d.default === undefined || d.default === '' ? '' : `\`${d.default}\``} | ${d.description} |`);
process.stdout.write(['| flag | environment | `serve:` key | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n') + '\n');
