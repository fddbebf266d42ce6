// Bundles each app into dist/<app>.mjs and writes bin/<app>, a launcher for it.
// One bundle per app keeps start-up fast and the binaries independent of node_modules layout.
import { build } from 'esbuild';
import { chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';

const apps = (await readdir('apps')).filter((app) => existsSync(`apps/${app}/src/main.ts`));

// The web console (packages/console), bundled for browsers into dist/console: the processor
// and `inspect ui` serve it at /ui from beside their own bundle, so nothing comes from a CDN.
await mkdir('dist/console', { recursive: true });
await build({
  entryPoints: ['packages/console/src/main.ts'],
  outfile: 'dist/console/console.js',
  bundle: true,
  platform: 'browser',
  target: 'es2022',
  format: 'esm',
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
await copyFile('packages/console/src/console.css', 'dist/console/console.css');

await mkdir('bin', { recursive: true });
await Promise.all(
  apps.map(async (app) => {
    await build({
      entryPoints: [`apps/${app}/src/main.ts`],
      outfile: `dist/${app}.mjs`,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      sourcemap: true,
      logLevel: 'warning',
      // Bundled CommonJS dependencies (grpc-js, pino) expect these in scope.
      banner: {
        js: [
          "import { createRequire as __durableRequire } from 'node:module';",
          "import { fileURLToPath as __durableFileUrl } from 'node:url';",
          'const require = __durableRequire(import.meta.url);',
          'const __filename = __durableFileUrl(import.meta.url);',
          "const __dirname = __durableFileUrl(new URL('.', import.meta.url));",
        ].join('\n'),
      },
    });
    const launcher = `#!/bin/sh\nexec node --enable-source-maps "$(dirname "$0")/../dist/${app}.mjs" "$@"\n`;
    await writeFile(`bin/${app}`, launcher);
    await chmod(`bin/${app}`, 0o755);
  }),
);
