// Prints the MLS figures behind the choice of the default cipher suite
// (web/ENCRYPTION.md), measured in Node with the client's own engine
// (src/e2e/engine.ts): one JSON line per suite.
//
//   node scripts/mls-bench.mjs [members=200] [suites=83,1]
//
// The same measurement runs in headless Chromium in the browser test
// TestMLSSuiteFigures (go test -run TestMLSSuiteFigures -v ./server/webtest/).

import * as esbuild from 'esbuild';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const members = Number(process.argv[2] ?? 200);
const suites = (process.argv[3] ?? '83,1').split(',').map(Number);

const out = join(here, '.bench-out');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await esbuild.build({
  absWorkingDir: here,
  entryPoints: ['src/e2e/bench.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: join(out, 'bench.mjs'),
  external: ['@noble/curves/*', '@noble/post-quantum/*', '@hpke/ml-kem', '@hpke/dhkem-x448', '@hpke/chacha20poly1305'],
  logLevel: 'warning',
});
const { bench } = await import(pathToFileURL(join(out, 'bench.mjs')).href);
console.error(`node ${process.version}, ${members} members`);
for (const s of suites) {
  const f = await bench(s, members);
  console.log(JSON.stringify({ where: 'node', ...f }));
}
rmSync(out, { recursive: true, force: true });
