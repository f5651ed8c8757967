#!/usr/bin/env node
// Prints docs/providers.md from the DNS providers' metadata (run through tsx):
//   node --import tsx scripts/providers-doc.mjs > docs/providers.md
const { providerMetadata } = await import('../src/dns/registry.ts');
const { HTTP_ENV } = await import('../src/dns/http.ts');
const { renderProvidersDoc } = await import('../src/dns/doc.ts');
process.stdout.write(renderProvidersDoc(providerMetadata(), HTTP_ENV));
