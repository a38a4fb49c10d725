// Builds the web client into ../embed/dist, deterministically: the same
// sources give the same bytes (CI rebuilds and compares).
//
//   node build.mjs           build
//   node build.mjs --watch   rebuild on change (development)
//
// Output: index.html (no-cache), assets/app-<hash>.js|css and chunks
// (content-hashed, cached for a year), .gz siblings of text files,
// icons, sw.js. /manifest.webmanifest is served by the node itself.

import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { brand, png, svg } from './icons.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'embed', 'dist');
const watch = process.argv.includes('--watch');

// ts-mls imports optional dependencies for cipher suites Relais does not
// use (Ed448, P-256/384/521, ML-KEM alone, ML-DSA, ChaCha20-Poly1305) with
// dynamic imports inside try/catch. They are not installed: each resolves
// to one module that throws, so ts-mls reports a missing dependency if a
// suite needing one is ever asked for.
const optionalDeps = {
  name: 'optional-deps',
  setup(b) {
    b.onResolve({ filter: /^(@noble\/curves|@noble\/post-quantum|@hpke\/ml-kem|@hpke\/dhkem-x448|@hpke\/chacha20poly1305|@noble\/ciphers\/chacha)/ }, () => ({
      path: 'not-bundled',
      namespace: 'optional-deps',
    }));
    b.onLoad({ filter: /.*/, namespace: 'optional-deps' }, () => ({
      contents: "throw new Error('this cipher suite is not part of Relais');",
      loader: 'js',
    }));
  },
};

function clean() {
  mkdirSync(dist, { recursive: true });
  for (const f of readdirSync(dist)) rmSync(join(dist, f), { recursive: true, force: true });
}

function write(name, data) {
  const p = join(dist, name);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
}

function walk(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
}

async function build() {
  const t0 = Date.now();
  clean();
  const res = await esbuild.build({
    absWorkingDir: here,
    entryPoints: { app: 'src/main.tsx' },
    bundle: true,
    splitting: true,
    format: 'esm',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    minify: true,
    outdir: join(dist, 'assets'),
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    metafile: true,
    legalComments: 'eof',
    charset: 'utf8',
    logLevel: 'warning',
    plugins: [optionalDeps],
  });
  // A warning is a defect that would ship (a CSS rule left open by a
  // merge swallowed the rules after it): the release build refuses it.
  if (!watch && res.warnings.length > 0) throw new Error(`esbuild: ${res.warnings.length} warning(s), see above`);
  const outputs = Object.entries(res.metafile.outputs);
  const entry = outputs.find(([, o]) => o.entryPoint === 'src/main.tsx');
  const js = '/' + relative(dist, join(here, entry[0])).split('\\').join('/');
  const css = '/' + relative(dist, join(here, entry[1].cssBundle)).split('\\').join('/');
  const preload = entry[1].imports.filter((i) => i.kind === 'import-statement').map((i) => '/' + relative(dist, join(here, i.path)));

  // Icons. The manifest that lists them is rendered by the node
  // (server/api/manifest.go): it carries the node's --name and follows
  // the browser's language.
  write('icon.svg', svg());
  write('icon-192.png', png(192));
  write('icon-512.png', png(512));
  write('icon-maskable-512.png', png(512, true));
  write('apple-touch-icon.png', png(180, true));

  const html = `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="color-scheme" content="light dark">
<meta name="theme-color" content="${brand.bg}">
<meta name="referrer" content="no-referrer">
<title>Relais</title>
<link rel="manifest" href="/manifest.webmanifest">
<link rel="icon" href="/icon.svg" type="image/svg+xml">
<link rel="apple-touch-icon" href="/apple-touch-icon.png">
<link rel="stylesheet" href="${css}">
${preload.map((p) => `<link rel="modulepreload" href="${p}">`).join('\n')}
<script type="module" src="${js}"></script>
</head>
<body>
<div id="app"></div>
<noscript>Relais a besoin de JavaScript. Relais needs JavaScript.</noscript>
</body>
</html>
`.replace(/\n\n/g, '\n');
  write('index.html', html);

  // The service worker caches the shell: every file but itself.
  const shell = walk(dist)
    .map((p) => '/' + relative(dist, p).split('\\').join('/'))
    .filter((p) => p !== '/index.html');
  const version = createHash('sha256')
    .update(shell.map((p) => p + readFileSync(join(dist, p))).join('\n'))
    .digest('hex')
    .slice(0, 16);
  await esbuild.build({
    absWorkingDir: here,
    entryPoints: ['src/sw.ts'],
    bundle: true,
    format: 'iife',
    target: ['es2020'],
    minify: true,
    outfile: join(dist, 'sw.js'),
    define: { __ASSETS__: JSON.stringify(shell), __VERSION__: JSON.stringify(version) },
    logLevel: 'warning',
  });

  // Precompressed siblings (gzip header without a time stamp), for every
  // file index.html loads and the other text files over 512 bytes.
  const initial = [js, ...preload, css];
  for (const p of walk(dist)) {
    const loaded = initial.includes('/' + relative(dist, p).split('\\').join('/'));
    if (/\.(js|css|html|svg)$/.test(p) && (statSync(p).size > 512 || loaded)) writeFileSync(p + '.gz', gzipSync(readFileSync(p), { level: 9 }));
  }

  // Report the initial bundle: what index.html loads.
  let raw = 0;
  let gz = 0;
  for (const f of initial) {
    raw += statSync(join(dist, f)).size;
    gz += statSync(join(dist, f + '.gz')).size;
  }
  console.log(`built embed/dist in ${Date.now() - t0} ms: initial JS+CSS ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`);
}

if (watch) {
  const { watch: fsWatch } = await import('node:fs');
  await build();
  let timer = null;
  fsWatch(join(here, 'src'), { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(() => build().catch((e) => console.error(e.message)), 100);
  });
  console.log('watching src/ …');
} else {
  await build();
}
