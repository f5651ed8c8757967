#!/usr/bin/env node
// Rewrites docs/errors.md's HTTP error table from src/server/error-catalogue.ts (run through tsx):
//   node --import tsx scripts/errors-doc.mjs
import fs from 'node:fs';
const { catalogueMarkdown } = await import('../src/server/error-catalogue.ts');
const { replaceGenerated } = await import('../src/server/error-doc.ts');
const file = new URL('../docs/errors.md', import.meta.url);
fs.writeFileSync(file, replaceGenerated(fs.readFileSync(file, 'utf8'), catalogueMarkdown()));
